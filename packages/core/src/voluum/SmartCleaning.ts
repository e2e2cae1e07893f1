/**
 * Smart cleaning (docs/original-api.md): a list of clickers — the whitelist numbers of a country,
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
 * - Process (`process`, a durable job; one entry processing at a time): read the file (2
 *   columns when its first row has 2 cells), normalise every number to the canonical key (invalid
 *   ones — a header, a typo — are dropped and counted; the original compared raw strings), keep the
 *   first occurrence of each; if `filter_last_24h`, drop numbers with a live click on one of the
 *   offers in the last 24 h; drop numbers with an FTD on one of the offers (any country, any date),
 *   and with `filter_regs` also a REG; write what is left (phone[, timestamp], no header, in the
 *   file's order). An empty result is an empty file (the original wrote none, so its download failed).
 * - Everything else — the status machine, the job, archive, delete, download — is the shared
 *   file-job workflow (`platform/FileJobs.ts`).
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { csvRows } from "../lists/ListCsv.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { AppConfig } from "../platform/Config.ts"
import { toDatabaseError } from "../platform/Database.ts"
import {
  NotFound,
  ValidationError,
  type Conflict,
  type DatabaseError,
  type PayloadTooLarge,
  type StorageError,
  type UnreadableFile
} from "../platform/Errors.ts"
import { makeFileJobs, runOutputKey, type FileDownload, type FileJobStarted } from "../platform/FileJobs.ts"
import { FileStore, type FileBody } from "../platform/FileStore.ts"
import type { RunningJob } from "../platform/Jobs.ts"
import { storeTextUpload, textUpload, uploadFilename, type LineCounter } from "../platform/TextUpload.ts"
import {
  countryCodeParam,
  csvLine,
  dateWindow,
  ENTRY_COLUMNS,
  ENTRY_FIELDS,
  jobOffers,
  staleResult,
  SearchEntry,
  type SearchFileOperations,
  statusFilter,
  utcDate,
  writeLines
} from "./SearchFiles.ts"

/** A processed file, ready to stream to a client. */
export type DownloadableFile = FileDownload

export const SMART_CLEANING_QUEUE = "smart-cleaning"
/** FileStore folders, as the original's directories. */
export const SMART_CLEANING_RAW_DIR = "raw_smart_cleaning_voluum"
export const SMART_CLEANING_PROCESSED_DIR = "processed_smart_cleaning_voluum"

/** An item of `/smart-cleaning-files-voluum` (the original's keys; `offers` joined with `^`). */
export type SmartCleaningEntry = typeof SearchEntry.Type

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

export type SearchProcessingStarted = FileJobStarted

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

/** The original's line count of an upload: non-blank lines (`platform/TextUpload.ts`), as the bytes pass. */
export const countingLines = (body: FileBody, counter: LineCounter): AsyncIterable<Uint8Array> =>
  textUpload(body, counter)

const Entry = Schema.Struct({
  ...ENTRY_FIELDS,
  raw_file_path: Schema.NullOr(Schema.String),
  cleaned_file_path: Schema.NullOr(Schema.String),
  job_id: Schema.NullOr(Schema.String)
})

/** An entry with the original's keys only. */
const entryItem = ({ raw_file_path: _raw, cleaned_file_path: _clean, job_id: _job, ...item }: typeof Entry.Type) =>
  item satisfies SmartCleaningEntry

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
  } & SearchFileOperations<SmartCleaningEntry, SmartCleaningProcessOptions, SmartCleaningJobResult, SmartCleaningError>
