/**
 * REG search (ORIGINAL.md §1.12, §7.1): the numbers that registered on chosen offers of a country but
 * never deposited (REG without FTD) — the list a re-engagement broadcast goes to.
 *
 * - Search (`search`): the offers with conversions of the country (optionally with a postback between
 *   `from_date` and `to_date`: calendar dates, UTC, both inclusive) make a new entry
 *   `REG_<cc>_<YYYY-MM-DD_HHMMSS>` (UTC).
 * - Process (`startProcessing`, a durable job; one search processing at a time; from `uploaded` or
 *   `failed` only, as the original): distinct canonical numbers with a REG conversion for the country,
 *   one of the selected offers and the window, minus those with an FTD for the same country, offers
 *   and window. Written one number per line, no header, in number order. Numbers that are not
 *   canonical keys (an un-substituted `{{phoneNumber}}` stored by the original) are left out.
 * - A processing job that dies without finishing leaves its entry `failed`, not `processing` forever.
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { toDatabaseError } from "../platform/Database.ts"
import { Conflict, NotFound, ValidationError, type DatabaseError, type StorageError } from "../platform/Errors.ts"
import { FileStore } from "../platform/FileStore.ts"
import { Jobs, type RunningJob } from "../platform/Jobs.ts"
import {
  countryCodeParam,
  csvLine,
  dateWindow,
  failureMessage,
  isFinalAttempt,
  isUuid,
  releaseStaleSql,
  statusFilter,
  utcStamp,
  writeLines,
  processedFileDownload,
  type DownloadableFile
} from "./SearchFiles.ts"
import type { SearchProcessingStarted } from "./SmartCleaning.ts"

export const REG_SEARCH_QUEUE = "reg-search"
/** FileStore folder, as the original's directory. */
export const REG_SEARCH_PROCESSED_DIR = "processed_reg_search"

const TABLE = "uploaded_reg_search_files"

/** What `/reg-search/search` answers (the original's keys). */
export interface RegSearchCreated {
  readonly id: string
  readonly original_filename: string
  readonly country_code: string
  readonly status: "uploaded"
  readonly offer_count: number
  /** Offer names joined with `^`. */
  readonly offers: string
  readonly from_date: string | null
  readonly to_date: string | null
}

/** An item of `/reg-search/files` (the original's keys). */
export interface RegSearchEntry {
  readonly id: string
  readonly original_filename: string
  readonly country_code: string | null
  readonly status: string
  readonly uploaded_at: Date
  readonly processing_started_at: Date | null
  readonly processed_at: Date | null
  readonly error_message: string | null
  readonly record_count_total: number | null
  readonly record_count_clean: number | null
  readonly offer_count: number | null
  readonly offers: string | null
  readonly selected_offer: string | null
}

export interface RegSearchJobResult {
  readonly file_id: string
  readonly skipped?: string
  readonly reg_only?: number
}

export type RegSearchError = ValidationError | NotFound | Conflict | DatabaseError | StorageError

/** A canonical key (E.164 digits without "+"), as the conversions sync stores valid phones. */
const CANONICAL = "^[1-9][0-9]{6,14}$"

/** The window condition on `postback_timestamp`: `$from`/`$to` are dates or NULL. */
const windowSql = (alias: string, from: string, to: string) =>
  `(${from}::date IS NULL OR ${alias}.postback_timestamp >= (${from}::date)::timestamp AT TIME ZONE 'UTC')
   AND (${to}::date IS NULL OR ${alias}.postback_timestamp < (${to}::date + 1)::timestamp AT TIME ZONE 'UTC')`

const REG_ONLY_SQL = `
  SELECT DISTINCT r.custom_variable_1 AS phone
  FROM api_voluum_conversions r
  WHERE r.country_code = $1 AND r.offer_name = ANY($2::text[]) AND r.conversion_type = 'REG'
    AND r.custom_variable_1 ~ '${CANONICAL}'
    AND ${windowSql("r", "$3", "$4")}
    AND NOT EXISTS (
      SELECT 1 FROM api_voluum_conversions f
      WHERE f.custom_variable_1 = r.custom_variable_1
        AND f.country_code = $1 AND f.offer_name = ANY($2::text[]) AND f.conversion_type = 'FTD'
        AND ${windowSql("f", "$3", "$4")}
    )
  ORDER BY 1`

