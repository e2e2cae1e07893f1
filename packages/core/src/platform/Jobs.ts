/**
 * Durable background jobs on pg-boss 12: enqueue, workers, status and progress, retries with
 * backoff, singleton keys, cron schedules. This file is the service; its parts are in `jobs/`:
 * - `JobQueue.ts`: pg-boss itself (started and stopped with the layer, queues and their settings);
 * - `JobStatusRows.ts`: the `job_status` table users see, and its reconciliation with pg-boss;
 * - `JobWorker.ts`: `work` — running attempts, the failure policy, dead workers, the exactly-once contract;
 * - `JobSchedules.ts`: cron schedules.
 *
 * Two stores: pg-boss keeps its queue in its own schema `pgboss` and decides who runs what;
 * `job_status` is what users see (state, attempts, progress, result, error). `enqueue` inserts the
 * pg-boss job and its `job_status` row in ONE transaction of pg-boss's pool (pg-boss's `send`
 * accepts a `db` bound to a transaction of its own pool), so a job never exists without its status
 * row or the reverse; every other statement on `job_status` runs on the `effect/sql` pool.
 * Failures the worker cannot see (heartbeat loss on the last attempt, pg-boss's expiration, a job
 * pg-boss dropped) are folded into `job_status` by a reconciliation against `pgboss.job`, on every
 * `get` / `list` and every supervise interval in supervising processes: a row is never left
 * `running` forever.
 *
 * Singletons. Queues use pg-boss's `exclusive` policy: at most one queued-or-active job per
 * (queue, singleton key). A job enqueued without a key gets its own id as key, so only jobs that
 * name a key exclude each other; a second `enqueue` with a key that is queued or running fails with
 * `Conflict` naming the running job (HTTP 409).
 *
 * Processes. `Jobs.layer` supervises and runs the cron pass (the worker process). A process that
 * only enqueues (the HTTP server when the worker runs separately, the CLI) uses
 * `Jobs.layerWith({ supervise: false, schedule: false })`: it polls nothing in the background. Only
 * `work()` starts fetching; a worker stops when the scope that registered it closes.
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Option, Schedule, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig, requireDatabase } from "./Config.ts"
import { Conflict, type DatabaseError, NotFound } from "./Errors.ts"
import { startJobQueue } from "./jobs/JobQueue.ts"
import type { JobsOptions } from "./jobs/JobsOptions.ts"
import { makeJobSchedules, type JobSchedules } from "./jobs/JobSchedules.ts"
import { INSERT_QUEUED_STATUS, type JobInfo, type JobState, makeJobStatusRows } from "./jobs/JobStatusRows.ts"
import { makeWork, type RunningJob, type WorkOptions } from "./jobs/JobWorker.ts"
import { metrics } from "./Observability.ts"
import { withTraceContext } from "./Tracing.ts"

export {
  DEFAULT_QUEUE_SETTINGS,
  DEFAULT_TIMINGS,
  type JobsOptions,
  type JobsTimings,
  type QueueSettings
} from "./jobs/JobsOptions.ts"
export type { ScheduleInfo } from "./jobs/JobSchedules.ts"
export type { JobInfo, JobState } from "./jobs/JobStatusRows.ts"
export { isRetryableJobError, type RunningJob, type WorkOptions } from "./jobs/JobWorker.ts"

/**
 * A queue and the core operation that runs its jobs, needing the services `R` (`Workers.ts`
 * registers every domain's handlers; a domain declares its own with the services it uses).
 */
export interface QueueHandler<R> {
  readonly queue: string
  /** Jobs of this queue at once per worker process (defaults to WORKER_CONCURRENCY). */
  readonly concurrency?: number
  readonly run: (job: RunningJob) => Effect.Effect<unknown, unknown, R>
}

