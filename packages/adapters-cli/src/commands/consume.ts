/**
 * `npx optimizer consume`: the SQS live-events consumer (the same process as the `optimizer-consume`
 * bin of `@optimizer/adapters-sqs`). Runs until SIGTERM/SIGINT, then commits and deletes what it
 * holds and exits 0.
 */
import { Command } from "effect/cli"
import { runConsumer } from "@optimizer/adapters-sqs"

export const consumeCommand = Command.make("consume", {}, () => runConsumer).pipe(
  Command.withDescription(
    "Consume Voluum live click events from SQS (SQS_QUEUE_URL); run as many as you like, each message is stored once"
  )
)
