/**
 * The `job_status` table (sql/0001_initial.sql): what users see of a job (`GET /jobs/:id`,
 * `optimizer jobs list|show`) — state, attempts, progress, result, error. It outlives pg-boss's own
 * rows, which pg-boss deletes 7 days after they finish. Every statement on it is here, rows decoded
 * with Schema; they run on the `effect/sql` pool, except the insert of a new job's row, which must
 * run inside pg-boss's own transaction (`INSERT_QUEUED_STATUS`).
 *
 * Every write of an attempt is fenced by `attempts = <this attempt> AND state = 'running'`, so a
 * stale attempt (a worker presumed dead that was only slow) cannot overwrite a newer one.
 *
 * A completed job's progress says done (`DONE_PROGRESS`), however it was settled: a retry after a
 * crash may finish without reporting progress again (it resumed past the last step it reports, or
 * a previous attempt had done the work), and its row would otherwise keep the dead attempt's
 * `50068/200001`. A failed or cancelled job keeps its last progress: how far it got.
 */
import { Effect, Option, Schema } from "effect"
import type { SqlClient } from "effect/sql"
import { decodeOptionalRow, decodeRows, toDatabaseError } from "../Database.ts"
import type { DatabaseError } from "../Errors.ts"

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

/** The schema pg-boss keeps its queue in; `boss.start()` creates and migrates it. */
export const PGBOSS_SCHEMA = "pgboss"

/**
 * The row of a job enqueued now, as pg-boss's `executeSql` text: it runs on the connection of
 * pg-boss's transaction that also inserts the pg-boss job (`boss.send(…, { db })`), so a job never
 * exists without its status row or the reverse. The `effect/sql` pool cannot join that transaction.
 */
export const INSERT_QUEUED_STATUS = "INSERT INTO job_status (job_id, queue, state) VALUES ($1, $2, 'queued')"

/** bigint columns: `bigint` from the native driver; a number or a string from other drivers. */
const Count = Schema.NullOr(Schema.Union([Schema.BigInt, Schema.Number, Schema.String]))

const StatusRow = Schema.Struct({
  job_id: Schema.String,
  queue: Schema.String,
  state: Schema.Literals(["queued", "running", "completed", "failed", "cancelled"]),
  processed: Count,
  total: Count,
  attempts: Schema.Number,
  result: Schema.Unknown,
  error: Schema.NullOr(Schema.String),
  created_at: Schema.Date,
  started_at: Schema.NullOr(Schema.Date),
  completed_at: Schema.NullOr(Schema.Date),
  updated_at: Schema.Date
})

const toNumber = (v: bigint | number | string | null): number | null => (v === null ? null : Number(v))

