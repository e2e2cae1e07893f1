/**
 * What smart cleaning and REG search share besides the file-job workflow (`platform/FileJobs.ts`):
 * input checks for country codes and `YYYY-MM-DD` dates, the original's CSV lines (docs/original-api.md),
 * streamed file writes and the status filter of the listings.
 *
 * Files are written as the original's Python `csv.writer` wrote them: no header, fields separated by
 * `,`, a field quoted only when it holds `,`, `"` or a line break, every line ended by `\r\n`.
 */
import { Effect, Option, Schema, Stream } from "effect"
import { StorageError, ValidationError } from "../platform/Errors.ts"
import {
  FILE_JOB_STATUSES,
  statusFilter as fileStatusFilter,
  type FileDownload,
  type FileJobStarted,
  type FileJobStatus
} from "../platform/FileJobs.ts"
import type { FileStore } from "../platform/FileStore.ts"
import type { RunningJob } from "../platform/Jobs.ts"

export const ENTRY_STATUSES = FILE_JOB_STATUSES
export type EntryStatus = FileJobStatus

/** The columns every entry of smart cleaning and REG search lists (the original's keys), in their order. */
export const ENTRY_FIELDS = {
  id: Schema.String,
  original_filename: Schema.String,
  status: Schema.Literals(FILE_JOB_STATUSES),
  uploaded_at: Schema.Date,
  processing_started_at: Schema.NullOr(Schema.Date),
  processed_at: Schema.NullOr(Schema.Date),
  error_message: Schema.NullOr(Schema.String),
  record_count_total: Schema.NullOr(Schema.Number),
  record_count_clean: Schema.NullOr(Schema.Number),
  offer_count: Schema.NullOr(Schema.Number),
  offers: Schema.NullOr(Schema.String),
  selected_offer: Schema.NullOr(Schema.String)
}

/** An item of a listing of smart-cleaning entries or REG searches (the original's keys). */
export const SearchEntry = Schema.Struct(ENTRY_FIELDS)

/** The SELECT list of an entry's listed keys, its processed file and its job (each kind adds its own). */
export const ENTRY_COLUMNS = `id::text AS id, original_filename, status, uploaded_at, processing_started_at,
  processed_at, error_message, record_count_total, record_count_clean, offer_count, offers, selected_offer,
  cleaned_file_path, job_id::text AS job_id`

/** The offers of a processing job's data; `ValidationError` when it has none. */
export const jobOffers = (data: Record<string, unknown>, queue: string) => {
  const offers = Array.isArray(data.offers) ? data.offers.filter((o): o is string => typeof o === "string") : []
  return offers.length > 0
    ? Effect.succeed(offers)
    : Effect.fail(new ValidationError({ message: `a ${queue} job needs a file_id and offers` }))
}

/** The operations smart cleaning and REG search share, in the file-job workflow's verbs. */
export interface SearchFileOperations<Entry, ProcessOptions, JobResult, E> {
  /** Entries, newest first; `status` is a comma-separated filter. */
  readonly list: (params?: { readonly status?: string }) => Effect.Effect<ReadonlyArray<Entry>, E>
  readonly get: (id: string) => Effect.Effect<Entry, E>
  /** Marks the entry processing and queues its job. */
  readonly process: (id: string, options: ProcessOptions) => Effect.Effect<FileJobStarted, E>
  readonly archive: (id: string) => Effect.Effect<{ readonly ok: true }, E>
  /** Deletes the entry and its files. */
  readonly delete: (id: string) => Effect.Effect<{ readonly ok: true }, E>
  /** The processed file. */
  readonly download: (id: string) => Effect.Effect<FileDownload, E>
  /** The job handler of the kind's queue. */
  readonly runJob: (job: RunningJob) => Effect.Effect<JobResult, E>
}

/** What a job with nothing to do answers (its `result`). */
export const staleResult = (claim: {
  readonly fileId: string
  readonly row: Option.Option<{ readonly status: string }>
}): { readonly file_id: string; readonly skipped: string } => ({
  file_id: claim.fileId,
  skipped: Option.isNone(claim.row) ? "the entry was deleted" : `the entry is ${claim.row.value.status}`
})

