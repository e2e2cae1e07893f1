/**
 * The worker side of `Jobs`: `work(queue, handler)` fetches jobs from pg-boss and runs each attempt,
 * writing its progress and outcome to `job_status` and telling pg-boss how to settle it.
 *
 * Failure policy. A handler failure whose error has `retryable: true` (`UpstreamError` with
 * retryable), a `DatabaseError`, a defect, or an interruption (worker stopping, claim lost) is
 * retried with exponential backoff (`retryDelaySeconds` × 2^n with jitter, capped at
 * `retryDelayMaxSeconds`) up to `retryLimit` retries (default 3, so at most 4 attempts); `job_status`
 * goes back to `queued` with the error kept, then `running` again with `attempts` + 1. Any other
 * error (ValidationError, NotFound, …) fails the job at once: pg-boss's "deadletter" disposition,
 * which skips the remaining retries. After the last retry the job is `failed`.
 *
 * Dead workers. Every queue has a pg-boss heartbeat (`heartbeatSeconds`, default 30): while a
 * handler runs, pg-boss refreshes the job's `heartbeat_on` every heartbeatSeconds / 2. A worker that
 * dies (SIGKILL, OOM, lost host) stops refreshing it, and the supervisor of any live process fails
 * the job with "job heartbeat timeout" once it is heartbeatSeconds stale, which puts it back in the
 * queue (a retry) for the next worker — a restarted one or another replica. A long job that is
 * alive (HLR polling: hours) keeps heartbeating and is never taken away; `expireInSeconds` (default
 * 12 h, pg-boss's maximum is 24 h) is only the backstop for a live handler that hangs forever. So the
 * recovery time after a crash is heartbeatSeconds + up to one supervise interval + the retry delay,
 * independent of how long jobs may legitimately run (pg-boss 12's answer to the "long job vs. fast
 * crash detection" trade-off that a bare expiration forces).
 *
 * Exactly once. pg-boss delivers at least once: a job whose worker died is run again. The contract:
 * - handlers are idempotent per job id: they get the id and the attempt number, and either redo the
 *   work from the start or resume from a checkpoint they saved (their own rows keyed by job id), and
 *   make their final side effect conditional (`INSERT … ON CONFLICT DO NOTHING`, `UPDATE … WHERE
 *   status = 'processing'`);
 * - `job_status` moves to `completed` exactly once: every write of an attempt is fenced on the
 *   attempt (JobStatusRows.ts), and `completed` is written BEFORE pg-boss is told: if the process
 *   dies between the two, the next attempt finds `completed` and settles the job without running
 *   the handler again.
 *
 * A worker stops when the scope that registered it closes: no new fetches; the job in hand gets
 * `drainSeconds` to finish, then is interrupted and retried.
 */
import { Cause, Context, Effect, Exit, Option, type Scope } from "effect"
import type { JobResult, JobResultStatus, JobWithMetadata } from "pg-boss"
import { publicMessage, type DatabaseError } from "../Errors.ts"
import { type JobQueue, messageOf } from "./JobQueue.ts"
import type { JobStatusRows } from "./JobStatusRows.ts"
import { metrics } from "../Observability.ts"
import { takeTraceContext } from "../Tracing.ts"

/** What a handler receives for one attempt of one job. */
export interface RunningJob {
  readonly id: string
  readonly queue: string
  readonly data: Record<string, unknown>
  /** 1 on the first run, 2 on the first retry or after a crash, … */
  readonly attempt: number
  /**
   * Records progress in `job_status` (one UPDATE: call it per batch or step, not per row). Never
   * fails: a progress write that cannot be made is logged and the job goes on.
   */
  readonly progress: (processed: number, total: number) => Effect.Effect<void>
}

export interface WorkOptions {
  /** Jobs of this queue run at once in this process. Default `WORKER_CONCURRENCY`. */
  readonly concurrency?: number
}