const toInfo = (r: typeof StatusRow.Type): JobInfo => ({
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

export interface JobStatusRows {
  readonly find: (id: string) => Effect.Effect<Option.Option<JobInfo>, DatabaseError>
  /** Newest first. */
  readonly list: (filter: {
    readonly queue?: string | undefined
    readonly state?: JobState | undefined
    readonly limit: number
  }) => Effect.Effect<ReadonlyArray<JobInfo>, DatabaseError>
  /** Marks a queued or running job cancelled; none when it had already finished. */
  readonly cancel: (id: string) => Effect.Effect<Option.Option<JobInfo>, DatabaseError>
  /**
   * Marks an attempt running (creating the row when pg-boss has a job without one): none when it
   * did; the existing row when the job already reached a final state (the attempt must not run).
   */
  readonly start: (id: string, queue: string, attempt: number) => Effect.Effect<Option.Option<JobInfo>, DatabaseError>
  readonly progress: (
    id: string,
    attempt: number,
    processed: number,
    total: number
  ) => Effect.Effect<void, DatabaseError>
  /** `resultJson`: the handler's value as JSON text. */
  readonly complete: (id: string, attempt: number, resultJson: string) => Effect.Effect<void, DatabaseError>
  /** The attempt failed: `queued` again when it will be retried, else `failed`. */
  readonly fail: (
    id: string,
    attempt: number,
    state: "queued" | "failed",
    message: string
  ) => Effect.Effect<void, DatabaseError>
  /** Folds what pg-boss knows into the rows of unfinished jobs (all, or the one `id`); see `reconcile` below. */
  readonly reconcile: (id?: string) => Effect.Effect<void, DatabaseError>
}

/**
 * The SET clause that makes a completed job's progress whole: `processed = total`, the larger of the
 * two (a handler whose total was an estimate may report more than it). No progress reported at all
 * stays none. Both right-hand sides read the row's values before the update.
 */
const DONE_PROGRESS = "processed = greatest(processed, total), total = greatest(processed, total)"

export const makeJobStatusRows = (sql: SqlClient.SqlClient): JobStatusRows => {
  const columns = sql.literal(
    "job_id, queue, state, processed, total, attempts, result, error, created_at, started_at, completed_at, updated_at"
  )
  const run = <A>(statement: Effect.Effect<A, unknown>) => statement.pipe(Effect.mapError((e) => toDatabaseError(e)))

  const find = (id: string) =>
    sql`SELECT ${columns} FROM job_status WHERE job_id = ${id}`.pipe(
      decodeOptionalRow(StatusRow),
      Effect.map(Option.map(toInfo))
    )

  const list: JobStatusRows["list"] = (filter) =>
    sql`SELECT ${columns} FROM job_status
        WHERE ${filter.queue === undefined ? sql`true` : sql`queue = ${filter.queue}`}
          AND ${filter.state === undefined ? sql`true` : sql`state = ${filter.state}`}
        ORDER BY created_at DESC, job_id LIMIT ${filter.limit}`.pipe(
      decodeRows(StatusRow),
      Effect.map((rows) => rows.map(toInfo))
    )

  const cancel = (id: string) =>
    sql`UPDATE job_status SET state = 'cancelled', completed_at = now(), updated_at = now()
        WHERE job_id = ${id} AND state IN ('queued', 'running') RETURNING ${columns}`.pipe(
      decodeOptionalRow(StatusRow),
      Effect.map(Option.map(toInfo))
    )

  const start = (id: string, queue: string, attempt: number) =>
    Effect.gen(function* () {
      const started = yield* run(sql`
        INSERT INTO job_status (job_id, queue, state, attempts, started_at)
        VALUES (${id}, ${queue}, 'running', ${attempt}, now())
        ON CONFLICT (job_id) DO UPDATE SET
          state = 'running', attempts = EXCLUDED.attempts,
          started_at = coalesce(job_status.started_at, now()), completed_at = NULL, updated_at = now()
        WHERE job_status.state IN ('queued', 'running') AND job_status.attempts <= EXCLUDED.attempts
        RETURNING state`)
      if (started.length > 0) return Option.none<JobInfo>()
      return yield* find(id)
    })

  const progress = (id: string, attempt: number, processed: number, total: number) =>
    run(sql`UPDATE job_status SET processed = ${processed}, total = ${total}, updated_at = now()
            WHERE job_id = ${id} AND attempts = ${attempt} AND state = 'running'`).pipe(Effect.asVoid)

  const complete = (id: string, attempt: number, resultJson: string) =>
    run(sql`UPDATE job_status SET state = 'completed', result = ${resultJson}::jsonb, error = NULL,
              ${sql.literal(DONE_PROGRESS)}, completed_at = now(), updated_at = now()
            WHERE job_id = ${id} AND attempts = ${attempt} AND state = 'running'`).pipe(Effect.asVoid)

  const fail = (id: string, attempt: number, state: "queued" | "failed", message: string) =>
    run(sql`UPDATE job_status SET state = ${state}, error = ${message},
              completed_at = ${state === "failed" ? sql`now()` : sql`NULL`}, updated_at = now()
            WHERE job_id = ${id} AND attempts = ${attempt} AND state = 'running'`).pipe(Effect.asVoid)

  /**
   * Folds what pg-boss knows and the worker could not write into `job_status`: a job pg-boss finished
   * (failed by heartbeat loss or expiration on its last attempt, cancelled or completed elsewhere), a
   * job put back for a retry by the supervisor while its row still says `running` (fenced on the
   * attempt, so a retry that has already started is left alone), and a job pg-boss no longer has
   * (deleted after its retention while still queued).
   */
  const reconcile = (id?: string) =>
    run(sql`
      WITH candidates AS (
        SELECT s.job_id, s.state AS status_state, j.state::text AS boss_state, j.output, j.completed_on
        FROM job_status s
        LEFT JOIN ${sql.literal(PGBOSS_SCHEMA)}.job j ON j.id = s.job_id AND j.name = s.queue
        WHERE s.state IN ('queued', 'running') ${id === undefined ? sql.literal("") : sql`AND s.job_id = ${id}`}
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
        processed = CASE WHEN c.boss_state = 'completed' THEN greatest(s.processed, s.total) ELSE s.processed END,
        total = CASE WHEN c.boss_state = 'completed' THEN greatest(s.processed, s.total) ELSE s.total END,
        updated_at = now()
      FROM candidates c
      WHERE s.job_id = c.job_id AND s.state = c.status_state`).pipe(Effect.asVoid)

  return { find, list, cancel, start, progress, complete, fail, reconcile }
}
