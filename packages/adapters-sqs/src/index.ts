/**
 * The SQS adapter: a long-running consumer of Voluum's live click events (SNS → SQS). Importing
 * this module starts nothing; `runConsumer` (or the `optimizer-consume` bin, or
 * `npx optimizer consume`) does, and `makeConsumer` / `startConsumer` embed one in a scope of your own.
 */
export {
  ConsumerFailed,
  DEFAULT_TUNING,
  inFlightLimit,
  makeConsumer,
  startConsumer,
  tuningFrom,
  type ConsumerHandle,
  type ConsumerStats,
  type ConsumerTuning
} from "./Consumer.ts"
export { runConsumer } from "./RunConsumer.ts"
export {
  makeSqsClient,
  SqsError,
  SqsQueue,
  type DeleteOutcome,
  type ReceivedMessage,
  type ReceiveRequest
} from "./SqsQueue.ts"
