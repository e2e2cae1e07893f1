/**
 * The drip worker of Ongage CSV jobs (`docs/ongage-jobs.md`): one batch of one job, and one pass over
 * every due job. The state lives in `csv_jobs` (status, cursor, next_run_at), so a restarted or
 * another worker process continues exactly where the last committed batch left off.
 *
 * A batch runs in one transaction that first takes a transaction-scoped advisory lock on the job (a
 * second worker skips the job, it never waits), then reads the job and its next unsent records
 * (`seq > cursor`, file order), sends them, marks each record sent or failed and moves the cursor —
 * all committed together. The job's row itself is not locked, so pause/PATCH answer at once; the
 * batch in flight finishes and the next one sees the new status. A batch whose Ongage call fails as
 * a whole (after the client's retries) commits what was sent before the failure and keeps the rest
 * for the next interval. A process killed mid-batch commits nothing: the batch is sent again by the
 * next worker (Ongage upserts with `overwrite: true`, so a resend changes no contact) — records are
 * marked sent exactly once, and only the batch in flight at the kill can reach Ongage twice.
 */
import { Clock, Effect, Random, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { decodeOptionalRow, decodeRows, toDatabaseError } from "../platform/Database.ts"
import type { DatabaseError } from "../platform/Errors.ts"
import { type OngageContact, OngageClient, type OngageError } from "../ongage/OngageClient.ts"

/** Contacts per Ongage request: Ongage advises batches of 10–20 for `/v2/contacts`. */
export const CONTACTS_PER_REQUEST = 20

/** First key of the two-key advisory lock of a job's batch ("ongj"). */
const LOCK_CLASS = 0x6f6e676a

const DueJob = Schema.Struct({
  id: Schema.String,
  lower_limit: Schema.Number,
  upper_limit: Schema.Number,
  interval_seconds: Schema.Number,
  cursor: Schema.Number,
  next_run_at: Schema.Date
})

const PendingRecord = Schema.Struct({
  seq: Schema.Number,
  list_id: Schema.NullOr(Schema.String),
  email: Schema.NullOr(Schema.String),
  country: Schema.NullOr(Schema.String),
  source: Schema.NullOr(Schema.String),
  mobile: Schema.NullOr(Schema.String),
  conversion_type: Schema.NullOr(Schema.String),
  original_source: Schema.NullOr(Schema.String),
  hlr_status: Schema.NullOr(Schema.String),
  uuid: Schema.NullOr(Schema.String)
})
type PendingRecord = typeof PendingRecord.Type

/** The CSV's columns as Ongage fields, by name (lower-case, as the list's fields are named); empty cells are left out. */
export const contactOf = (r: PendingRecord): OngageContact => {
  const fields: Record<string, string> = {}
  const put = (name: string, value: string | null) => {
    if (value !== null && value !== "") fields[name] = value
  }
  put("country", r.country)
  put("source", r.source)
  put("mobile", r.mobile)
  put("conversion_type", r.conversion_type)
  put("original_source", r.original_source)
  put("hlr_status", r.hlr_status)
  put("uuid", r.uuid)
  return { email: (r.email ?? "").trim(), fields }
}

export interface CsvJobBatch {
  readonly jobId: string
  readonly sent: number
  readonly failed: number
  /** When the batch started (epoch milliseconds). */
  readonly startedAt: number
  /** How late the batch started against its `next_run_at`, in milliseconds. */
  readonly lateMs: number
  readonly completed: boolean
  /** Why the batch stopped early (Ongage failed as a whole); the rest waits for the next interval. */
  readonly error?: string
}

interface Marked {
  readonly sentSeqs: Array<number>
  readonly failedSeqs: Array<number>
  readonly failedReasons: Array<string>
}

/** Runs of consecutive records with the same List_ID, at most `CONTACTS_PER_REQUEST` each, in file order. */
const requestsOf = (records: ReadonlyArray<PendingRecord>): ReadonlyArray<ReadonlyArray<PendingRecord>> => {
  const requests: Array<Array<PendingRecord>> = []
  for (const r of records) {
    const last = requests[requests.length - 1]
    if (last !== undefined && last.length < CONTACTS_PER_REQUEST && last[0]!.list_id === r.list_id) last.push(r)
    else requests.push([r])
  }
  return requests
}

export const makeCsvJobDrip = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const ongage = yield* OngageClient

  /** Sends one request's records; a record Ongage cannot take (no List_ID, no email) fails without a call. */
  const sendRequest = (records: ReadonlyArray<PendingRecord>, marked: Marked): Effect.Effect<void, OngageError> =>
    Effect.gen(function* () {
      const listId = (records[0]!.list_id ?? "").trim()
      const sendable: Array<PendingRecord> = []
      // Marked only once the request's outcome is known: a request that fails as a whole leaves all
      // of its records unsent (and uncounted) for the next batch.
      const unsendable: Array<readonly [number, string]> = []
      for (const r of records) {
        const email = (r.email ?? "").trim()
        const reason = listId === "" ? "no List_ID" : !email.includes("@") ? "no valid Email" : undefined
        if (reason === undefined) sendable.push(r)
        else unsendable.push([r.seq, reason])
      }
      const markUnsendable = () => {
        for (const [seq, reason] of unsendable) {
          marked.failedSeqs.push(seq)
          marked.failedReasons.push(reason)
        }
      }
      if (sendable.length === 0) return markUnsendable()
      // A list Ongage does not know (404) or data it refuses (400) is the records' fault, not Ongage's:
      // they fail with its message rather than block the job; 401/403, 429 and 5xx stop the batch.
      const outcome = yield* ongage.upsertContacts(sendable.map(contactOf), { listId }).pipe(
        Effect.catchIf(
          (e) => e._tag === "UpstreamError" && (e.status === 400 || e.status === 404),
          (e) =>
            Effect.succeed({
              succeeded: [],
              failed: sendable.map((r) => ({ email: contactOf(r).email, reason: e.message }))
            })
        )
      )
      markUnsendable()
      const reasons = new Map(outcome.failed.map((f) => [f.email, f.reason]))
      for (const r of sendable) {
        const reason = reasons.get((r.email ?? "").trim())
        if (reason === undefined) marked.sentSeqs.push(r.seq)
        else {
          marked.failedSeqs.push(r.seq)
          marked.failedReasons.push(reason)
        }
      }
    })

  /**
   * One batch of job `jobId` if it is running and due at `now`; `undefined` when it is not (or another
   * worker holds it).
   */
  const runBatch = (jobId: string, now: Date): Effect.Effect<CsvJobBatch | undefined, DatabaseError> =>
    sql
      .withTransaction(
        Effect.gen(function* () {
          const [lock] = yield* sql<{
            locked: boolean
          }>`SELECT pg_try_advisory_xact_lock(${LOCK_CLASS}, hashtext(${jobId})) AS locked`
          if (lock?.locked !== true) return undefined
          const found = yield* sql`
            SELECT id, lower_limit, upper_limit, interval_seconds, "cursor"::float8 AS "cursor", next_run_at
            FROM csv_jobs WHERE id = ${jobId} AND status = 'running' AND next_run_at <= ${now}`.pipe(
            decodeOptionalRow(DueJob)
          )
          if (found._tag === "None") return undefined
          const job = found.value
          // When this batch really starts (a pass runs its due jobs a few at a time): its lateness and timestamps.
          const startedAt = new Date(Math.max(now.getTime(), yield* Clock.currentTimeMillis))
          const count = yield* Random.nextIntBetween(job.lower_limit, job.upper_limit)
          const records = yield* sql`
            SELECT seq::float8 AS seq, list_id, email, country, source, mobile, conversion_type,
                   original_source, hlr_status, uuid
            FROM csv_active_records WHERE file_id = ${jobId} AND seq > ${String(job.cursor)}::bigint
            ORDER BY seq LIMIT ${count}`.pipe(decodeRows(PendingRecord))

          const marked: Marked = { sentSeqs: [], failedSeqs: [], failedReasons: [] }
          let cursor = job.cursor
          let error: string | undefined
          for (const request of requestsOf(records)) {
            const result = yield* Effect.result(sendRequest(request, marked))
            if (result._tag === "Failure") {
              error = result.failure.message
              break
            }
            cursor = request[request.length - 1]!.seq
          }
          const done = error === undefined && records.length < count
          const nothingLeft =
            done ||
            (error === undefined &&
              (yield* sql<{ more: boolean }>`
                SELECT EXISTS (SELECT 1 FROM csv_active_records WHERE file_id = ${jobId} AND seq > ${String(cursor)}::bigint) AS more`)[0]
                ?.more === false)

          // `interval_seconds` from this batch's start: a batch that started late (many jobs due in the
          // same second, Ongage answering 10 calls at a time) moves its job's later batches with it, so
          // jobs started together spread out after their first batch instead of queueing every interval.
          const nextRun = new Date(startedAt.getTime() + job.interval_seconds * 1000)
          if (marked.sentSeqs.length > 0) {
            yield* sql`UPDATE csv_active_records SET sent_at = ${startedAt}, failed_at = NULL, error_message = NULL
              WHERE file_id = ${jobId} AND seq = ANY(${marked.sentSeqs.map(String)}::bigint[])`
          }
          if (marked.failedSeqs.length > 0) {
            yield* sql`UPDATE csv_active_records r SET failed_at = ${startedAt}, error_message = f.reason
              FROM unnest(${marked.failedSeqs.map(String)}::bigint[], ${marked.failedReasons}::text[]) AS f(seq, reason)
              WHERE r.file_id = ${jobId} AND r.seq = f.seq`
          }
          yield* sql`
            UPDATE csv_jobs SET
              "cursor" = ${String(cursor)}::bigint,
              sent_records = sent_records + ${marked.sentSeqs.length},
              failed_records = failed_records + ${marked.failedSeqs.length},
              last_run_at = ${startedAt},
              error_message = ${error ?? null},
              next_run_at = CASE WHEN ${nothingLeft} THEN NULL ELSE ${nextRun}::timestamptz END,
              status = CASE WHEN ${nothingLeft} AND status IN ('running', 'paused') THEN 'completed' ELSE status END,
              completed_at = CASE WHEN ${nothingLeft} THEN ${startedAt}::timestamptz ELSE completed_at END
            WHERE id = ${jobId}`
          const outcome: CsvJobBatch = {
            jobId,
            sent: marked.sentSeqs.length,
            failed: marked.failedSeqs.length,
            startedAt: startedAt.getTime(),
            lateMs: startedAt.getTime() - job.next_run_at.getTime(),
            completed: nothingLeft,
            ...(error === undefined ? {} : { error })
          }
          return outcome
        })
      )
      .pipe(Effect.mapError((cause) => toDatabaseError(cause, `could not run a batch of CSV job ${jobId}`)))

  /**
   * One pass: every job due at the clock's now gets one batch, the most overdue first, `concurrency`
   * at a time (Ongage's client keeps its own request limits on top). Returns the batches run.
   */
  /** The running jobs due at `now`, the most overdue first. */
  const dueJobs = (now: Date, limit = 1000) =>
    sql<{ id: string }>`
      SELECT id FROM csv_jobs WHERE status = 'running' AND next_run_at <= ${now}
      ORDER BY next_run_at, id LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map((r) => r.id)),
      Effect.mapError((cause) => toDatabaseError(cause, "could not list the due CSV jobs"))
    )

  /**
   * One pass: every job due at the clock's now gets one batch, the most overdue first, `concurrency`
   * at a time (Ongage's client keeps its own request limits on top). Returns the batches run. Tests
   * drive the worker with it; the loop (`OngageJobs.drip`) does not wait for a whole pass.
   */
  const runDue = (options: { readonly concurrency?: number; readonly limit?: number } = {}) =>
    Effect.gen(function* () {
      const now = new Date(yield* Clock.currentTimeMillis)
      const due = yield* dueJobs(now, options.limit)
      const outcomes = yield* Effect.forEach(due, (id) => runBatch(id, now), {
        concurrency: options.concurrency ?? 10
      })
      return outcomes.filter((o): o is CsvJobBatch => o !== undefined)
    })

  /**
   * Milliseconds until the earliest running job not in `busy` is due (0 when one is due now), or
   * undefined when none is.
   */
  const nextDueIn = (busy: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const [row] = yield* sql<{ at: Date | null }>`
        SELECT min(next_run_at) AS at FROM csv_jobs WHERE status = 'running' AND NOT (id = ANY(${busy}::text[]))`.pipe(
        Effect.mapError((cause) => toDatabaseError(cause, "could not read the next CSV job due"))
      )
      return row?.at == null ? undefined : Math.max(0, row.at.getTime() - now)
    })

  return { runBatch, runDue, dueJobs, nextDueIn }
})
