/**
 * Ongage CSV jobs (`docs/ongage-jobs.md`): a file of contacts uploaded once and sent to Ongage a few
 * records at a time. The original's endpoints (upload, list, PATCH, start, pause, resume) with its
 * keys, messages and statuses, plus `completed`, `archived` (an archive operation), per-job progress
 * and the drip worker (`CsvJobDrip.ts`) the original never had.
 *
 * Statuses: draft → running (start) ⇄ paused (pause / resume or start) → completed (every record
 * sent or rejected); any but archived → archived (hidden from the list, never sent again).
 */
import { Clock, Context, Effect, Layer, Option, Schema, Scope, Semaphore } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../platform/Config.ts"
import { decodeOptionalRow, decodeRows, toDatabaseError } from "../platform/Database.ts"
import {
  Conflict,
  type DatabaseError,
  NotFound,
  type PayloadTooLarge,
  type UnreadableFile,
  ValidationError
} from "../platform/Errors.ts"
import type { FileBody } from "../platform/FileStore.ts"
import { OngageClient } from "../ongage/OngageClient.ts"
import { type CsvJobBatch, makeCsvJobDrip } from "./CsvJobDrip.ts"
import { readCsvJobFile } from "./CsvJobFile.ts"

export { CSV_JOB_HEADERS } from "./CsvJobFile.ts"
export type { CsvJobBatch } from "./CsvJobDrip.ts"

export const CSV_JOB_STATUSES = ["draft", "running", "paused", "completed", "archived"] as const
export const CsvJobStatus = Schema.Literals(CSV_JOB_STATUSES)
export type CsvJobStatus = typeof CsvJobStatus.Type

/** A job as `GET /csv-jobs` lists it: the original's keys, then progress. */
export const CsvJob = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.NullOr(Schema.String),
  status: CsvJobStatus,
  total_records: Schema.Number,
  uploaded_at: Schema.Date,
  interval_seconds: Schema.Number,
  lower_limit: Schema.Number,
  upper_limit: Schema.Number,
  sent: Schema.Number,
  failed: Schema.Number,
  remaining: Schema.Number,
  next_run_at: Schema.NullOr(Schema.Date),
  last_run_at: Schema.NullOr(Schema.Date),
  completed_at: Schema.NullOr(Schema.Date),
  /** Why the last batch stopped early (Ongage failing as a whole); cleared by the next good batch. */
  error_message: Schema.NullOr(Schema.String)
})
export type CsvJob = typeof CsvJob.Type

export interface CsvJobUploaded {
  readonly ok: true
  readonly job_id: string
  readonly original_filename: string
  readonly total_records: number
  readonly status: "draft"
}

export interface CsvJobSettings {
  readonly interval_seconds: number
  readonly lower_limit: number
  readonly upper_limit: number
}

/** A record Ongage rejected, with its reason (`show`). */
export interface CsvJobFailure {
  readonly seq: number
  readonly email: string | null
  readonly list_id: string | null
  readonly error_message: string | null
}

export interface DripOptions {
  /**
   * Longest wait between passes. Default 250 ms: a job started or resumed is seen within it; a
   * scheduled batch is not waited for this long — the loop sleeps until the earliest `next_run_at`.
   */
  readonly pollMillis?: number
  /**
   * Jobs sending a batch at once. Each holds a database connection while its batch is at Ongage, so
   * the default is DB_POOL_MAX − 2, at most 10 (Ongage's parallel-call limit).
   */
  readonly concurrency?: number
  /** Told every batch the loop ran (the benchmark measures their lateness with it). */
  readonly onBatch?: (batch: CsvJobBatch) => void
}

/** Rows inserted per statement at upload. */
const INSERT_CHUNK = 5000

const JOB_COLUMNS = `id, original_filename, status, total_records, uploaded_at, interval_seconds, lower_limit,
  upper_limit, sent_records AS sent, failed_records AS failed,
  GREATEST(total_records - sent_records - failed_records, 0) AS remaining, next_run_at, last_run_at,
  completed_at, error_message`

const FailureRow = Schema.Struct({
  seq: Schema.Number,
  email: Schema.NullOr(Schema.String),
  list_id: Schema.NullOr(Schema.String),
  error_message: Schema.NullOr(Schema.String)
})

