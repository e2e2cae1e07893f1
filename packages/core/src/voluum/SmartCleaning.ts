/**
 * Smart cleaning (ORIGINAL.md §1.11, §7.1): a list of clickers — the whitelist numbers of a country,
 * or an uploaded file — from which the numbers that already converted on chosen offers are removed,
 * so the next broadcast for those offers does not reach them again.
 *
 * - Create from a country (`createFromCountry`): whitelist numbers with that `country_code`, optionally
 *   first listed between `from_date` and `to_date` (calendar dates, UTC, both inclusive), written as the
 *   original's 2-column file (phone, timestamp as `YYYY-MM-DD HH:MM:SS[.ffffff]`, no header). Offers =
 *   the distinct offer names of that country's conversions. The created entry is returned (the
 *   original returned `null`).
 * - Create from an upload (`upload`): a `.csv` stored as sent; offers = every offer name in the
 *   conversions.
 * - Process (`startProcessing`, a durable job; one entry processing at a time): read the file (2
 *   columns when its first row has 2 cells), normalise every number to the canonical key (invalid
 *   ones — a header, a typo — are dropped and counted; the original compared raw strings), keep the
 *   first occurrence of each; if `filter_last_24h`, drop numbers with a live click on one of the
 *   offers in the last 24 h; drop numbers with an FTD on one of the offers (any country, any date),
 *   and with `filter_regs` also a REG; write what is left (phone[, timestamp], no header, in the
 *   file's order). An empty result is an empty file (the original wrote none, so its download failed).
 * - A processing job that dies without finishing leaves its entry `failed` with the reason, not
 *   `processing` forever (released when the entries are listed or another processing starts).
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { csvRows } from "../lists/ListCsv.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { AppConfig } from "../platform/Config.ts"
import { toDatabaseError } from "../platform/Database.ts"
import {
  Conflict,
  NotFound,
  ValidationError,
  type DatabaseError,
  type PayloadTooLarge,
  type StorageError,
  type UnreadableFile
} from "../platform/Errors.ts"
import { FileStore, type FileBody } from "../platform/FileStore.ts"
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
  utcDate,
  writeLines,
  type DownloadableFile,
  processedFileDownload
} from "./SearchFiles.ts"

export type { DownloadableFile } from "./SearchFiles.ts"

export const SMART_CLEANING_QUEUE = "smart-cleaning"
/** FileStore folders, as the original's directories. */
export const SMART_CLEANING_RAW_DIR = "raw_smart_cleaning_voluum"
export const SMART_CLEANING_PROCESSED_DIR = "processed_smart_cleaning_voluum"

const TABLE = "uploaded_smart_cleaning_voluum_files"

/** An item of `/smart-cleaning-files-voluum` (the original's keys). */
export interface SmartCleaningEntry {
  readonly id: string
  readonly original_filename: string
  readonly status: string
  readonly uploaded_at: Date
  readonly processing_started_at: Date | null
  readonly processed_at: Date | null
  readonly error_message: string | null
  readonly record_count_total: number | null
  readonly record_count_clean: number | null
  readonly offer_count: number | null
  /** Offer names joined with `^`. */
  readonly offers: string | null
  readonly selected_offer: string | null
}

/** What creating an entry answers: the original's `{id, original_filename, status}` and what it holds. */
export interface SmartCleaningCreated {
  readonly id: string
  readonly original_filename: string
  readonly status: "uploaded"
  readonly record_count_total: number
  readonly offer_count: number
  readonly offers: string
  readonly from_date: string | null
  readonly to_date: string | null
}

export interface SearchProcessingStarted {
  readonly ok: true
  readonly file_id: string
  readonly status: "processing"
  readonly job_id: string
}

export interface SmartCleaningProcessOptions {
  readonly offers: ReadonlyArray<string>
  /** Also remove numbers with a REG on one of the offers. */
  readonly filterRegs?: boolean
  /** Also remove numbers with a live click on one of the offers in the last 24 hours. */
  readonly filterLast24h?: boolean
}

/** What a processing job did (its `result`). */
export interface SmartCleaningJobResult {
  readonly file_id: string
  readonly skipped?: string
  readonly rows?: number
  readonly invalid?: number
  readonly duplicates?: number
  readonly removed_last_24h?: number
  readonly removed_conversions?: number
  readonly record_count_clean?: number
}

export type SmartCleaningError =
  ValidationError | NotFound | Conflict | DatabaseError | StorageError | PayloadTooLarge | UnreadableFile