/** Whether a handler failure is worth another attempt: `retryable: true` on the error, or a database failure. */
export const isRetryableJobError = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null) return false
  const e = error as { readonly retryable?: unknown; readonly _tag?: unknown }
  return e.retryable === true || e._tag === "DatabaseError"
}

type Disposition = Array<JobResult>
const settle = (id: string, status: JobResultStatus, output?: object): Disposition => [
  output === undefined ? { id, status } : { id, status, output }
]
type PerJobWorkOptions = {
  includeMetadata: true
  perJobResults: true
  batchSize: number
  localConcurrency: number
  pollingIntervalSeconds: number
}

/** A failure: `message` for the log, `shown` for the job's row that API users read (no driver text). */
interface Failure {
  readonly message: string
  readonly shown: string
  readonly retryable: boolean
}

const describeFailure = (cause: Cause.Cause<unknown>): Failure => {
  if (Cause.hasInterruptsOnly(cause)) {
    const message = "interrupted: the worker stopped or lost the job before it finished"
    return { message, shown: message, retryable: true }
  }
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    return {
      message: messageOf(error.value),
      shown: publicMessage(error.value),
      retryable: isRetryableJobError(error.value)
    }
  }
  return {
    message: `unexpected error: ${messageOf(Cause.squash(cause))}`,
    shown: "unexpected error (the worker's log has the details)",
    retryable: true
  }
}

