/**
 * Durable background jobs (SPEC.md §3.4) on pg-boss 12: enqueue, workers, status and progress,
 * retries with backoff, singleton keys, cron schedules.
 *
 * Two stores, one connection pool:
 * - pg-boss keeps its queue in its own schema `pgboss`, which `boss.start()` creates and migrates
 *   (under an advisory lock, so replicas starting together are safe). It decides who runs what.
 * - `job_status` (sql/0001_initial.sql) is what users see (`GET /jobs/:id`, `optimizer jobs list|show`):
 *   state, attempts, progress processed/total, result, error. It outlives pg-boss's own rows, which
 *   pg-boss deletes 7 days after they finish.
 * Both are written through pg-boss's `pg` pool, not the `@effect/sql-pg` one: `enqueue` inserts the
 * pg-boss job and its `job_status` row in ONE transaction (pg-boss's `send` accepts a `db` bound to
 * a transaction of its own pool), so a job never exists without its status row or the reverse.
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
 * - `job_status` moves to `completed` exactly once: every write of an attempt is fenced by
 *   `attempts = <this attempt> AND state = 'running'`, so a stale attempt (a worker presumed dead
 *   that was only slow) cannot overwrite a newer one, and `completed` is written BEFORE pg-boss is
 *   told: if the process dies between the two, the next attempt finds `completed` and settles the
 *   job without running the handler again.
 * Failures the worker cannot see (heartbeat loss on the last attempt, pg-boss's expiration, a job
 * pg-boss dropped) are folded into `job_status` by a reconciliation against `pgboss.job`, on every
 * `get` / `list` and every supervise interval in supervising processes: a row is never left
 * `running` forever.
 *
 * Singletons. Queues use pg-boss's `exclusive` policy: at most one queued-or-active job per
 * (queue, singleton key). A job enqueued without a key gets its own id as key, so only jobs that
 * name a key exclude each other; a second `enqueue` with a key that is queued or running fails with
 * `Conflict` naming the running job (HTTP 409). A scheduled job is keyed by its schedule, so a cron
 * occurrence whose previous run has not finished is skipped instead of piling up.
 *
 * Schedules. `schedule(queue, cron)` stores a row in `pgboss.schedule`. Every process built with
 * `schedule: true` runs pg-boss's cron pass, but each pass is claimed with a single-row UPDATE on
 * `pgboss.version.cron_on` that only one process wins per interval, and the occurrence is forwarded
 * through the internal `__pgboss__send-it` queue under a singleton key per (schedule, minute slot),
 * so each tick creates one job across all processes connected to the database. Cron expressions
 * have 5 fields (minute resolution) or 6 (seconds first); pg-boss creates at most one job per
 * schedule per minute.
 *
 * Processes. `Jobs.layer` supervises and runs the cron pass (the worker process). A process that
 * only enqueues (the HTTP server when the worker runs separately, the CLI) uses
 * `Jobs.layerWith({ supervise: false, schedule: false })`: it polls nothing in the background. Only
 * `work()` starts fetching; a worker stops when the scope that registered it closes (no new fetches;
 * the job in hand gets `drainSeconds` to finish, then is interrupted and retried).
 */
import { randomUUID } from "node:crypto"
import { Cause, Context, Effect, Exit, Layer, Option, Redacted, Schedule, type Scope } from "effect"
import { PgBoss } from "pg-boss"
import type { Db, JobResult, JobResultStatus, JobWithMetadata } from "pg-boss"
import { AppConfig, requireDatabase } from "./Config.ts"
import { Conflict, DatabaseError, NotFound, ValidationError } from "./Errors.ts"

export type JobState = "queued" | "running" | "completed" | "failed" | "cancelled"