export class RegSearch extends Context.Service<
  RegSearch,
  {
    /** A new search entry for a country (and optional postback window). */
    readonly search: (params: {
      readonly countryCode?: string
      readonly fromDate?: string
      readonly toDate?: string
    }) => Effect.Effect<RegSearchCreated, RegSearchError>
    /** Entries, newest first; `status` is a comma-separated filter. */
    readonly list: (params?: {
      readonly status?: string
    }) => Effect.Effect<ReadonlyArray<RegSearchEntry>, RegSearchError>
    /** Marks the entry processing and queues its job. */
    readonly startProcessing: (
      id: string,
      options: { readonly offers: ReadonlyArray<string> }
    ) => Effect.Effect<SearchProcessingStarted, RegSearchError>
    readonly archive: (id: string) => Effect.Effect<{ readonly ok: true }, RegSearchError>
    /** Deletes the entry and its file. */
    readonly remove: (id: string) => Effect.Effect<{ readonly ok: true }, RegSearchError>
    /** The result file (`reg_only_<original_filename>.csv`). */
    readonly download: (id: string) => Effect.Effect<DownloadableFile, RegSearchError>
    /** The job handler of the `reg-search` queue. */
    readonly runJob: (job: RunningJob) => Effect.Effect<RegSearchJobResult, RegSearchError>
  }
