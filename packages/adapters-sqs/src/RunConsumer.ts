/**
 * The consumer process's main: settings from the environment (SQS_QUEUE_URL, AWS_REGION,
 * credentials, SQS_ENDPOINT, SQS_MAX_CONCURRENCY, SQS_VISIBILITY_TIMEOUT, DATABASE_URL, AES_KEY,
 * Voluum), the real queue and core's consumer services, then the consumer until interrupted
 * (SIGTERM/SIGINT), which drains and returns.
 */
import { Effect, Layer, Result } from "effect"
import { consumerLayer, parseSettings, processMetrics, requireDatabase, requireIntegration } from "@optimizer/core"
import { startConsumer, tuningFrom } from "./Consumer.ts"
import { SqsQueue } from "./SqsQueue.ts"

export const runConsumer = Effect.gen(function* () {
  const parsed = parseSettings(process.env)
  if (Result.isFailure(parsed)) return yield* parsed.failure
  const settings = parsed.success
  const sqsSettings = yield* requireIntegration("SQS", settings.sqs)
  yield* requireDatabase(settings)
  // The layers outlive the consumer's scope: the consumer's stop (a finalizer) still commits and
  // deletes through them.
  yield* Effect.scoped(
    Effect.gen(function* () {
      yield* processMetrics(settings.observability, "consumer", "")
      const consumer = yield* startConsumer(tuningFrom(sqsSettings))
      yield* consumer.stopped
    })
  ).pipe(Effect.provide(Layer.merge(consumerLayer(settings), SqsQueue.layer(sqsSettings))))
})