/** A job as users see it (`job_status`). */
export interface JobInfo {
  readonly id: string
  readonly queue: string
  readonly state: JobState
  readonly processed: number | null
  readonly total: number | null
  /** Attempts started so far: 0 while queued the first time, 2 during the first retry. */
  readonly attempts: number
  /** The handler's success value (JSON). */
  readonly result: unknown
  /** The last failure's message; kept while a retry is pending, cleared on success. */
  readonly error: string | null
  readonly createdAt: Date
  readonly startedAt: Date | null
  readonly completedAt: Date | null
  readonly updatedAt: Date
}

export interface EnqueueOptions {
  /** At most one queued-or-running job per (queue, key); another enqueue fails with `Conflict`. */
  readonly singletonKey?: string
  /** Retries after the first attempt (overrides the queue's `retryLimit`). */
  readonly retryLimit?: number
  /** Not before this many seconds from now. */
  readonly startAfterSeconds?: number
}

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

/** Per-queue pg-boss settings. */
export interface QueueSettings {
  /** Retries after the first attempt. */
  readonly retryLimit: number
  /** First retry delay; doubles per retry, with jitter. */
  readonly retryDelaySeconds: number
  readonly retryDelayMaxSeconds: number
  /** A running job not heartbeating for this long is presumed dead and retried (pg-boss minimum 10). */
  readonly heartbeatSeconds: number
  /** Hard limit of one attempt, even while heartbeating (pg-boss maximum 24 h). */
  readonly expireInSeconds: number
}

export interface JobsTimings {
  /** How often an idle worker asks for a job. */
  readonly pollingIntervalSeconds: number
  /** How often the supervisor looks for dead or expired jobs and reconciles `job_status`. */
  readonly superviseIntervalSeconds: number
  /** How often the cron pass runs (pg-boss allows 1–45). */
  readonly cronIntervalSeconds: number
  /** How long a closing worker lets the job in hand finish before interrupting it. */
  readonly drainSeconds: number
  /** Bound on pg-boss's graceful stop when the layer is released. */
  readonly stopTimeoutSeconds: number
}

export interface JobsOptions {
  /** Run pg-boss's supervisor (dead/expired jobs, retention) and the `job_status` reconciliation here. */
  readonly supervise: boolean
  /** Run pg-boss's cron pass (schedules → jobs) here. */
  readonly schedule: boolean
  /** Name of this process in pg-boss's instance registry (`worker`, `api`, …). */
  readonly instanceName?: string
  readonly queueDefaults?: Partial<QueueSettings>
  /** Overrides per queue name, e.g. a short `expireInSeconds` for quick jobs. */
  readonly queues?: Readonly<Record<string, Partial<QueueSettings>>>
  readonly timings?: Partial<JobsTimings>
}

export interface ScheduleInfo {
  readonly queue: string
  readonly key: string
  readonly cron: string
  readonly timezone: string
  readonly data: unknown
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = {
  retryLimit: 3,
  retryDelaySeconds: 5,
  retryDelayMaxSeconds: 300,
  heartbeatSeconds: 30,
  expireInSeconds: 12 * 60 * 60
}

export const DEFAULT_TIMINGS: JobsTimings = {
  pollingIntervalSeconds: 2,
  superviseIntervalSeconds: 30,
  cronIntervalSeconds: 30,
  drainSeconds: 20,
  stopTimeoutSeconds: 30
}

const PGBOSS_SCHEMA = "pgboss"
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const TERMINAL: ReadonlyArray<JobState> = ["completed", "failed", "cancelled"]

/** Whether a handler failure is worth another attempt: `retryable: true` on the error, or a database failure. */
export const isRetryableJobError = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null) return false
  const e = error as { readonly retryable?: unknown; readonly _tag?: unknown }
  return e.retryable === true || e._tag === "DatabaseError"
}

const messageOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const e = error as { readonly message?: unknown; readonly _tag?: unknown }
    if (typeof e.message === "string" && e.message !== "") return e.message
    if (typeof e._tag === "string") return e._tag
  }
  return String(error)
}

const isAssertion = (error: unknown): boolean =>
  error instanceof Error && ((error as { code?: unknown }).code === "ERR_ASSERTION" || error.name === "AssertionError")

