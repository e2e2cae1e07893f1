/**
 * The receive → commit → delete loop. Its body comes with the live-events issue; until then the
 * entry point refuses to start with a clear message instead of pretending to consume.
 */
import { Effect } from "effect"
import { NotConfigured, parseSettings, requireIntegration } from "@optimizer/core"
import { Result } from "effect"

export const runConsumer = Effect.gen(function* () {
  const parsed = parseSettings(process.env)
  if (Result.isFailure(parsed)) return yield* parsed.failure
  yield* requireIntegration("SQS", parsed.success.sqs)
  return yield* new NotConfigured({
    integration: "SQS consumer",
    missing: [],
    message: "the SQS live-events consumer is not built yet (see the live-events issue); nothing was consumed"
  })
})