>()("@optimizer/core/voluum/SmartCleaning") {
  static readonly layer = Layer.effect(
    SmartCleaning,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const sql = yield* SqlClient.SqlClient
      const files = yield* FileStore
      const db = Effect.mapError((cause: unknown) => toDatabaseError(cause))
      const fileJobs = yield* makeFileJobs({
        table: "uploaded_smart_cleaning_voluum_files",
        queue: SMART_CLEANING_QUEUE,
        name: "SmartCleaning",
        columns: `${ENTRY_COLUMNS}, raw_file_path`,
        row: Entry,
        storedKeys: (row) => [row.raw_file_path, row.cleaned_file_path],
        startFrom: ["uploaded", "failed", "processed"],
        singletonKey: (id) => `smart-cleaning-${id}`,
        messages: {
          notFound: () => "File not found",
          conflict: "Another file is already processing",
          notEligible: () => new ValidationError({ message: "File not found or not eligible for processing" }),
          notProcessed: () => "File not processed yet",
          queueFailed: "could not queue the processing"
        }
      })

      const allOffers = (countryCode: string | null) =>
        sql
          .unsafe<{ offer_name: string }>(
            `SELECT DISTINCT offer_name FROM api_voluum_conversions
             WHERE offer_name IS NOT NULL AND ($1::text IS NULL OR country_code = $1)
             ORDER BY offer_name`,
            [countryCode]
          )
          .pipe(
            db,
            Effect.map((rows) => rows.map((r) => r.offer_name))
          )

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
        const [counted] = yield* sql
          .unsafe<{ n: bigint }>(`SELECT count(*)::bigint AS n FROM whitelist WHERE ${where}`, [country, from, to])
          .pipe(db)
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
        yield* sql`
          INSERT INTO uploaded_smart_cleaning_voluum_files
            (id, original_filename, raw_file_path, status, record_count_total, offer_count, offers, from_date, to_date)
          VALUES (${id}::uuid, ${originalFilename}, ${key}, 'uploaded', ${written}, ${offers.length}, ${offers.join("^")},
                  ${from}::date, ${to}::date)`.pipe(db)
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
        const lines = yield* storeTextUpload(files, key, file.body, {
          maxBytes: settings.uploadMaxBytes,
          empty: new ValidationError({ message: "CSV file is empty", field: "file" })
        })
        const offers = yield* allOffers(null)
        if (offers.length === 0) {
          yield* files.delete(key)
          return yield* new NotFound({ message: "No offers found in the conversions database" })
        }
        yield* sql`
          INSERT INTO uploaded_smart_cleaning_voluum_files
            (id, original_filename, raw_file_path, status, record_count_total, offer_count, offers)
          VALUES (${id}::uuid, ${uploadFilename(file.filename)}, ${key}, 'uploaded', ${lines}, ${offers.length}, ${offers.join("^")})`.pipe(
          db
        )
        return { id, original_filename: file.filename, status: "uploaded" as const }
      })

      const list = Effect.fn("SmartCleaning.list")(function* (params?: { readonly status?: string }) {
        const statuses = yield* statusFilter(params?.status)
        return (yield* fileJobs.list(statuses)).map(entryItem)
      })

      const process = Effect.fn("SmartCleaning.process")(function* (id: string, options: SmartCleaningProcessOptions) {
        const offers = options.offers.filter((o) => typeof o === "string" && o !== "")
        if (offers.length === 0) {
          return yield* new ValidationError({ message: "At least one offer is required", field: "offers" })
        }
        return yield* fileJobs.start(id, {
          offers,
          filter_regs: options.filterRegs === true,
          filter_last_24h: options.filterLast24h === true
        })
      })

      const download = (id: string) =>
        fileJobs.download(id, (row) => ({
          key: row.cleaned_file_path,
          filename: `processed_voluum_click_${row.original_filename}`
        }))

      // ---- the job ---------------------------------------------------------------------------------

      const work = (
        job: RunningJob,
        fileId: string,
        run: Date,
        rawKey: string | null,
        options: Required<SmartCleaningProcessOptions>
      ) =>
        Effect.gen(function* () {
          if (rawKey === null) return yield* new NotFound({ message: "the entry has no raw file" })

          // Read: numbers in file order, first occurrence kept, with the timestamp of a 2-column file.
          const numbers = new Map<string, string>()
          let rows = 0
          let invalid = 0
          let twoColumns: boolean | undefined
          const body = yield* files.get(rawKey)
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
              const live = yield* sql<{ phone: string }>`
                SELECT DISTINCT custom_variable_1 AS phone FROM voluum_live_events
                WHERE custom_variable_1 = ANY(${batch}::text[]) AND offer_name = ANY(${options.offers}::text[])
                  AND "timestamp" >= now() - interval '24 hours'`.pipe(db)
              for (const r of live) if (numbers.delete(r.phone)) removedLive++
            }
            const converted = yield* sql<{ phone: string }>`
              SELECT DISTINCT custom_variable_1 AS phone FROM api_voluum_conversions
              WHERE custom_variable_1 = ANY(${batch}::text[]) AND offer_name = ANY(${options.offers}::text[])
                AND conversion_type = ANY(${types}::text[])`.pipe(db)
            for (const r of converted) if (numbers.delete(r.phone)) removedConversions++
            yield* job.progress(Math.min(i + LOOKUP_BATCH, phones.length), phones.length)
          }

          const key = runOutputKey(SMART_CLEANING_PROCESSED_DIR, fileId, run)
          const clean = yield* writeLines(
            files,
            key,
            Stream.fromIterable(numbers).pipe(
              Stream.map(([phone, timestamp]) => csvLine(timestamp === "" ? [phone] : [phone, timestamp]))
            )
          )
          const finished = yield* fileJobs.finish(
            fileId,
            run,
            sql`, cleaned_file_path = ${key}, record_count_clean = ${clean}, selected_offer = ${options.offers.join("^")}`,
            [key]
          )
          if (!finished) return { file_id: fileId, skipped: "the entry changed while it was processed" }
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
        const offers = yield* jobOffers(job.data, "smart-cleaning")
        return yield* fileJobs.runJob(
          job,
          (stale) => Effect.succeed(staleResult(stale)),
          (claim) =>
            work(job, claim.fileId, claim.run, claim.row.raw_file_path, {
              offers,
              filterRegs: job.data.filter_regs === true,
              filterLast24h: job.data.filter_last_24h === true
            })
        )
      })

      return SmartCleaning.of({
        createFromCountry,
        upload,
        list,
        get: (id) => fileJobs.get(id).pipe(Effect.map(entryItem)),
        process,
        archive: (id) => fileJobs.archive(id).pipe(Effect.as({ ok: true as const })),
        delete: (id) => fileJobs.delete(id).pipe(Effect.as({ ok: true as const })),
        download,
        runJob
      })
    })
  )
}
