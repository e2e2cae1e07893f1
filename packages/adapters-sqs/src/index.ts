/**
 * The SQS adapter: a long-running consumer of Voluum's live click events (SNS → SQS). Importing
 * this module starts nothing; `runConsumer` (or the `optimizer-consume` bin, or
 * `npx optimizer consume`) does, and `makeConsumer` embeds one in a scope of your own.
 */
export {
  DEFAULT_TUNING,
  makeConsumer,
  makeSqsClient,
  runConsumer,
  tuningFrom,
  type ConsumerHandle,
  type ConsumerStats,
  type ConsumerTuning
} from "./Consumer.ts"
