/**
 * Every job queue and the core operation that executes it. A worker process (`npx optimizer
 * worker`, and the quick start) runs `runWorkers`; each domain that has durable jobs adds its entry
 * to `JOB_HANDLERS` — the handler is a core operation, never adapter code.
 */
import { Effect, type Scope } from "effect"
import type { AppServices } from "./AppLayer.ts"
import type { DatabaseError } from "./platform/Errors.ts"
import { Jobs, type RunningJob } from "./platform/Jobs.ts"

export interface JobHandler {
  readonly queue: string
  /** Jobs of this queue at once per worker process (defaults to WORKER_CONCURRENCY). */
  readonly concurrency?: number
  readonly run: (job: RunningJob) => Effect.Effect<unknown, unknown, AppServices>
}

export const JOB_HANDLERS: ReadonlyArray<JobHandler> = []

/** Registers every handler on this process's jobs engine; they run until the scope closes. */
export const runWorkers = (
  handlers: ReadonlyArray<JobHandler> = JOB_HANDLERS
): Effect.Effect<ReadonlyArray<string>, DatabaseError, Scope.Scope | AppServices> =>
  Effect.gen(function* () {
    const jobs = yield* Jobs
    for (const handler of handlers) {
      yield* jobs.work(
        handler.queue,
        handler.run,
        handler.concurrency === undefined ? {} : { concurrency: handler.concurrency }
      )
    }
    return handlers.map((h) => h.queue)
  })