/** Numbers looked up per query. */
const LOOKUP_BATCH = 10_000

const BOM = [0xef, 0xbb, 0xbf]

/** The original's line count of an upload: non-blank lines, a leading BOM ignored. Counts as the bytes pass. */
export const countingLines = (body: FileBody, counter: { lines: number }): AsyncIterable<Uint8Array | string> => {
  const source: Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string> =
    typeof body === "string" || body instanceof Uint8Array ? [body] : body
  return (async function* () {
    let position = 0
    let bomBytes = 0
    let content = false
    for await (const chunk of source) {
      const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk
      for (let i = 0; i < bytes.length; i++, position++) {
        const b = bytes[i]!
        if (position < 3 && position === bomBytes && b === BOM[position]) {
          bomBytes++
          continue
        }
        if (b === 0x0a || b === 0x0d) {
          if (content) counter.lines++
          content = false
        } else if (b !== 0x20 && b !== 0x09 && b !== 0x0b && b !== 0x0c) {
          content = true
        }
      }
      yield chunk
    }
    if (content) counter.lines++
  })()
}

export class SmartCleaning extends Context.Service<
  SmartCleaning,
  {
    /** A new entry from the whitelist numbers of a country (module comment). */
    readonly createFromCountry: (params: {
      readonly countryCode?: string
      readonly fromDate?: string
      readonly toDate?: string
    }) => Effect.Effect<SmartCleaningCreated, SmartCleaningError>
    /** A new entry from an uploaded `.csv`. */
    readonly upload: (file: {
      readonly filename: string
      readonly body: FileBody
    }) => Effect.Effect<
      { readonly id: string; readonly original_filename: string; readonly status: "uploaded" },
      SmartCleaningError
    >
    /** Entries, newest first; `status` is a comma-separated filter. */
    readonly list: (params?: {
      readonly status?: string
    }) => Effect.Effect<ReadonlyArray<SmartCleaningEntry>, SmartCleaningError>
    /** Marks the entry processing and queues its job. */
    readonly startProcessing: (
      id: string,
      options: SmartCleaningProcessOptions
    ) => Effect.Effect<SearchProcessingStarted, SmartCleaningError>
    readonly archive: (id: string) => Effect.Effect<{ readonly ok: true }, SmartCleaningError>
    /** Deletes the entry and its files. */
    readonly remove: (id: string) => Effect.Effect<{ readonly ok: true }, SmartCleaningError>
    /** The processed file (`processed_voluum_click_<original_filename>`). */
    readonly download: (id: string) => Effect.Effect<DownloadableFile, SmartCleaningError>
    /** The job handler of the `smart-cleaning` queue. */
    readonly runJob: (job: RunningJob) => Effect.Effect<SmartCleaningJobResult, SmartCleaningError>
  }