/** `Jobs.work` over the queue and the status rows; `defaultConcurrency` is `WORKER_CONCURRENCY`. @internal */
export const makeWork = (jobQueue: JobQueue, rows: JobStatusRows, defaultConcurrency: number) => {
  const { boss, call, ensureQueue, timings } = jobQueue

  const progressOf = (id: string, attempt: number) => (processed: number, total: number) =>
    rows
      .progress(id, attempt, Math.max(0, Math.trunc(processed)), Math.max(0, Math.trunc(total)))
      .pipe(Effect.catch((error) => Effect.logWarning("could not record job progress", error.message)))

  const runAttempt = <E, R>(
    queue: string,
    job: JobWithMetadata<Record<string, unknown>>,
    handler: (job: RunningJob) => Effect.Effect<unknown, E, R>,
    handlerContext: Context.Context<R>,
    stopping: AbortSignal
  ): Effect.Effect<Disposition, DatabaseError> =>
    Effect.gen(function* () {
      const attempt = job.retryCount + 1
      const finished = yield* rows.start(job.id, queue, attempt)
      if (Option.isSome(finished)) {
        // A previous attempt got this far and died before pg-boss heard of it: settle, don't re-run.
        const row = finished.value
        yield* Effect.logInfo(`job already ${row.state}; settling it without running the handler again`)
        if (row.state === "completed") return settle(job.id, "completed", { value: row.result })
        if (row.state === "cancelled") {
          yield* call("could not cancel the job", () => boss.cancel(queue, { id: job.id, retryCount: job.retryCount }))
          return settle(job.id, "completed")
        }
        return settle(job.id, "deadletter", { message: row.error ?? "failed" })
      }
      yield* Effect.logInfo("job started").pipe(Effect.annotateLogs({ attempt }))
      const startedAt = Date.now()
      const { data, parent } = takeTraceContext(job.data ?? {})
      const running: RunningJob = {
        id: job.id,
        queue,
        data,
        attempt,
        progress: progressOf(job.id, attempt)
      }
      metrics.jobsStarted.inc([queue])
      metrics.jobsRunning.add([queue], 1)
      // Interrupted when pg-boss takes the job away (cancel, expiration, lost claim) or the worker stops.
      // Its span continues the trace of the request that queued it.
      const exit = yield* Effect.promise(() =>
        Effect.runPromiseExitWith(handlerContext)(
          handler(running).pipe(
            Effect.annotateLogs({ job_id: job.id, queue, attempt }),
            Effect.withSpan(`job ${queue}`, {
              kind: "consumer",
              ...(parent !== undefined ? { parent } : {}),
              attributes: { "job.id": job.id, "job.queue": queue, "job.attempt": attempt }
            })
          ),
          { signal: AbortSignal.any([job.signal, stopping]) }
        )
      ).pipe(Effect.ensuring(Effect.sync(() => metrics.jobsRunning.add([queue], -1))))
      const durationMs = Date.now() - startedAt

      let failure: Failure | undefined
      if (Exit.isSuccess(exit)) {
        let json: string | undefined
        try {
          json = JSON.stringify(exit.value ?? null)
        } catch (error) {
          const message = `the job's result is not JSON: ${messageOf(error)}`
          failure = { message, shown: message, retryable: false }
        }
        if (json !== undefined) {
          yield* rows.complete(job.id, attempt, json)
          metrics.jobsCompleted.inc([queue])
          metrics.jobDuration.set([queue, "completed"], durationMs / 1000)
          yield* Effect.logInfo("job completed").pipe(Effect.annotateLogs({ durationMs }))
          return settle(job.id, "completed", { value: exit.value ?? null })
        }
      }
      const { message, shown, retryable } = failure ?? describeFailure(Exit.isFailure(exit) ? exit.cause : Cause.empty)
      const willRetry = retryable && job.retryCount < job.retryLimit
      yield* rows.fail(job.id, attempt, willRetry ? "queued" : "failed", shown)
      ;(willRetry ? metrics.jobsRetried : metrics.jobsFailed).inc([queue])
      metrics.jobDuration.set([queue, willRetry ? "retried" : "failed"], durationMs / 1000)
      yield* (willRetry ? Effect.logWarning : Effect.logError)(
        willRetry ? "job attempt failed; it will be retried" : "job failed",
        message
      ).pipe(Effect.annotateLogs({ durationMs, retryable }))
      return settle(job.id, retryable ? "failed" : "deadletter", { message: shown })
    }).pipe(Effect.annotateLogs({ job_id: job.id, queue }))

  return <E, R>(
    queue: string,
    handler: (job: RunningJob) => Effect.Effect<unknown, E, R>,
    workOptions?: WorkOptions
  ): Effect.Effect<void, DatabaseError, Scope.Scope | R> =>
    Effect.gen(function* () {
      yield* ensureQueue(queue)
      const handlerContext = yield* Effect.context<R>()
      const stopping = new AbortController()
      const concurrency = Math.max(1, Math.trunc(workOptions?.concurrency ?? defaultConcurrency))
      const workerId = yield* Effect.acquireRelease(
        call(`could not start a worker for "${queue}"`, () =>
          boss.work<Record<string, unknown>, unknown, PerJobWorkOptions>(
            queue,
            {
              includeMetadata: true,
              perJobResults: true,
              batchSize: 1,
              localConcurrency: concurrency,
              pollingIntervalSeconds: timings.pollingIntervalSeconds
            },
            (jobs) =>
              Effect.runPromiseWith(handlerContext)(
                Effect.forEach(jobs, (job) => runAttempt(queue, job, handler, handlerContext, stopping.signal)).pipe(
                  Effect.map((results) => results.flat()),
                  // pg-boss fails the job (a retry); the reconciliation then shows it queued again.
                  Effect.tapError((error) =>
                    Effect.logError("could not record a job's outcome; it will be retried", error.message)
                  )
                )
              )
          )
        ),
        (id) =>
          Effect.gen(function* () {
            // No new fetches; the job in hand may finish within drainSeconds, else it is interrupted and retried.
            const stopped = boss.offWork(queue, { id, wait: true })
            const wait = Effect.tryPromise(() => stopped).pipe(Effect.ignore)
            const drained = yield* wait.pipe(Effect.timeoutOption(`${timings.drainSeconds} seconds`))
            if (Option.isNone(drained)) {
              stopping.abort()
              yield* wait.pipe(Effect.timeoutOption("10 seconds"))
            }
          })
      )
      yield* Effect.logInfo("worker started").pipe(Effect.annotateLogs({ queue, concurrency, workerId }))
    })
}