interface StatusRow {
  job_id: string
  queue: string
  state: JobState
  processed: string | number | null
  total: string | number | null
  attempts: number
  result: unknown
  error: string | null
  created_at: Date
  started_at: Date | null
  completed_at: Date | null
  updated_at: Date
}

const STATUS_COLUMNS =
  "job_id, queue, state, processed, total, attempts, result, error, created_at, started_at, completed_at, updated_at"

// bigint columns arrive from `pg` as strings.
const toNumber = (v: string | number | null): number | null => (v === null ? null : Number(v))

const toInfo = (r: StatusRow): JobInfo => ({
  id: r.job_id,
  queue: r.queue,
  state: r.state,
  processed: toNumber(r.processed),
  total: toNumber(r.total),
  attempts: r.attempts,
  result: r.result,
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  completedAt: r.completed_at,
  updatedAt: r.updated_at
})

/**
 * Folds what pg-boss knows and the worker could not write into `job_status`: a job pg-boss finished
 * (failed by heartbeat loss or expiration on its last attempt, cancelled or completed elsewhere), a
 * job put back for a retry by the supervisor while its row still says `running` (fenced on the
 * attempt, so a retry that has already started is left alone), and a job pg-boss no longer has
 * (deleted after its retention while still queued).
 */
const reconcileSql = (onlyOne: boolean) => `
  WITH candidates AS (
    SELECT s.job_id, s.state AS status_state, j.state::text AS boss_state, j.output, j.completed_on
    FROM job_status s
    LEFT JOIN ${PGBOSS_SCHEMA}.job j ON j.id = s.job_id AND j.name = s.queue
    WHERE s.state IN ('queued', 'running') ${onlyOne ? "AND s.job_id = $1" : ""}
      AND (
        j.state IN ('completed', 'failed', 'cancelled')
        OR (j.state = 'retry' AND s.state = 'running' AND s.attempts = j.retry_count + 1)
        OR (j.id IS NULL AND s.created_at < now() - interval '1 minute')
      )
  )
  UPDATE job_status s SET
    state = CASE
      WHEN c.boss_state IS NULL THEN 'failed'
      WHEN c.boss_state = 'retry' THEN 'queued'
      ELSE c.boss_state
    END,
    error = CASE
      WHEN c.boss_state IS NULL THEN 'the job disappeared from the queue before it finished'
      WHEN c.boss_state IN ('failed', 'retry')
        THEN coalesce(c.output ->> 'message', c.output -> 'value' ->> 'message', s.error)
      ELSE s.error
    END,
    completed_at = CASE
      WHEN c.boss_state = 'retry' THEN NULL
      ELSE coalesce(c.completed_on, now())
    END,
    updated_at = now()
  FROM candidates c
  WHERE s.job_id = c.job_id AND s.state = c.status_state`

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
     * handler's success value becomes `result`; see the module comment for the failure policy and
     * the idempotency contract.
     */
    readonly work: <E, R>(
      queue: string,
      handler: (job: RunningJob) => Effect.Effect<unknown, E, R>,
      options?: WorkOptions
    ) => Effect.Effect<void, DatabaseError, Scope.Scope | R>
    /** Creates or replaces the schedule `key` (default "default") of `queue`; cron is evaluated in `tz` (default UTC). */
    readonly schedule: (
      queue: string,
      cron: string,
      data?: Record<string, unknown>,
      options?: { readonly tz?: string; readonly key?: string }
    ) => Effect.Effect<void, DatabaseError | ValidationError>
    readonly unschedule: (queue: string, key?: string) => Effect.Effect<void, DatabaseError>
    readonly schedules: Effect.Effect<ReadonlyArray<ScheduleInfo>, DatabaseError>
  }