export interface EnqueueOptions {
  /** At most one queued-or-running job per (queue, key); another enqueue fails with `Conflict`. */
  readonly singletonKey?: string
  /** Retries after the first attempt (overrides the queue's `retryLimit`). */
  readonly retryLimit?: number
  /** Not before this many seconds from now. */
  readonly startAfterSeconds?: number
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const TERMINAL: ReadonlyArray<JobState> = ["completed", "failed", "cancelled"]

export class Jobs extends Context.Service<
  Jobs,
  {
    /** Queues a job; its id is also its `job_status` row. */
    readonly enqueue: (
      queue: string,
      data: Record<string, unknown>,
      options?: EnqueueOptions
    ) => Effect.Effect<string, DatabaseError | Conflict>
    readonly get: (id: string) => Effect.Effect<Option.Option<JobInfo>, DatabaseError>
    /** Newest first; `limit` defaults to 50 (at most 1000). */
    readonly list: (filter?: {
      readonly queue?: string
      readonly state?: JobState
      readonly limit?: number
    }) => Effect.Effect<ReadonlyArray<JobInfo>, DatabaseError>
    /** Cancels a queued or running job (a running handler is interrupted at its next heartbeat). */
    readonly cancel: (id: string) => Effect.Effect<JobInfo, DatabaseError | NotFound | Conflict>
    /**
     * Runs `handler` for the jobs of `queue` in this process until the calling scope closes. The
     * handler's success value becomes `result`; see `jobs/JobWorker.ts` for the failure policy and
     * the idempotency contract.
     */
    readonly work: <E, R>(
      queue: string,
      handler: (job: RunningJob) => Effect.Effect<unknown, E, R>,
      options?: WorkOptions
    ) => Effect.Effect<void, DatabaseError, Scope.Scope | R>
  } & JobSchedules
>()("@optimizer/core/platform/Jobs") {
  static readonly make = (options: JobsOptions) =>
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const database = yield* requireDatabase(settings)
      const rows = makeJobStatusRows(yield* SqlClient.SqlClient)
      const jobQueue = yield* startJobQueue(options, database)
      const { boss, call, ensureQueue } = jobQueue

      const enqueue = Effect.fn("Jobs.enqueue")(function* (
        queue: string,
        data: Record<string, unknown>,
        enqueueOptions?: EnqueueOptions
      ) {
        yield* ensureQueue(queue)
        // The job's span continues this trace (JobWorker.ts): the request → job link.
        const payload = yield* withTraceContext(data)
        const id = randomUUID()
        const key = enqueueOptions?.singletonKey ?? id
        const sent = yield* call(`could not enqueue a "${queue}" job`, async () => {
          const tx = await jobQueue.beginTransaction()
          try {
            const sentId = await boss.send(queue, payload, {
              id,
              singletonKey: key,
              ...(enqueueOptions?.retryLimit !== undefined ? { retryLimit: enqueueOptions.retryLimit } : {}),
              ...(enqueueOptions?.startAfterSeconds !== undefined
                ? { startAfter: enqueueOptions.startAfterSeconds }
                : {}),
              db: tx.db
            })
            if (sentId === null) {
              await tx.rollback()
              return false
            }
            // pg-boss's executeSql on purpose: the status row must commit or roll back with the job.
            await tx.db.executeSql(INSERT_QUEUED_STATUS, [id, queue])
            await tx.commit()
            return true
          } catch (error) {
            await tx.rollback()
            throw error
          }
        })
        if (!sent) {
          const holders = yield* call("could not look up the conflicting job", () =>
            boss.findJobs(queue, { key, limit: 10 })
          )
          const holder = holders.find((j) => j.state === "created" || j.state === "retry" || j.state === "active")
          return yield* new Conflict({
            message:
              `a "${queue}" job with key "${key}" is already queued or running` + (holder ? ` (job ${holder.id})` : "")
          })
        }
        metrics.jobsEnqueued.inc([queue])
        yield* Effect.logDebug("job enqueued").pipe(Effect.annotateLogs({ job_id: id, queue }))
        return id
      })

      const get = Effect.fn("Jobs.get")(function* (id: string) {
        if (!UUID.test(id)) return Option.none<JobInfo>()
        yield* rows.reconcile(id)
        return yield* rows.find(id)
      })

      const list = Effect.fn("Jobs.list")(function* (filter?: {
        readonly queue?: string
        readonly state?: JobState
        readonly limit?: number
      }) {
        yield* rows.reconcile()
        const limit = Math.min(1000, Math.max(1, Math.trunc(filter?.limit ?? 50)))
        return yield* rows.list({ queue: filter?.queue, state: filter?.state, limit })
      })

      const cancel = Effect.fn("Jobs.cancel")(function* (id: string) {
        const found = yield* get(id)
        if (Option.isNone(found)) return yield* new NotFound({ message: `no job with id "${id}"` })
        const job = found.value
        if (TERMINAL.includes(job.state)) {
          return yield* new Conflict({ message: `job ${id} is already ${job.state}` })
        }
        yield* call(`could not cancel job ${id}`, () => boss.cancel(job.queue, id))
        const cancelled = yield* rows.cancel(id)
        if (Option.isNone(cancelled)) {
          const now = yield* get(id)
          const state = Option.isSome(now) ? now.value.state : "gone"
          return yield* new Conflict({ message: `job ${id} finished (${state}) before it could be cancelled` })
        }
        return cancelled.value
      })

      if (options.supervise) {
        yield* rows.reconcile().pipe(
          Effect.catch((error) => Effect.logWarning("job status reconciliation failed", error.message)),
          Effect.repeat(Schedule.spaced(`${jobQueue.timings.superviseIntervalSeconds} seconds`)),
          Effect.forkScoped
        )
      }

      return Jobs.of({
        enqueue,
        get,
        list,
        cancel,
        work: makeWork(jobQueue, rows, settings.workerConcurrency),
        ...makeJobSchedules(jobQueue)
      })
    })

  /** Jobs with the given background roles (see the module comment), over the process's `effect/sql` pool. */
  static readonly layerWith = (options: JobsOptions) => Layer.effect(Jobs, Jobs.make(options))

  /** The worker process's jobs: supervises and runs the cron pass. */
  static readonly layer = Jobs.layerWith({ supervise: true, schedule: true, instanceName: "worker" })

  /** For processes that only enqueue and read status (HTTP server beside a separate worker, CLI). */
  static readonly layerNoWorkers = Jobs.layerWith({ supervise: false, schedule: false })
}