>()("@optimizer/core/voluum/RegSearch") {
  static readonly layer = Layer.effect(
    RegSearch,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const files = yield* FileStore
      const jobs = yield* Jobs
      const db = <A>(effect: Effect.Effect<A, SqlError>) => Effect.mapError(effect, toDatabaseError)

      const releaseStale = db(sql.unsafe(releaseStaleSql(TABLE)))

      const search = Effect.fn("RegSearch.search")(function* (params: {
        readonly countryCode?: string
        readonly fromDate?: string
        readonly toDate?: string
      }) {
        const country = yield* countryCodeParam(params.countryCode, "country_code is required")
        const { from, to } = yield* dateWindow(params.fromDate, params.toDate)
        const offers = yield* db(
          sql.unsafe<{ offer_name: string }>(
            `SELECT DISTINCT c.offer_name FROM api_voluum_conversions c
             WHERE c.country_code = $1 AND c.offer_name IS NOT NULL AND ${windowSql("c", "$2", "$3")}
             ORDER BY c.offer_name`,
            [country, from, to]
          )
        ).pipe(Effect.map((rows) => rows.map((r) => r.offer_name)))
        if (offers.length === 0) {
          return yield* new NotFound({ message: `No offers found for country code: ${country}` })
        }
        const id = randomUUID()
        const originalFilename = `REG_${country}_${utcStamp(new Date())}`
        yield* db(sql`
          INSERT INTO uploaded_reg_search_files
            (id, original_filename, country_code, status, offer_count, offers, from_date, to_date)
          VALUES (${id}::uuid, ${originalFilename}, ${country}, 'uploaded', ${offers.length}, ${offers.join("^")},
                  ${from}::date, ${to}::date)`)
        return {
          id,
          original_filename: originalFilename,
          country_code: country,
          status: "uploaded",
          offer_count: offers.length,
          offers: offers.join("^"),
          from_date: from,
          to_date: to
        } satisfies RegSearchCreated
      })

      const list = Effect.fn("RegSearch.list")(function* (params?: { readonly status?: string }) {
        const statuses = yield* statusFilter(params?.status)
        yield* releaseStale
        return yield* db(
          sql.unsafe<RegSearchEntry>(
            `SELECT id::text AS id, original_filename, country_code, status, uploaded_at, processing_started_at,
                    processed_at, error_message, record_count_total, record_count_clean, offer_count, offers,
                    selected_offer
             FROM uploaded_reg_search_files
             WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))
             ORDER BY uploaded_at DESC, id`,
            [statuses]
          )
        )
      })

      const notEligible = () => new ValidationError({ message: "Entry not found or not eligible for processing" })

      const startProcessing = Effect.fn("RegSearch.startProcessing")(function* (
        id: string,
        options: { readonly offers: ReadonlyArray<string> }
      ) {
        const offers = options.offers.filter((o) => typeof o === "string" && o !== "")
        if (offers.length === 0) {
          return yield* new ValidationError({ message: "At least one offer is required", field: "offers" })
        }
        if (!isUuid(id)) return yield* notEligible()
        yield* releaseStale
        const marked = yield* sql<{ id: string }>`
          UPDATE uploaded_reg_search_files
          SET status = 'processing', processing_started_at = now(), error_message = NULL, job_id = NULL
          WHERE id = ${id}::uuid AND status IN ('uploaded', 'failed')
          RETURNING id::text AS id`.pipe(
          Effect.catchReason("SqlError", "UniqueViolation", () =>
            Effect.fail(new Conflict({ message: "Another search is already processing" }))
          ),
          Effect.mapError((e) => (e._tag === "SqlError" ? toDatabaseError(e) : e))
        )
        if (marked.length === 0) return yield* notEligible()
        const jobId = yield* jobs
          .enqueue(REG_SEARCH_QUEUE, { file_id: id, offers }, { singletonKey: `reg-search-${id}` })
          .pipe(
            Effect.tapError((error) =>
              db(sql`
                UPDATE uploaded_reg_search_files
                SET status = 'failed', error_message = ${`could not queue the processing: ${error.message}`}
                WHERE id = ${id}::uuid AND status = 'processing'`).pipe(Effect.ignore)
            )
          )
        yield* db(sql`UPDATE uploaded_reg_search_files SET job_id = ${jobId}::uuid WHERE id = ${id}::uuid`)
        return { ok: true, file_id: id, status: "processing", job_id: jobId } satisfies SearchProcessingStarted
      })

      const archive = Effect.fn("RegSearch.archive")(function* (id: string) {
        const rows = isUuid(id)
          ? yield* db(
              sql<{ id: string }>`
                UPDATE uploaded_reg_search_files SET status = 'archived' WHERE id = ${id}::uuid RETURNING id::text AS id`
            )
          : []
        if (rows.length === 0) return yield* new NotFound({ message: "Entry not found" })
        return { ok: true as const }
      })

      const remove = Effect.fn("RegSearch.remove")(function* (id: string) {
        const rows = isUuid(id)
          ? yield* db(
              sql<{ cleaned_file_path: string | null }>`
                DELETE FROM uploaded_reg_search_files WHERE id = ${id}::uuid RETURNING cleaned_file_path`
            )
          : []
        const row = rows[0]
        if (row === undefined) return yield* new NotFound({ message: "Entry not found" })
        if (row.cleaned_file_path !== null) yield* files.delete(row.cleaned_file_path)
        return { ok: true as const }
      })

      const download = Effect.fn("RegSearch.download")(function* (id: string) {
        const rows = isUuid(id)
          ? yield* db(
              sql<{ status: string; cleaned_file_path: string | null; original_filename: string }>`
                SELECT status, cleaned_file_path, original_filename FROM uploaded_reg_search_files
                WHERE id = ${id}::uuid`
            )
          : []
        const row = rows[0]
        return yield* processedFileDownload(files, row, {
          notFound: "Entry not found",
          notProcessed: "Not processed yet",
          filename: () => `reg_only_${row!.original_filename}.csv`
        })
      })

      // ---- the job ---------------------------------------------------------------------------------

      const process = (fileId: string, offers: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          const [entry] = yield* db(
            sql<{ status: string; country_code: string | null; from_date: string | null; to_date: string | null }>`
              SELECT status, country_code, from_date::text AS from_date, to_date::text AS to_date
              FROM uploaded_reg_search_files WHERE id = ${fileId}::uuid`
          )
          if (entry === undefined) return { file_id: fileId, skipped: "the entry was deleted" }
          if (entry.status !== "processing") return { file_id: fileId, skipped: `the entry is ${entry.status}` }
          const key = `${REG_SEARCH_PROCESSED_DIR}/${fileId}.csv`
          const numbers = sql
            .unsafe<{ phone: string }>(REG_ONLY_SQL, [entry.country_code, offers, entry.from_date, entry.to_date])
            .stream.pipe(
              Stream.mapError(toDatabaseError),
              Stream.map((r) => csvLine([r.phone]))
            )
          const count = yield* writeLines(files, key, numbers)
          const updated = yield* db(
            sql<{ id: string }>`
              UPDATE uploaded_reg_search_files
              SET status = 'processed', cleaned_file_path = ${key}, processed_at = now(),
                  record_count_total = ${count}, record_count_clean = ${count},
                  selected_offer = ${offers.join("^")}, error_message = NULL
              WHERE id = ${fileId}::uuid AND status = 'processing'
              RETURNING id::text AS id`
          )
          if (updated.length === 0) {
            const still = yield* db(
              sql<{ id: string }>`SELECT id::text AS id FROM uploaded_reg_search_files WHERE id = ${fileId}::uuid`
            )
            if (still.length === 0) yield* files.delete(key)
            return { file_id: fileId, skipped: "the entry changed while it was processed" }
          }
          return { file_id: fileId, reg_only: count } satisfies RegSearchJobResult
        })

      const runJob = Effect.fn("RegSearch.runJob")(function* (job: RunningJob) {
        const data = job.data as { file_id?: unknown; offers?: unknown }
        const fileId = typeof data.file_id === "string" ? data.file_id : ""
        const offers = Array.isArray(data.offers) ? data.offers.filter((o): o is string => typeof o === "string") : []
        if (!isUuid(fileId) || offers.length === 0) {
          return yield* new ValidationError({ message: "a reg-search job needs a file_id and offers" })
        }
        return yield* process(fileId, offers).pipe(
          Effect.tapError((error) =>
            isFinalAttempt(job, error)
              ? db(sql`
                  UPDATE uploaded_reg_search_files SET status = 'failed', error_message = ${failureMessage(error)}
                  WHERE id = ${fileId}::uuid AND status = 'processing'`).pipe(Effect.ignore)
              : Effect.void
          )
        )
      })

      return RegSearch.of({ search, list, startProcessing, archive, remove, download, runJob })
    })
  )
}