>()("@optimizer/core/platform/Jobs") {
  static readonly make = (options: JobsOptions) =>
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const database = yield* requireDatabase(settings)
      const timings: JobsTimings = { ...DEFAULT_TIMINGS, ...options.timings }
      const layerContext = yield* Effect.context<never>()
      const runLog = (effect: Effect.Effect<void>) => {
        Effect.runForkWith(layerContext)(effect)
      }

      const fail = (what: string) => (cause: unknown) =>
        new DatabaseError({ message: `${what}: ${messageOf(cause)}`, cause })

      /** A pg-boss call: its assertion errors are programming errors (defects), the rest database failures. */
      const call = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, DatabaseError> =>
        Effect.tryPromise({ try: f, catch: (cause) => cause }).pipe(
          Effect.catch((cause) => (isAssertion(cause) ? Effect.die(cause) : Effect.fail(fail(what)(cause))))
        )

      const boss = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const boss = new PgBoss({
              connectionString: Redacted.value(database.url),
              schema: PGBOSS_SCHEMA,
              application_name: `optimizer-jobs${options.instanceName ? `-${options.instanceName}` : ""}`,
              max: database.poolMax,
              supervise: options.supervise,
              schedule: options.schedule,
              migrate: true,
              ...(options.instanceName !== undefined ? { instanceName: options.instanceName } : {}),
              superviseIntervalSeconds: timings.superviseIntervalSeconds,
              monitorIntervalSeconds: timings.superviseIntervalSeconds,
              cronMonitorIntervalSeconds: timings.cronIntervalSeconds,
              cronWorkerIntervalSeconds: Math.max(1, Math.min(5, Math.round(timings.cronIntervalSeconds)))
            })
            // An "error" event without a listener would crash the process; these are logged, never thrown.
            boss.on("error", (error) =>
              runLog(
                Effect.logError("job queue error", messageOf(error)).pipe(Effect.annotateLogs({ component: "pg-boss" }))
              )
            )
            boss.on("warning", (warning) =>
              runLog(
                Effect.logWarning("job queue warning", warning.message).pipe(
                  Effect.annotateLogs({ component: "pg-boss" })
                )
              )
            )
            try {
              await boss.start()
            } catch (error) {
              await boss.stop({ graceful: false }).catch(() => undefined)
              throw error
            }
            return boss
          },
          catch: fail("could not start the job queue")
        }),
        (boss) =>
          Effect.promise(() =>
            boss
              .stop({ graceful: true, timeout: timings.stopTimeoutSeconds * 1000 })
              .catch((error) => runLog(Effect.logWarning("job queue did not stop cleanly", messageOf(error))))
          )
      )
      const db = boss.getDb() as Db & Required<Pick<Db, "beginTransaction">>

      const query = <Row>(text: string, values: ReadonlyArray<unknown> = []) =>
        Effect.tryPromise({
          try: () => db.executeSql(text, [...values]),
          catch: fail("database error")
        }).pipe(Effect.map((r) => r.rows as Array<Row>))

      const queueSettings = (queue: string): QueueSettings => ({
        ...DEFAULT_QUEUE_SETTINGS,
        ...options.queueDefaults,
        ...options.queues?.[queue]
      })

      // Each queue is created (or its settings updated) once per process, on first use.
      const ensured = new Map<string, Promise<void>>()
      const ensureQueue = (queue: string) =>
        call(`could not prepare queue "${queue}"`, () => {
          let ready = ensured.get(queue)
          if (ready === undefined) {
            const s = queueSettings(queue)
            const queueOptions = {
              retryLimit: s.retryLimit,
              retryDelay: s.retryDelaySeconds,
              retryBackoff: true,
              retryDelayMax: s.retryDelayMaxSeconds,
              heartbeatSeconds: s.heartbeatSeconds,
              expireInSeconds: s.expireInSeconds
            }
            ready = (async () => {
              await boss.createQueue(queue, { policy: "exclusive", ...queueOptions })
              const existing = await boss.getQueue(queue)
              if (existing?.policy !== "exclusive") {
                throw new Error(
                  `queue "${queue}" exists with policy "${existing?.policy}"; the jobs service needs "exclusive" (delete the queue)`
                )
              }
              await boss.updateQueue(queue, queueOptions)
            })()
            ensured.set(queue, ready)
            ready.catch(() => ensured.delete(queue))
          }
          return ready
        })

      const reconcile = (id?: string) =>
        query(reconcileSql(id !== undefined), id === undefined ? [] : [id]).pipe(Effect.asVoid)

      const enqueue = Effect.fn("Jobs.enqueue")(function* (
        queue: string,
        data: Record<string, unknown>,
        enqueueOptions?: EnqueueOptions
      ) {
        yield* ensureQueue(queue)
        const id = randomUUID()
        const key = enqueueOptions?.singletonKey ?? id
        const sent = yield* call(`could not enqueue a "${queue}" job`, async () => {
          const tx = await db.beginTransaction()
          try {
            const sentId = await boss.send(queue, data, {
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
            await tx.db.executeSql("INSERT INTO job_status (job_id, queue, state) VALUES ($1, $2, 'queued')", [
              id,
              queue
            ])
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
        yield* Effect.logDebug("job enqueued").pipe(Effect.annotateLogs({ job_id: id, queue }))
        return id
      })

      const get = Effect.fn("Jobs.get")(function* (id: string) {
        if (!UUID.test(id)) return Option.none<JobInfo>()
        yield* reconcile(id)
        const rows = yield* query<StatusRow>(`SELECT ${STATUS_COLUMNS} FROM job_status WHERE job_id = $1`, [id])
        return Option.map(Option.fromNullishOr(rows[0]), toInfo)
      })

      const list = Effect.fn("Jobs.list")(function* (filter?: {
        readonly queue?: string
        readonly state?: JobState
        readonly limit?: number
      }) {
        yield* reconcile()
        const limit = Math.min(1000, Math.max(1, Math.trunc(filter?.limit ?? 50)))
        const rows = yield* query<StatusRow>(
          `SELECT ${STATUS_COLUMNS} FROM job_status
           WHERE ($1::text IS NULL OR queue = $1) AND ($2::text IS NULL OR state = $2)
           ORDER BY created_at DESC, job_id LIMIT $3`,
          [filter?.queue ?? null, filter?.state ?? null, limit]
        )
        return rows.map(toInfo)
      })

      const cancel = Effect.fn("Jobs.cancel")(function* (id: string) {
        const found = yield* get(id)
        if (Option.isNone(found)) return yield* new NotFound({ message: `no job with id "${id}"` })
        const job = found.value
        if (TERMINAL.includes(job.state)) {
          return yield* new Conflict({ message: `job ${id} is already ${job.state}` })
        }
        yield* call(`could not cancel job ${id}`, () => boss.cancel(job.queue, id))
        const rows = yield* query<StatusRow>(
          `UPDATE job_status SET state = 'cancelled', completed_at = now(), updated_at = now()
           WHERE job_id = $1 AND state IN ('queued', 'running') RETURNING ${STATUS_COLUMNS}`,
          [id]
        )
        const row = rows[0]
        if (row === undefined) {
          const now = yield* get(id)
          const state = Option.isSome(now) ? now.value.state : "gone"
          return yield* new Conflict({ message: `job ${id} finished (${state}) before it could be cancelled` })
        }
        return toInfo(row)
      })

      // -- workers ---------------------------------------------------------------------------------

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

      /** Marks the attempt running; the existing row when the job already reached a final state. */
      const startAttempt = (id: string, queue: string, attempt: number) =>
        Effect.gen(function* () {
          const started = yield* query<{ state: JobState }>(
            `INSERT INTO job_status (job_id, queue, state, attempts, started_at)
             VALUES ($1, $2, 'running', $3, now())
             ON CONFLICT (job_id) DO UPDATE SET
               state = 'running', attempts = EXCLUDED.attempts,
               started_at = coalesce(job_status.started_at, now()), completed_at = NULL, updated_at = now()
             WHERE job_status.state IN ('queued', 'running') AND job_status.attempts <= EXCLUDED.attempts
             RETURNING state`,
            [id, queue, attempt]
          )
          if (started.length > 0) return Option.none<StatusRow>()
          const rows = yield* query<StatusRow>(`SELECT ${STATUS_COLUMNS} FROM job_status WHERE job_id = $1`, [id])
          return Option.fromNullishOr(rows[0])
        })

      const progressOf = (id: string, attempt: number) => (processed: number, total: number) =>
        query(
          `UPDATE job_status SET processed = $2, total = $3, updated_at = now()
           WHERE job_id = $1 AND attempts = $4 AND state = 'running'`,
          [id, Math.max(0, Math.trunc(processed)), Math.max(0, Math.trunc(total)), attempt]
        ).pipe(
          Effect.asVoid,
          Effect.catch((error) => Effect.logWarning("could not record job progress", error.message))
        )

      const describeFailure = (cause: Cause.Cause<unknown>): { message: string; retryable: boolean } => {
        if (Cause.hasInterruptsOnly(cause)) {
          return { message: "interrupted: the worker stopped or lost the job before it finished", retryable: true }
        }
        const error = Cause.findErrorOption(cause)
        if (Option.isSome(error))
          return { message: messageOf(error.value), retryable: isRetryableJobError(error.value) }
        return { message: `unexpected error: ${messageOf(Cause.squash(cause))}`, retryable: true }
      }

      const runAttempt = <E, R>(
        queue: string,
        job: JobWithMetadata<Record<string, unknown>>,
        handler: (job: RunningJob) => Effect.Effect<unknown, E, R>,
        handlerContext: Context.Context<R>,
        stopping: AbortSignal
      ): Effect.Effect<Disposition, DatabaseError> =>
        Effect.gen(function* () {
          const attempt = job.retryCount + 1
          const finished = yield* startAttempt(job.id, queue, attempt)
          if (Option.isSome(finished)) {
            // A previous attempt got this far and died before pg-boss heard of it: settle, don't re-run.
            const row = finished.value
            yield* Effect.logInfo(`job already ${row.state}; settling it without running the handler again`)
            if (row.state === "completed") return settle(job.id, "completed", { value: row.result })
            if (row.state === "cancelled") {
              yield* call("could not cancel the job", () =>
                boss.cancel(queue, { id: job.id, retryCount: job.retryCount })
              )
              return settle(job.id, "completed")
            }
            return settle(job.id, "deadletter", { message: row.error ?? "failed" })
          }
          yield* Effect.logInfo("job started").pipe(Effect.annotateLogs({ attempt }))
          const startedAt = Date.now()
          const running: RunningJob = {
            id: job.id,
            queue,
            data: job.data ?? {},
            attempt,
            progress: progressOf(job.id, attempt)
          }
          // Interrupted when pg-boss takes the job away (cancel, expiration, lost claim) or the worker stops.
          const exit = yield* Effect.promise(() =>
            Effect.runPromiseExitWith(handlerContext)(
              handler(running).pipe(Effect.annotateLogs({ job_id: job.id, queue, attempt })),
              { signal: AbortSignal.any([job.signal, stopping]) }
            )
          )
          const durationMs = Date.now() - startedAt

          let failure: { message: string; retryable: boolean } | undefined
          if (Exit.isSuccess(exit)) {
            let json: string | undefined
            try {
              json = JSON.stringify(exit.value ?? null)
            } catch (error) {
              failure = { message: `the job's result is not JSON: ${messageOf(error)}`, retryable: false }
            }
            if (json !== undefined) {
              yield* query(
                `UPDATE job_status SET state = 'completed', result = $2::jsonb, error = NULL,
                   completed_at = now(), updated_at = now()
                 WHERE job_id = $1 AND attempts = $3 AND state = 'running'`,
                [job.id, json, attempt]
              )
              yield* Effect.logInfo("job completed").pipe(Effect.annotateLogs({ durationMs }))
              return settle(job.id, "completed", { value: exit.value ?? null })
            }
          }
          const { message, retryable } = failure ?? describeFailure(Exit.isFailure(exit) ? exit.cause : Cause.empty)
          const willRetry = retryable && job.retryCount < job.retryLimit
          yield* query(
            `UPDATE job_status SET state = $2, error = $3,
               completed_at = CASE WHEN $2 = 'failed' THEN now() END, updated_at = now()
             WHERE job_id = $1 AND attempts = $4 AND state = 'running'`,
            [job.id, willRetry ? "queued" : "failed", message, attempt]
          )
          yield* (willRetry ? Effect.logWarning : Effect.logError)(
            willRetry ? "job attempt failed; it will be retried" : "job failed",
            message
          ).pipe(Effect.annotateLogs({ durationMs, retryable }))
          return settle(job.id, retryable ? "failed" : "deadletter", { message })
        }).pipe(Effect.annotateLogs({ job_id: job.id, queue }))

      const work = <E, R>(
        queue: string,
        handler: (job: RunningJob) => Effect.Effect<unknown, E, R>,
        workOptions?: WorkOptions
      ): Effect.Effect<void, DatabaseError, Scope.Scope | R> =>
        Effect.gen(function* () {
          yield* ensureQueue(queue)
          const handlerContext = yield* Effect.context<R>()
          const stopping = new AbortController()
          const concurrency = Math.max(1, Math.trunc(workOptions?.concurrency ?? settings.workerConcurrency))
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
                    Effect.forEach(jobs, (job) =>
                      runAttempt(queue, job, handler, handlerContext, stopping.signal)
                    ).pipe(
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

      const schedule = Effect.fn("Jobs.schedule")(function* (
        queue: string,
        cron: string,
        data?: Record<string, unknown>,
        scheduleOptions?: { readonly tz?: string; readonly key?: string }
      ) {
        const key = scheduleOptions?.key ?? "default"
        const tz = scheduleOptions?.tz ?? "UTC"
        // pg-boss's own parser, without a database round trip: a bad expression or zone is the caller's mistake.
        yield* Effect.try({
          try: () => boss.previewSchedule(cron, { tz, count: 1 }),
          catch: (cause) =>
            new ValidationError({ message: `invalid schedule "${cron}" (${tz}): ${messageOf(cause)}`, field: "cron" })
        })
        yield* ensureQueue(queue)
        yield* call(`could not schedule "${queue}"`, () =>
          boss.schedule(queue, cron, data ?? {}, {
            key,
            tz,
            // One run of a schedule at a time: an occurrence while the previous one is queued or running is dropped.
            singletonKey: `schedule:${key}`
          })
        )
      })

      const unschedule = Effect.fn("Jobs.unschedule")(function* (queue: string, key?: string) {
        yield* call(`could not unschedule "${queue}"`, () => boss.unschedule(queue, key ?? "default"))
      })

      const schedules = call("could not list schedules", () => boss.getSchedules()).pipe(
        Effect.map((rows) =>
          rows.map((s): ScheduleInfo => ({
            queue: s.name,
            key: s.key,
            cron: s.cron,
            timezone: s.timezone,
            data: s.data
          }))
        )
      )

      if (options.supervise) {
        yield* reconcile().pipe(
          Effect.catch((error) => Effect.logWarning("job status reconciliation failed", error.message)),
          Effect.repeat(Schedule.spaced(`${timings.superviseIntervalSeconds} seconds`)),
          Effect.forkScoped
        )
      }

      return Jobs.of({ enqueue, get, list, cancel, work, schedule, unschedule, schedules })
    })

  /** Jobs with the given background roles; see the module comment. */
  static readonly layerWith = (options: JobsOptions) => Layer.effect(Jobs, Jobs.make(options))

  /** The worker process's jobs: supervises and runs the cron pass. */
  static readonly layer = Jobs.layerWith({ supervise: true, schedule: true, instanceName: "worker" })

  /** For processes that only enqueue and read status (HTTP server beside a separate worker, CLI). */
  static readonly layerNoWorkers = Jobs.layerWith({ supervise: false, schedule: false })
}
