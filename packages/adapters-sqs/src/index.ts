/**
 * The SQS adapter: a long-running consumer of Voluum's live click events (SNS → SQS). Importing
 * this module starts nothing; `runConsumer` (or the `optimizer-consume` bin, or
 * `npx optimizer consume`) does.
 */
export { runConsumer } from "./Consumer.ts"
