/**
 * Every job queue and the core operation that executes it. A worker process (`npx optimizer
 * worker`, and the quick start) runs `runWorkers`; each domain that has durable jobs adds its entry
 * to `JOB_HANDLERS` — the handler is a core operation, never adapter code.
 */
import { Effect, type Scope } from "effect"
import type { AppServices } from "./AppLayer.ts"
import { CLEANING_QUEUE, Cleaning } from "./cleaning/Cleaning.ts"
import { ENCRYPTION_FILE_QUEUE, EncryptionFiles } from "./encryption/EncryptionFiles.ts"
import { EXPORT_QUEUE, Exports } from "./exports/Exports.ts"
import { HLR_QUEUE, Hlr } from "./hlr/Hlr.ts"
import type { DatabaseError } from "./platform/Errors.ts"
import { Jobs, type QueueHandler } from "./platform/Jobs.ts"
import { OngageJobs } from "./ongage-jobs/OngageJobs.ts"
import { VOLUUM_JOB_HANDLERS } from "./voluum/VoluumJobs.ts"

/** A queue and the core operation that runs its jobs, with any of the application's services. */
export type JobHandler = QueueHandler<AppServices>

export const JOB_HANDLERS: ReadonlyArray<JobHandler> = [
  // One list cleans at a time anyway (the partial unique index one_processing_file_only).
  { queue: CLEANING_QUEUE, concurrency: 1, run: (job) => Cleaning.use((cleaning) => cleaning.runJob(job)) },
  {
    queue: ENCRYPTION_FILE_QUEUE,
    // One file processes at a time anyway (the partial unique index).
    concurrency: 1,
    run: (job) => EncryptionFiles.use((files) => files.runJob(job))
  },
  { queue: EXPORT_QUEUE, run: (job) => Exports.use((exports) => exports.process(job)) },
  // One HLR run at a time anyway (the partial unique index one_active_hlr_only).
  { queue: HLR_QUEUE, concurrency: 1, run: (job) => Hlr.use((hlr) => hlr.runJob(job)) },
  ...VOLUUM_JOB_HANDLERS
]

/**
 * Registers every handler on this process's jobs engine, and starts the Ongage CSV jobs' drip loop
 * (their schedule lives in `csv_jobs`, not in a queue: `docs/ongage-jobs.md`); all run until the
 * scope closes.
 */
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
    yield* OngageJobs.use((ongageJobs) => ongageJobs.drip())
    return handlers.map((h) => h.queue)
  })