/** A country code as the lists and conversions store it: ISO2 (or the original's `DEF`), upper case. */
export const countryCodeParam = (
  raw: string | undefined,
  missingMessage: string
): Effect.Effect<string, ValidationError> => {
  const code = raw?.trim().toUpperCase() ?? ""
  if (code === "") return Effect.fail(new ValidationError({ message: missingMessage, field: "country_code" }))
  if (!/^[A-Z]{2,3}$/.test(code)) {
    return Effect.fail(
      new ValidationError({
        message: `country_code must be a 2-letter country code, got "${raw}"`,
        field: "country_code"
      })
    )
  }
  return Effect.succeed(code)
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/

/** A `YYYY-MM-DD` calendar date (or nothing); anything else is a `ValidationError` naming the field. */
export const dateParam = (field: string, raw: string | undefined): Effect.Effect<string | null, ValidationError> => {
  const value = raw?.trim() ?? ""
  if (value === "") return Effect.succeed(null)
  const m = DATE.exec(value)
  const d = m === null ? undefined : new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])))
  if (d === undefined || d.toISOString().slice(0, 10) !== value) {
    return Effect.fail(new ValidationError({ message: `${field} must be a date like 2025-05-01, got "${raw}"`, field }))
  }
  return Effect.succeed(value)
}

/** `from_date`/`to_date` checked together: each a date, and not backwards. */
export const dateWindow = (fromRaw: string | undefined, toRaw: string | undefined) =>
  Effect.gen(function* () {
    const from = yield* dateParam("from_date", fromRaw)
    const to = yield* dateParam("to_date", toRaw)
    if (from !== null && to !== null && from > to) {
      return yield* new ValidationError({ message: `from_date (${from}) is after to_date (${to})`, field: "from_date" })
    }
    return { from, to }
  })

/** `?status=a,b` as the original read it (split on ","); unknown values are refused rather than matching nothing. */
export const statusFilter = (raw: string | undefined): Effect.Effect<ReadonlyArray<string>, ValidationError> =>
  fileStatusFilter(raw, (unknown) => `unknown status "${unknown}" (known: ${ENTRY_STATUSES.join(", ")})`)

/** One field as Python's csv.writer (QUOTE_MINIMAL) writes it. */
const csvField = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value)

/** One line as Python's csv.writer writes it, `\r\n` included. */
export const csvLine = (fields: ReadonlyArray<string>): string => fields.map(csvField).join(",") + "\r\n"

/** `2025-05-01` of now, UTC. */
export const utcDate = (d: Date): string => d.toISOString().slice(0, 10)

/** `2025-05-01_103000` of now, UTC (the original's `%Y-%m-%d_%H%M%S`, server-local). */
export const utcStamp = (d: Date): string => {
  const iso = d.toISOString()
  return `${iso.slice(0, 10)}_${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`
}

const storageError = (cause: unknown): StorageError =>
  cause instanceof StorageError
    ? cause
    : new StorageError({ message: `storage error: ${(cause as Error)?.message ?? String(cause)}`, cause })

/**
 * Writes `lines` (each ending in `\r\n`) to the file `key` as they come, and returns how many there
 * were. Nothing is visible under the key unless every line was written.
 */
export const writeLines = <E>(
  files: FileStore["Service"],
  key: string,
  lines: Stream.Stream<string, E>
): Effect.Effect<number, E | ValidationError | StorageError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const writer = yield* files.openWriter(key, { contentType: "text/csv" })
      let count = 0
      yield* lines.pipe(
        Stream.grouped(2_000),
        Stream.runForEach((chunk) => {
          count += chunk.length
          return Effect.tryPromise({ try: () => writer.write(chunk.join("")), catch: storageError })
        })
      )
      yield* Effect.tryPromise({ try: () => writer.close(), catch: storageError })
      return count
    })
  )
