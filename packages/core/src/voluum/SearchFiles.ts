/**
 * What smart cleaning and REG search share (ORIGINAL.md §1.11, §1.12, §7.1): input checks for ids,
 * country codes and `YYYY-MM-DD` dates, the original's CSV lines, streamed file writes, the status
 * filter of the listings, and the job side of "one entry processing at a time".
 *
 * Files are written as the original's Python `csv.writer` wrote them: no header, fields separated by
 * `,`, a field quoted only when it holds `,`, `"` or a line break, every line ended by `\r\n`.
 */
import { Effect, Stream } from "effect"
import type { FileStore } from "../platform/FileStore.ts"
import { NotFound, StorageError, ValidationError } from "../platform/Errors.ts"
import { DEFAULT_QUEUE_SETTINGS, isRetryableJobError, type RunningJob } from "../platform/Jobs.ts"

export const ENTRY_STATUSES = ["uploaded", "processing", "processed", "failed", "archived"] as const
export type EntryStatus = (typeof ENTRY_STATUSES)[number]

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const isUuid = (id: string): boolean => UUID.test(id)

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
export const statusFilter = (raw: string | undefined): Effect.Effect<ReadonlyArray<string> | null, ValidationError> => {
  if (raw === undefined || raw.trim() === "") return Effect.succeed(null)
  const statuses = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  const unknown = statuses.find((s) => !(ENTRY_STATUSES as ReadonlyArray<string>).includes(s))
  return unknown === undefined
    ? Effect.succeed(statuses)
    : Effect.fail(
        new ValidationError({
          message: `unknown status "${unknown}" (known: ${ENTRY_STATUSES.join(", ")})`,
          field: "status"
        })
      )
}

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

/**
 * Whether a failed attempt of a processing job is final: the error is not worth a retry, or the
 * queue's retries are used up. Only then is the entry marked `failed`; otherwise it stays
 * `processing` and the job runs again.
 */
export const isFinalAttempt = (job: RunningJob, error: unknown): boolean =>
  !isRetryableJobError(error) || job.attempt > DEFAULT_QUEUE_SETTINGS.retryLimit

/** The message of any failure, for `error_message`. */
export const failureMessage = (error: unknown): string => {
  if (typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string") {
    const message = (error as { message: string }).message
    if (message !== "") return message
  }
  return String(error)
}

/** The SQL that frees entries whose processing job stopped without finishing them (see `releaseStale`). */
export const releaseStaleSql = (table: string) => `
  UPDATE ${table} t
  SET status = 'failed',
      error_message = coalesce(
        (SELECT s.error FROM job_status s WHERE s.job_id = t.job_id),
        'the processing job stopped before it finished'
      )
  WHERE t.status = 'processing'
    AND (
      (t.job_id IS NULL AND t.processing_started_at < now() - interval '10 minutes')
      OR EXISTS (
        SELECT 1 FROM job_status s
        WHERE s.job_id = t.job_id AND s.state IN ('failed', 'cancelled', 'completed')
      )
    )`

/** A processed file, ready to stream to a client. */
export interface DownloadableFile {
  readonly filename: string
  readonly body: ReadableStream<Uint8Array>
}

/**
 * The download of an entry's processed file, with the original's checks in its order: entry missing
 * (404), not processed yet (400), file missing in the store (404). Messages differ per feature.
 */
export const processedFileDownload = (
  files: FileStore["Service"],
  row: { readonly status: string; readonly cleaned_file_path: string | null } | undefined,
  options: { readonly notFound: string; readonly notProcessed: string; readonly filename: () => string }
) =>
  Effect.gen(function* () {
    if (row === undefined) return yield* new NotFound({ message: options.notFound })
    if (row.status !== "processed" || row.cleaned_file_path === null) {
      return yield* new ValidationError({ message: options.notProcessed })
    }
    if (!(yield* files.exists(row.cleaned_file_path))) {
      return yield* new NotFound({ message: "Processed file missing on disk" })
    }
    const body = yield* files.webStream(row.cleaned_file_path)
    return { filename: options.filename(), body } satisfies DownloadableFile
  })