const checkSettings = (s: CsvJobSettings): Effect.Effect<void, ValidationError> => {
  for (const [field, value] of Object.entries(s)) {
    if (!Number.isInteger(value))
      return Effect.fail(new ValidationError({ message: `${field} must be an integer`, field }))
    // The columns are 32-bit integers: a larger value is the caller's mistake (400), not a database failure.
    if (value > 2_147_483_647)
      return Effect.fail(new ValidationError({ message: `${field} must be at most 2147483647`, field }))
  }
  if (s.lower_limit < 1) {
    return Effect.fail(new ValidationError({ message: "lower_limit must be >= 1", field: "lower_limit" }))
  }
  if (s.upper_limit < s.lower_limit) {
    return Effect.fail(new ValidationError({ message: "upper_limit must be >= lower_limit", field: "upper_limit" }))
  }
  if (s.interval_seconds < 60) {
    return Effect.fail(
      new ValidationError({ message: "Interval Time must be greater than 60 seconds", field: "interval_seconds" })
    )
  }
  return Effect.void
}

export class OngageJobs extends Context.Service<
  OngageJobs,
  {
    /** Checks the file, then creates the job (draft) and stores its records in one transaction. */
    readonly upload: (input: {
      readonly filename: string
      readonly body: FileBody
      /** Refuse a file larger than this (`PayloadTooLarge`). */
      readonly maxBytes?: number
    }) => Effect.Effect<CsvJobUploaded, ValidationError | UnreadableFile | PayloadTooLarge | DatabaseError>
    /** Newest first; archived jobs only when asked. */
    readonly list: (options?: {
      readonly includeArchived?: boolean
    }) => Effect.Effect<ReadonlyArray<CsvJob>, DatabaseError>
    readonly get: (id: string) => Effect.Effect<CsvJob, NotFound | DatabaseError>
    /** The records Ongage rejected, in file order (at most `limit`, default 100). */
    readonly failures: (
      id: string,
      limit?: number
    ) => Effect.Effect<ReadonlyArray<CsvJobFailure>, NotFound | DatabaseError>
    /** Interval and limits; only while draft or paused. */
    readonly update: (
      id: string,
      settings: CsvJobSettings
    ) => Effect.Effect<
      { readonly ok: true; readonly job_id: string },
      ValidationError | Conflict | NotFound | DatabaseError
    >
    readonly start: (
      id: string
    ) => Effect.Effect<{ readonly ok: true; readonly status: "running" }, ValidationError | NotFound | DatabaseError>
    readonly pause: (
      id: string
    ) => Effect.Effect<{ readonly ok: true; readonly status: "paused" }, ValidationError | NotFound | DatabaseError>
    readonly resume: (
      id: string
    ) => Effect.Effect<{ readonly ok: true; readonly status: "running" }, ValidationError | NotFound | DatabaseError>
    readonly archive: (
      id: string
    ) => Effect.Effect<{ readonly ok: true; readonly status: "archived" }, ValidationError | NotFound | DatabaseError>
    /** One pass of the drip worker at the clock's now (tests drive it with a test clock). */
    readonly runDue: (options?: DripOptions) => Effect.Effect<ReadonlyArray<CsvJobBatch>, DatabaseError>
    /** The drip worker: a pass every `pollMillis` until the scope closes; a failed pass is logged and retried. */
    readonly drip: (options?: DripOptions) => Effect.Effect<void, never, Scope.Scope>
  }