>()("@optimizer/core/voluum/SmartCleaning") {
  static readonly layer = Layer.effect(
    SmartCleaning,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const sql = yield* SqlClient.SqlClient
      const files = yield* FileStore
      const jobs = yield* Jobs
      const db = <A>(effect: Effect.Effect<A, SqlError>) => Effect.mapError(effect, toDatabaseError)

      const releaseStale = db(sql.unsafe(releaseStaleSql(TABLE)))

      const allOffers = (countryCode: string | null) =>
        db(
          sql.unsafe<{ offer_name: string }>(
            `SELECT DISTINCT offer_name FROM api_voluum_conversions
             WHERE offer_name IS NOT NULL AND ($1::text IS NULL OR country_code = $1)
             ORDER BY offer_name`,
            [countryCode]
          )
        ).pipe(Effect.map((rows) => rows.map((r) => r.offer_name)))

      const createFromCountry = Effect.fn("SmartCleaning.createFromCountry")(function* (params: {
        readonly countryCode?: string
        readonly fromDate?: string
        readonly toDate?: string
      }) {
        const country = yield* countryCodeParam(params.countryCode, "country_code is required")
        const { from, to } = yield* dateWindow(params.fromDate, params.toDate)
        // Calendar dates of UTC; both ends inclusive (the original compared strings "<from> 00:00:00" / "<to> 23:59:59").
        const where = `country_code = $1
          AND ($2::date IS NULL OR timestamp_created >= ($2::date)::timestamp AT TIME ZONE 'UTC')
          AND ($3::date IS NULL OR timestamp_created < ($3::date + 1)::timestamp AT TIME ZONE 'UTC')`
        const [counted] = yield* db(
          sql.unsafe<{ n: bigint }>(`SELECT count(*)::bigint AS n FROM whitelist WHERE ${where}`, [country, from, to])
        )
        const clickers = Number(counted?.n ?? 0)
        if (clickers === 0) {
          return yield* new NotFound({ message: `No offers found for the country code: ${country}` })
        }
        const id = randomUUID()
        const key = `${SMART_CLEANING_RAW_DIR}/${id}.csv`
        const rows = sql
          .unsafe<{ phone: string; created: string }>(
            `SELECT custom_variable_1 AS phone,
               to_char(timestamp_created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                 || CASE WHEN extract(microseconds FROM timestamp_created)::bigint % 1000000 = 0 THEN ''
                    ELSE to_char(timestamp_created AT TIME ZONE 'UTC', '.US') END AS created
             FROM whitelist WHERE ${where}
             ORDER BY timestamp_created, custom_variable_1`,
            [country, from, to]
          )
          .stream.pipe(
            Stream.mapError(toDatabaseError),
            Stream.map((r) => csvLine([r.phone, r.created]))
          )
        const written = yield* writeLines(files, key, rows)
        const offers = yield* allOffers(country)
        const originalFilename = `${country}_${utcDate(new Date())}.csv`
        yield* db(sql`
          INSERT INTO uploaded_smart_cleaning_voluum_files
            (id, original_filename, raw_file_path, status, record_count_total, offer_count, offers, from_date, to_date)
          VALUES (${id}::uuid, ${originalFilename}, ${key}, 'uploaded', ${written}, ${offers.length}, ${offers.join("^")},
                  ${from}::date, ${to}::date)`)
        return {
          id,
          original_filename: originalFilename,
          status: "uploaded",
          record_count_total: written,
          offer_count: offers.length,
          offers: offers.join("^"),
          from_date: from,
          to_date: to
        } satisfies SmartCleaningCreated
      })

      const upload = Effect.fn("SmartCleaning.upload")(function* (file: {
        readonly filename: string
        readonly body: FileBody
      }) {
        if (!file.filename.toLowerCase().endsWith(".csv")) {
          return yield* new ValidationError({ message: "Only CSV files are supported", field: "file" })
        }
        const id = randomUUID()
        const key = `${SMART_CLEANING_RAW_DIR}/${id}.csv`
        const counter = { lines: 0 }
        yield* files.put(key, countingLines(file.body, counter), {
          maxBytes: settings.uploadMaxBytes,
          contentType: "text/csv"
        })
        if (counter.lines === 0) {
          yield* files.delete(key)
          return yield* new ValidationError({ message: "CSV file is empty", field: "file" })
        }
        const offers = yield* allOffers(null)
        if (offers.length === 0) {
          yield* files.delete(key)
          return yield* new NotFound({ message: "No offers found in the conversions database" })
        }
        yield* db(sql`
          INSERT INTO uploaded_smart_cleaning_voluum_files
            (id, original_filename, raw_file_path, status, record_count_total, offer_count, offers)
          VALUES (${id}::uuid, ${file.filename}, ${key}, 'uploaded', ${counter.lines}, ${offers.length}, ${offers.join("^")})`)
        return { id, original_filename: file.filename, status: "uploaded" as const }
      })

      const list = Effect.fn("SmartCleaning.list")(function* (params?: { readonly status?: string }) {
        const statuses = yield* statusFilter(params?.status)
        yield* releaseStale
        return yield* db(
          sql.unsafe<SmartCleaningEntry>(
            `SELECT id::text AS id, original_filename, status, uploaded_at, processing_started_at, processed_at,
                    error_message, record_count_total, record_count_clean, offer_count, offers, selected_offer
             FROM uploaded_smart_cleaning_voluum_files
             WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))
             ORDER BY uploaded_at DESC, id`,
            [statuses]
          )
        )
      })

      const notEligible = () => new ValidationError({ message: "File not found or not eligible for processing" })

      const startProcessing = Effect.fn("SmartCleaning.startProcessing")(function* (
        id: string,
        options: SmartCleaningProcessOptions
      ) {
        const offers = options.offers.filter((o) => typeof o === "string" && o !== "")
        if (offers.length === 0) {
          return yield* new ValidationError({ message: "At least one offer is required", field: "offers" })
        }
        if (!isUuid(id)) return yield* notEligible()
        yield* releaseStale
        const marked = yield* sql<{ id: string }>`
          UPDATE uploaded_smart_cleaning_voluum_files
          SET status = 'processing', processing_started_at = now(), error_message = NULL, job_id = NULL
          WHERE id = ${id}::uuid AND status IN ('uploaded', 'failed', 'processed')
          RETURNING id::text AS id`.pipe(
          Effect.catchReason("SqlError", "UniqueViolation", () =>
            Effect.fail(new Conflict({ message: "Another file is already processing" }))
          ),
          Effect.mapError((e) => (e._tag === "SqlError" ? toDatabaseError(e) : e))
        )
        if (marked.length === 0) return yield* notEligible()
        const jobId = yield* jobs
          .enqueue(
            SMART_CLEANING_QUEUE,
            {
              file_id: id,
              offers,
              filter_regs: options.filterRegs === true,
              filter_last_24h: options.filterLast24h === true
            },
            { singletonKey: `smart-cleaning-${id}` }
          )
          .pipe(
            Effect.tapError((error) =>
              db(sql`
                UPDATE uploaded_smart_cleaning_voluum_files
                SET status = 'failed', error_message = ${`could not queue the processing: ${error.message}`}
                WHERE id = ${id}::uuid AND status = 'processing'`).pipe(Effect.ignore)
            )
          )
        yield* db(sql`UPDATE uploaded_smart_cleaning_voluum_files SET job_id = ${jobId}::uuid WHERE id = ${id}::uuid`)
        return { ok: true, file_id: id, status: "processing", job_id: jobId } satisfies SearchProcessingStarted
      })

      const archive = Effect.fn("SmartCleaning.archive")(function* (id: string) {
        const rows = isUuid(id)
          ? yield* db(
              sql<{ id: string }>`
                UPDATE uploaded_smart_cleaning_voluum_files SET status = 'archived' WHERE id = ${id}::uuid
                RETURNING id::text AS id`
            )
          : []
        if (rows.length === 0) return yield* new NotFound({ message: "File not found" })
        return { ok: true as const }
      })

      const remove = Effect.fn("SmartCleaning.remove")(function* (id: string) {
        const rows = isUuid(id)
          ? yield* db(
              sql<{ raw_file_path: string | null; cleaned_file_path: string | null }>`
                DELETE FROM uploaded_smart_cleaning_voluum_files WHERE id = ${id}::uuid
                RETURNING raw_file_path, cleaned_file_path`
            )
          : []
        const row = rows[0]
        if (row === undefined) return yield* new NotFound({ message: "File not found" })
        for (const key of [row.raw_file_path, row.cleaned_file_path]) {
          if (key !== null) yield* files.delete(key)
        }
        return { ok: true as const }
      })

      const download = Effect.fn("SmartCleaning.download")(function* (id: string) {
        const rows = isUuid(id)
          ? yield* db(
              sql<{ status: string; cleaned_file_path: string | null; original_filename: string }>`
                SELECT status, cleaned_file_path, original_filename FROM uploaded_smart_cleaning_voluum_files
                WHERE id = ${id}::uuid`
            )
          : []
        const row = rows[0]
        return yield* processedFileDownload(files, row, {
          notFound: "File not found",
          notProcessed: "File not processed yet",
          filename: () => `processed_voluum_click_${row!.original_filename}`
        })
      })

      // ---- the job ---------------------------------------------------------------------------------

      const process = (job: RunningJob, fileId: string, options: Required<SmartCleaningProcessOptions>) =>
        Effect.gen(function* () {
          const [entry] = yield* db(
            sql<{ status: string; raw_file_path: string | null }>`
              SELECT status, raw_file_path FROM uploaded_smart_cleaning_voluum_files WHERE id = ${fileId}::uuid`
          )
          if (entry === undefined) return { file_id: fileId, skipped: "the entry was deleted" }
          if (entry.status !== "processing") return { file_id: fileId, skipped: `the entry is ${entry.status}` }
          if (entry.raw_file_path === null) return yield* new NotFound({ message: "the entry has no raw file" })

          // Read: numbers in file order, first occurrence kept, with the timestamp of a 2-column file.
          const numbers = new Map<string, string>()
          let rows = 0
          let invalid = 0
          let twoColumns: boolean | undefined
          const body = yield* files.get(entry.raw_file_path)
          yield* csvRows(body).pipe(
            Stream.runForEach((cells) =>
              Effect.sync(() => {
                rows++
                if (twoColumns === undefined) twoColumns = cells.length >= 2
                const parsed = normalizePhone(cells[0] ?? "")
                if (!parsed.ok) {
                  invalid++
                  return
                }
                if (!numbers.has(parsed.e164)) numbers.set(parsed.e164, twoColumns ? (cells[1] ?? "") : "")
              })
            )
          )
          const total = numbers.size
          const duplicates = rows - invalid - total

          // Filter, in batches of numbers.
          const phones = [...numbers.keys()]
          const types = options.filterRegs ? ["FTD", "REG"] : ["FTD"]
          let removedLive = 0
          let removedConversions = 0
          for (let i = 0; i < phones.length; i += LOOKUP_BATCH) {
            const batch = phones.slice(i, i + LOOKUP_BATCH)
            if (options.filterLast24h) {
              const live = yield* db(
                sql<{ phone: string }>`
                  SELECT DISTINCT custom_variable_1 AS phone FROM voluum_live_events
                  WHERE custom_variable_1 = ANY(${batch}::text[]) AND offer_name = ANY(${options.offers}::text[])
                    AND "timestamp" >= now() - interval '24 hours'`
              )
              for (const r of live) if (numbers.delete(r.phone)) removedLive++
            }
            const converted = yield* db(
              sql<{ phone: string }>`
                SELECT DISTINCT custom_variable_1 AS phone FROM api_voluum_conversions
                WHERE custom_variable_1 = ANY(${batch}::text[]) AND offer_name = ANY(${options.offers}::text[])
                  AND conversion_type = ANY(${types}::text[])`
            )
            for (const r of converted) if (numbers.delete(r.phone)) removedConversions++
            yield* job.progress(Math.min(i + LOOKUP_BATCH, phones.length), phones.length)
          }

          const key = `${SMART_CLEANING_PROCESSED_DIR}/${fileId}.csv`
          const clean = yield* writeLines(
            files,
            key,
            Stream.fromIterable(numbers).pipe(
              Stream.map(([phone, timestamp]) => csvLine(timestamp === "" ? [phone] : [phone, timestamp]))
            )
          )
          const updated = yield* db(
            sql<{ id: string }>`
              UPDATE uploaded_smart_cleaning_voluum_files
              SET status = 'processed', cleaned_file_path = ${key}, processed_at = now(),
                  record_count_clean = ${clean}, selected_offer = ${options.offers.join("^")}, error_message = NULL
              WHERE id = ${fileId}::uuid AND status = 'processing'
              RETURNING id::text AS id`
          )
          if (updated.length === 0) {
            // Deleted or archived meanwhile: a deleted entry must not leave its file behind.
            const still = yield* db(
              sql<{
                id: string
              }>`SELECT id::text AS id FROM uploaded_smart_cleaning_voluum_files WHERE id = ${fileId}::uuid`
            )
            if (still.length === 0) yield* files.delete(key)
            return { file_id: fileId, skipped: "the entry changed while it was processed" }
          }
          return {
            file_id: fileId,
            rows,
            invalid,
            duplicates,
            removed_last_24h: removedLive,
            removed_conversions: removedConversions,
            record_count_clean: clean
          } satisfies SmartCleaningJobResult
        })

      const runJob = Effect.fn("SmartCleaning.runJob")(function* (job: RunningJob) {
        const data = job.data as {
          file_id?: unknown
          offers?: unknown
          filter_regs?: unknown
          filter_last_24h?: unknown
        }
        const fileId = typeof data.file_id === "string" ? data.file_id : ""
        const offers = Array.isArray(data.offers) ? data.offers.filter((o): o is string => typeof o === "string") : []
        if (!isUuid(fileId) || offers.length === 0) {
          return yield* new ValidationError({ message: "a smart-cleaning job needs a file_id and offers" })
        }
        return yield* process(job, fileId, {
          offers,
          filterRegs: data.filter_regs === true,
          filterLast24h: data.filter_last_24h === true
        }).pipe(
          Effect.tapError((error) =>
            isFinalAttempt(job, error)
              ? db(sql`
                  UPDATE uploaded_smart_cleaning_voluum_files SET status = 'failed', error_message = ${failureMessage(error)}
                  WHERE id = ${fileId}::uuid AND status = 'processing'`).pipe(Effect.ignore)
              : Effect.void
          )
        )
      })

      return SmartCleaning.of({
        createFromCountry,
        upload,
        list,
        startProcessing,
        archive,
        remove,
        download,
        runJob
      })
    })
  )
}