>()("@optimizer/core/ongage-jobs/OngageJobs") {
  static readonly layer = Layer.effect(
    OngageJobs,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const settings = yield* AppConfig
      const dripWorker = yield* makeCsvJobDrip
      const db =
        <A, E, R>(what: string) =>
        (effect: Effect.Effect<A, E, R>) =>
          effect.pipe(Effect.mapError((cause) => toDatabaseError(cause, what)))

      const find = (id: string) =>
        sql.unsafe(`SELECT ${JOB_COLUMNS} FROM csv_jobs WHERE id = $1`, [id]).pipe(decodeOptionalRow(CsvJob))

      const get = (id: string) =>
        find(id).pipe(
          Effect.flatMap((job) =>
            Option.isSome(job) ? Effect.succeed(job.value) : Effect.fail(new NotFound({ message: "Job not found" }))
          )
        )

      const upload = Effect.fn("OngageJobs.upload")(function* (input: {
        readonly filename: string
        readonly body: FileBody
        readonly maxBytes?: number
      }) {
        const file = yield* readCsvJobFile(input.filename, input.body, input.maxBytes)
        const c = file.columns
        const jobId = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              const [job] = yield* sql<{ id: string }>`
                INSERT INTO csv_jobs (original_filename, total_records) VALUES (${input.filename}, ${file.count})
                RETURNING id`
              const id = job!.id
              for (let from = 0; from < file.count; from += INSERT_CHUNK) {
                const to = Math.min(file.count, from + INSERT_CHUNK)
                yield* sql`
                  INSERT INTO csv_active_records (file_id, list_id, email, country, source, mobile, conversion_type,
                    original_source, hlr_status, uuid, seq)
                  SELECT ${id}, r.list_id, r.email, r.country, r.source, r.mobile, r.conversion_type,
                    r.original_source, r.hlr_status, r.uuid, ${from} + r.n
                  FROM unnest(${c.List_ID.slice(from, to)}::text[], ${c.Email.slice(from, to)}::text[],
                    ${c.Country.slice(from, to)}::text[], ${c.Source.slice(from, to)}::text[],
                    ${c.Mobile.slice(from, to)}::text[], ${c.conversion_type.slice(from, to)}::text[],
                    ${c.Original_source.slice(from, to)}::text[], ${c.HLR_Status.slice(from, to)}::text[],
                    ${c.Uuid.slice(from, to)}::text[])
                    WITH ORDINALITY AS r(list_id, email, country, source, mobile, conversion_type, original_source,
                      hlr_status, uuid, n)`
              }
              return id
            })
          )
          .pipe(db("could not store the CSV job"))
        yield* Effect.logInfo("csv job uploaded").pipe(Effect.annotateLogs({ job_id: jobId, records: file.count }))
        return {
          ok: true,
          job_id: jobId,
          original_filename: input.filename,
          total_records: file.count,
          status: "draft"
        } satisfies CsvJobUploaded
      })

      const list = (options?: { readonly includeArchived?: boolean }) =>
        sql
          .unsafe(
            `SELECT ${JOB_COLUMNS} FROM csv_jobs ${options?.includeArchived === true ? "" : "WHERE status <> 'archived'"}
             ORDER BY uploaded_at DESC, id`
          )
          .pipe(
            decodeRows(CsvJob),
            Effect.mapError((e) => toDatabaseError(e, "An error occured while fetching all files"))
          )

      const failures = (id: string, limit = 100) =>
        Effect.gen(function* () {
          yield* get(id)
          return yield* sql`
            SELECT seq::float8 AS seq, email, list_id, error_message FROM csv_active_records
            WHERE file_id = ${id} AND failed_at IS NOT NULL ORDER BY seq LIMIT ${Math.max(1, Math.min(10000, limit))}`.pipe(
            decodeRows(FailureRow)
          )
        })

      /** Moves `id` from one of `from` to `to` (with `set`), or fails with `message` (404 when it does not exist). */
      const transition = (
        id: string,
        from: ReadonlyArray<CsvJobStatus>,
        to: CsvJobStatus,
        message: string,
        dueNow: boolean
      ) =>
        Effect.gen(function* () {
          const now = new Date(yield* Clock.currentTimeMillis)
          const rows = yield* sql<{ id: string }>`
            UPDATE csv_jobs SET status = ${to},
              next_run_at = CASE WHEN ${dueNow} THEN ${now}::timestamptz ELSE next_run_at END,
              error_message = CASE WHEN ${dueNow} THEN NULL ELSE error_message END
            WHERE id = ${id} AND status IN ${sql.in(from)} RETURNING id`.pipe(db(`could not change CSV job ${id}`))
          if (rows.length > 0) {
            yield* Effect.logInfo(`csv job ${to}`).pipe(Effect.annotateLogs({ job_id: id }))
            return
          }
          yield* get(id)
          return yield* new ValidationError({ message })
        })

      const update = Effect.fn("OngageJobs.update")(function* (id: string, settings: CsvJobSettings) {
        yield* checkSettings(settings)
        const rows = yield* sql<{ id: string }>`
          UPDATE csv_jobs SET interval_seconds = ${settings.interval_seconds}, lower_limit = ${settings.lower_limit},
            upper_limit = ${settings.upper_limit}
          WHERE id = ${id} AND status IN ('draft', 'paused') RETURNING id`.pipe(db(`could not change CSV job ${id}`))
        if (rows.length === 0) {
          const job = yield* get(id)
          return yield* new Conflict({
            message: `Job is ${job.status}: its interval and limits change only while draft or paused`
          })
        }
        return { ok: true, job_id: id } as const
      })

      const defaultConcurrency = Math.max(1, Math.min(10, (settings.database?.poolMax ?? 10) - 2))
      /**
       * The loop: each due job's batch starts as soon as one of `concurrency` slots is free — a slow
       * batch (Ongage backing off) holds its slot, not the other jobs — and a job is never taken again
       * while its batch runs here. Between looks it sleeps until the earliest `next_run_at` of the
       * jobs not in flight, at most `pollMillis`.
       */
      const drip = (options: DripOptions = {}) =>
        Effect.gen(function* () {
          const pollMillis = options.pollMillis ?? 250
          const slots = yield* Semaphore.make(options.concurrency ?? defaultConcurrency)
          const scope = yield* Scope.Scope
          const inFlight = new Set<string>()
          const batch = (id: string, now: Date) =>
            slots
              .withPermits(1)(dripWorker.runBatch(id, now))
              .pipe(
                Effect.tap((b) =>
                  b === undefined
                    ? Effect.void
                    : Effect.sync(() => options.onBatch?.(b)).pipe(
                        Effect.andThen(
                          b.error === undefined
                            ? Effect.void
                            : Effect.logWarning("csv job batch stopped early", b.error).pipe(
                                Effect.annotateLogs({ job_id: id })
                              )
                        )
                      )
                ),
                Effect.catch((error) =>
                  Effect.logWarning("csv job batch failed", error.message).pipe(Effect.annotateLogs({ job_id: id }))
                ),
                Effect.ensuring(Effect.sync(() => inFlight.delete(id)))
              )
          const look = Effect.gen(function* () {
            const now = new Date(yield* Clock.currentTimeMillis)
            for (const id of yield* dripWorker.dueJobs(now)) {
              if (inFlight.has(id)) continue
              inFlight.add(id)
              yield* batch(id, now).pipe(Effect.forkIn(scope))
            }
            return yield* dripWorker.nextDueIn([...inFlight])
          }).pipe(
            Effect.catch((error) =>
              Effect.logWarning("csv job drip look failed", error.message).pipe(Effect.as(pollMillis))
            ),
            Effect.flatMap((dueIn) => Effect.sleep(Math.min(pollMillis, dueIn ?? pollMillis)))
          )
          yield* look.pipe(Effect.forever, Effect.forkIn(scope))
        })

      return OngageJobs.of({
        upload,
        list,
        get,
        failures,
        update,
        start: (id) =>
          transition(id, ["draft", "paused"], "running", "Job not in a startable state", true).pipe(
            Effect.as({ ok: true, status: "running" } as const)
          ),
        pause: (id) =>
          transition(id, ["running"], "paused", "Job not running", false).pipe(
            Effect.as({ ok: true, status: "paused" } as const)
          ),
        resume: (id) =>
          transition(id, ["paused"], "running", "Job not paused", true).pipe(
            Effect.as({ ok: true, status: "running" } as const)
          ),
        archive: (id) =>
          transition(id, ["draft", "running", "paused", "completed"], "archived", "Job already archived", false).pipe(
            Effect.as({ ok: true, status: "archived" } as const)
          ),
        runDue: dripWorker.runDue,
        drip
      })
    })
  )

  /** The service with the Ongage client from the settings. */
  static readonly layerLive = OngageJobs.layer.pipe(Layer.provide(OngageClient.layer))
}
