/**
 * Files of phone numbers turned into tokens (or, new, tokens turned back into numbers): the
 * original's encryption-file flow (ORIGINAL.md §1.9, §7.4) as a durable job.
 *
 * upload (`raw_encrypted/<id>.csv`, status `uploaded`) → startProcessing (status `processing`, a
 * job on the `encryption-file` queue) → the job writes `processed_encrypted/<id>.csv` (status
 * `processed`, or `failed` with the reason) → download / archive / delete.
 *
 * File format, as the original's: the value is the FIRST column of each CSV row (no header
 * detection: a header line is a value like any other; blank lines are skipped); the output has two
 * columns and no header — `value,token` when encrypting, `token,plaintext` when decrypting. A token
 * that does not decrypt is counted in `record_count_failed` and written with an empty second
 * column, so the output keeps one line per input row. Changes from the original: cells are trimmed
 * and a UTF-8 byte-order mark is dropped (the original encrypted both); an empty or binary upload is
 * refused at once (`UnreadableFile`) instead of failing later.
 *
 * One file processes at a time (the partial unique index `one_processing_encryption_file_only`,
 * HTTP 409 otherwise). Retries are safe: the job rewrites its output from the start (a FileStore
 * write is all or nothing) and every status change is fenced by the job id. A row whose job failed
 * or was cancelled without the handler noticing (worker killed on its last attempt) is put back to
 * `failed` the next time files are listed or started, so it is never `processing` forever.
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Result, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { AppConfig } from "../platform/Config.ts"
import { toDatabaseError } from "../platform/Database.ts"
import {
  Conflict,
  DatabaseError,
  NotFound,
  PayloadTooLarge,
  StorageError,
  UnreadableFile,
  ValidationError,
  type NotConfigured
} from "../platform/Errors.ts"
import { FileStore, type FileBody } from "../platform/FileStore.ts"
import { Jobs, type RunningJob } from "../platform/Jobs.ts"
import { Encryption } from "./Encryption.ts"

/** The queue of the processing job (`JOB_HANDLERS` in Workers.ts). */
export const ENCRYPTION_FILE_QUEUE = "encryption-file"

export const ENCRYPTION_FILE_STATUSES = ["uploaded", "processing", "processed", "failed", "archived"] as const
export type EncryptionFileStatus = (typeof ENCRYPTION_FILE_STATUSES)[number]

export type TokenDirection = "encrypt" | "decrypt"

/** `/upload-encrypted`'s answer (the original's keys). */
export interface UploadedEncryptionFile {
  readonly id: string
  readonly original_filename: string
  readonly status: "uploaded"
}

/** An item of `/encrypted-files`: the original's keys, then the new ones. */
export interface EncryptionFileItem {
  readonly id: string
  readonly original_filename: string
  readonly status: EncryptionFileStatus
  readonly uploaded_at: Date
  readonly processing_started_at: Date | null
  readonly processed_at: Date | null
  readonly error_message: string | null
  readonly direction: TokenDirection
  /** Non-blank lines at upload; rows processed once processed. */
  readonly record_count_total: number | null
  /** Tokens that did not decrypt (decrypt direction); 0 when encrypting. */
  readonly record_count_failed: number | null
  readonly job_id: string | null
}

/** `/{file_id}/process-encrypted`'s answer: the original's keys plus the job. */
export interface ProcessingStarted {
  readonly ok: true
  readonly file_id: string
  readonly status: "processing"
  readonly job_id: string
}

export interface ProcessedFile {
  readonly file_id: string
  readonly status: "processed" | "skipped"
  readonly direction?: TokenDirection
  readonly records?: number
  readonly failed?: number
  readonly reason?: string
}

export interface EncryptionFileDownload {
  /** `encrypted_<original_filename>` (`decrypted_…` for the decrypt direction). */
  readonly filename: string
  readonly body: ReadableStream<Uint8Array>
}

export interface TokenCsvCounts {
  /** Rows read (one value each). */
  readonly records: number
  /** Tokens that did not decrypt. */
  readonly failed: number
}

/** Values per `encryptMany` / `decryptMany` call and per write. */
const BATCH_ROWS = 8192
/** How many leading bytes of an upload are checked for NUL (binary content). */
const SNIFF_BYTES = 8192
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** A `processing` row without a job this long after it started lost its request half-way. */
const ORPHAN_MINUTES = 10

const rawKey = (id: string) => `raw_encrypted/${id}.csv`
const outputKey = (id: string) => `processed_encrypted/${id}.csv`

/** A CSV cell: quoted when it holds a comma, a quote or a line break. */
const csvCell = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value)

type RowState = "start" | "unquoted" | "quoted" | "quoteInQuoted" | "afterQuoted" | "rest"

/** Character codes the first-column reader looks for. */
const QUOTE = 34
const COMMA = 44
const NEWLINE = 10
/** A single value longer than this is a runaway quote, not a phone number or a token. */
const MAX_CELL_CHARS = 1024 * 1024
const isBlank = (code: number) => code === 32 || code === 9 || code === 13

/**
 * The first cell of every CSV row of `body`, in batches of up to `batchRows` values: what
 * csv-parse with `trim` and `skip_empty_lines` gives for column 0 (quoted cells with `""` escapes
 * and line breaks, CRLF, a leading byte-order mark; rows of blanks only are skipped), without an
 * object per row — a million-row file costs a character loop, not a million parser records.
 * Binary content (a NUL byte in the first 8 KiB) and unbalanced quotes are `UnreadableFile`.
 */
export async function* firstColumnBatches(body: FileBody, batchRows: number): AsyncGenerator<Array<string>> {
  const source: Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string> =
    typeof body === "string" || body instanceof Uint8Array ? [body] : body
  const decoder = new TextDecoder("utf-8")
  let batch: Array<string> = []
  // The row being read: the first cell's text, where it is, and whether the row has any content.
  let cell = ""
  let state = "start" as RowState
  let restInQuotes = false
  let rowHasContent = false
  let seen = 0
  let first = true
  const endRow = () => {
    if (rowHasContent) batch.push(state === "unquoted" ? cell.trim() : cell)
    cell = ""
    state = "start"
    restInQuotes = false
    rowHasContent = false
  }
  const read = (text: string) => {
    let from = 0
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i)
      switch (state) {
        case "start":
          if (code === NEWLINE) {
            endRow()
          } else if (code === QUOTE) {
            state = "quoted"
            rowHasContent = true
            from = i + 1
          } else if (code === COMMA) {
            rowHasContent = true
            state = "rest"
          } else if (!isBlank(code)) {
            state = "unquoted"
            rowHasContent = true
            from = i
          }
          break
        case "unquoted":
          if (code === COMMA || code === NEWLINE) {
            cell += text.slice(from, i)
            if (code === NEWLINE) endRow()
            else {
              cell = cell.trim()
              batch.push(cell)
              cell = ""
              rowHasContent = false // already counted: the row's value is in the batch
              state = "rest"
            }
          }
          break
        case "quoted":
          if (code === QUOTE) {
            cell += text.slice(from, i)
            state = "quoteInQuoted"
          }
          break
        case "quoteInQuoted":
          if (code === QUOTE) {
            // A doubled quote is one quote character in the value.
            cell += '"'
            from = i + 1
            state = "quoted"
          } else {
            state = "afterQuoted"
            i-- // this character ends the cell: read it as such
          }
          break
        case "afterQuoted":
          if (code === COMMA || code === NEWLINE) {
            batch.push(cell)
            cell = ""
            rowHasContent = false
            if (code === NEWLINE) endRow()
            else state = "rest"
          }
          break
        case "rest":
          if (code === QUOTE) restInQuotes = !restInQuotes
          else if (code === NEWLINE && !restInQuotes) endRow()
          break
      }
    }
    // A cell cut by the end of the chunk keeps its text so far.
    if (state === "unquoted" || state === "quoted") {
      cell += text.slice(from)
      if (cell.length > MAX_CELL_CHARS) {
        throw new UnreadableFile({
          message: `the file is not valid CSV: a value runs on for more than ${MAX_CELL_CHARS} characters (an unbalanced quote?)`
        })
      }
    }
  }
  for await (const piece of source) {
    let text = typeof piece === "string" ? piece : decoder.decode(piece, { stream: true })
    if (seen < SNIFF_BYTES && text.slice(0, SNIFF_BYTES - seen).includes("\u0000")) {
      throw new UnreadableFile({ message: "the file is not a CSV text file (it contains binary data)" })
    }
    seen += text.length
    if (first && text.length > 0) {
      first = false
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    }
    read(text)
    if (batch.length >= batchRows) {
      yield batch
      batch = []
    }
  }
  read(decoder.decode())
  if (state === "quoted") {
    throw new UnreadableFile({
      message: "the file is not valid CSV: it ends inside a quoted value (an unbalanced quote)"
    })
  }
  if (state === "afterQuoted" || state === "quoteInQuoted") {
    batch.push(cell)
    rowHasContent = false
  }
  endRow()
  if (batch.length > 0) yield batch
}

/**
 * Reads a token file (value = first column of each row) and hands the output text to `write`
 * batch by batch — `value,token` lines when encrypting, `token,plaintext` when decrypting — so
 * memory stays flat whatever the file size. Shared by the job and the CLI's `--file` forms.
 */
export const transformTokenCsv = <E>(
  encryption: Encryption["Service"],
  direction: TokenDirection,
  body: FileBody,
  write: (text: string, counts: TokenCsvCounts) => Effect.Effect<void, E>
): Effect.Effect<TokenCsvCounts, UnreadableFile | NotConfigured | E> =>
  Effect.suspend(() => {
    let records = 0
    let failed = 0
    return Stream.fromAsyncIterable(firstColumnBatches(body, BATCH_ROWS), (cause) =>
      cause instanceof UnreadableFile
        ? cause
        : new UnreadableFile({ message: `the file cannot be read: ${(cause as Error)?.message ?? String(cause)}` })
    ).pipe(
      Stream.runForEach((values) =>
        Effect.gen(function* () {
          let text = ""
          if (direction === "encrypt") {
            const tokens = yield* encryption.encryptMany(values)
            for (let i = 0; i < values.length; i++) text += `${csvCell(values[i]!)},${tokens[i]!}\n`
          } else {
            const plaintexts = yield* encryption.decryptMany(values)
            for (let i = 0; i < values.length; i++) {
              const plain = plaintexts[i]!
              if (Result.isSuccess(plain)) {
                text += `${csvCell(values[i]!)},${csvCell(plain.success)}\n`
              } else {
                failed++
                text += `${csvCell(values[i]!)},\n`
              }
            }
          }
          records += values.length
          yield* write(text, { records, failed })
        })
      ),
      Effect.map(() => ({ records, failed }))
    )
  })

const UTF8_BOM = [0xef, 0xbb, 0xbf]

/** What the upload sniffer found wrong; thrown inside the body, so the store's write fails. */
class BinaryUpload extends Error {}

/**
 * Passes an upload's bytes through, counting its non-blank lines (the original's
 * `record_count_total`) and refusing binary content (a NUL byte in the first 8 KiB).
 */
async function* sniffUpload(body: FileBody, counts: { lines: number }): AsyncGenerator<Uint8Array> {
  const source: Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string> =
    typeof body === "string" || body instanceof Uint8Array ? [body] : body
  let seen = 0
  let lineHasText = false
  // How many bytes of a leading UTF-8 byte-order mark (EF BB BF) were seen: they are not text.
  let bom = 0
  for await (const piece of source) {
    const bytes = typeof piece === "string" ? Buffer.from(piece, "utf8") : piece
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!
      const at = seen + i
      if (at < 3 && bom === at && byte === UTF8_BOM[at]) {
        bom++
      } else if (byte === 0x0a) {
        if (lineHasText) counts.lines++
        lineHasText = false
      } else if (byte === 0 && at < SNIFF_BYTES) {
        throw new BinaryUpload()
      } else if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) {
        lineHasText = true
      }
    }
    seen += bytes.length
    yield bytes
  }
  if (lineHasText) counts.lines++
}

interface FileRow {
  readonly id: string
  readonly original_filename: string
  readonly raw_file_path: string | null
  readonly encrypted_file_path: string | null
  readonly status: EncryptionFileStatus
  readonly uploaded_at: Date
  readonly processing_started_at: Date | null
  readonly processed_at: Date | null
  readonly error_message: string | null
  readonly direction: TokenDirection
  readonly record_count_total: number | null
  readonly record_count_failed: number | null
  readonly job_id: string | null
}

const isUniqueViolation = (error: SqlError): boolean =>
  (error as { reason?: { _tag?: string } }).reason?._tag === "UniqueViolation"

const notFound = (fileId: string) => new NotFound({ message: `File not found: ${fileId}` })

export class EncryptionFiles extends Context.Service<
  EncryptionFiles,
  {
    /** Stores an upload (`UPLOAD_MAX_BYTES` unless `maxBytes`); empty or binary content is `UnreadableFile`. */
    readonly upload: (
      filename: string,
      body: FileBody,
      options?: { readonly maxBytes?: number }
    ) => Effect.Effect<
      UploadedEncryptionFile,
      UnreadableFile | PayloadTooLarge | ValidationError | StorageError | DatabaseError
    >
    /** Newest first; only the given statuses when any are given. */
    readonly list: (
      statuses?: ReadonlyArray<EncryptionFileStatus>
    ) => Effect.Effect<ReadonlyArray<EncryptionFileItem>, DatabaseError>
    /**
     * Marks an `uploaded` or `failed` file `processing` and queues its job. `Conflict` while another
     * file is processing; `ValidationError` when its status does not allow it; `NotFound`.
     */
    readonly startProcessing: (
      fileId: string,
      direction: TokenDirection
    ) => Effect.Effect<ProcessingStarted, NotFound | ValidationError | Conflict | DatabaseError>
    /** The job: reads the upload, writes the output, records the outcome. */
    readonly process: (
      job: RunningJob
    ) => Effect.Effect<
      ProcessedFile,
      UnreadableFile | NotConfigured | ValidationError | NotFound | StorageError | Conflict | DatabaseError
    >
    /** The processed file; `ValidationError` (400) while it is not processed. */
    readonly download: (
      fileId: string
    ) => Effect.Effect<EncryptionFileDownload, NotFound | ValidationError | StorageError | DatabaseError>
    readonly archive: (fileId: string) => Effect.Effect<void, NotFound | Conflict | DatabaseError>
    /** Removes the row and its stored files. */
    readonly delete: (fileId: string) => Effect.Effect<void, NotFound | ValidationError | StorageError | DatabaseError>
  }
>()("@optimizer/core/encryption/EncryptionFiles") {
  static readonly layerNoDeps = Layer.effect(
    EncryptionFiles,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const files = yield* FileStore
      const jobs = yield* Jobs
      const encryption = yield* Encryption
      const settings = yield* AppConfig

      const query = <A extends object>(statement: Effect.Effect<ReadonlyArray<A>, SqlError>) =>
        statement.pipe(Effect.mapError(toDatabaseError))

      const findRow = (fileId: string) =>
        UUID.test(fileId)
          ? query(sql<FileRow>`SELECT * FROM uploaded_encryption_files WHERE id = ${fileId}::uuid`).pipe(
              Effect.map((rows) => rows[0])
            )
          : Effect.succeed(undefined)

      /** Rows left `processing` by a job that ended without telling them (see the module comment). */
      const releaseAbandoned = query(sql`
        UPDATE uploaded_encryption_files f
        SET status = 'failed',
            error_message = coalesce(
              (SELECT s.error FROM job_status s WHERE s.job_id = f.job_id),
              'the processing job stopped before it finished'
            )
        WHERE f.status = 'processing'
          AND (
            EXISTS (SELECT 1 FROM job_status s WHERE s.job_id = f.job_id AND s.state IN ('failed', 'cancelled'))
            OR (f.job_id IS NULL AND f.processing_started_at < now() - make_interval(mins => ${ORPHAN_MINUTES}))
          )`)

      const upload = Effect.fn("EncryptionFiles.upload")(function* (
        filename: string,
        body: FileBody,
        options?: { readonly maxBytes?: number }
      ) {
        const id = randomUUID()
        const key = rawKey(id)
        const counts = { lines: 0 }
        yield* files
          .put(key, sniffUpload(body, counts), {
            maxBytes: options?.maxBytes ?? settings.uploadMaxBytes,
            contentType: "text/csv"
          })
          .pipe(
            Effect.catchTag("StorageError", (error): Effect.Effect<never, StorageError | UnreadableFile> =>
              error.cause instanceof BinaryUpload
                ? Effect.fail(
                    new UnreadableFile({ message: "the file is not a CSV text file (it contains binary data)" })
                  )
                : Effect.fail(error)
            )
          )
        if (counts.lines === 0) {
          yield* files.delete(key).pipe(Effect.ignore)
          return yield* new UnreadableFile({ message: "the file is empty: it has no values" })
        }
        const originalFilename = filename.trim() === "" ? "upload.csv" : filename
        yield* query(sql`
          INSERT INTO uploaded_encryption_files (id, original_filename, raw_file_path, status, record_count_total)
          VALUES (${id}::uuid, ${originalFilename}, ${key}, 'uploaded', ${counts.lines})`).pipe(
          Effect.tapError(() => files.delete(key).pipe(Effect.ignore))
        )
        return { id, original_filename: originalFilename, status: "uploaded" } satisfies UploadedEncryptionFile
      })

      const list = Effect.fn("EncryptionFiles.list")(function* (statuses?: ReadonlyArray<EncryptionFileStatus>) {
        yield* releaseAbandoned
        const rows = yield* query(sql<FileRow>`
          SELECT * FROM uploaded_encryption_files
          ${statuses !== undefined && statuses.length > 0 ? sql`WHERE status IN ${sql.in(statuses)}` : sql``}
          ORDER BY uploaded_at DESC, id`)
        return rows.map((r): EncryptionFileItem => ({
          id: r.id,
          original_filename: r.original_filename,
          status: r.status,
          uploaded_at: r.uploaded_at,
          processing_started_at: r.processing_started_at,
          processed_at: r.processed_at,
          error_message: r.error_message,
          direction: r.direction,
          record_count_total: r.record_count_total,
          record_count_failed: r.record_count_failed,
          job_id: r.job_id
        }))
      })

      const startProcessing = Effect.fn("EncryptionFiles.startProcessing")(function* (
        fileId: string,
        direction: TokenDirection
      ) {
        if (!UUID.test(fileId)) return yield* notFound(fileId)
        yield* releaseAbandoned
        const claimed = yield* sql<{ id: string }>`
          UPDATE uploaded_encryption_files
          SET status = 'processing', direction = ${direction}, processing_started_at = now(),
              error_message = NULL, job_id = NULL
          WHERE id = ${fileId}::uuid AND status IN ('uploaded', 'failed')
          RETURNING id`.pipe(
          Effect.catchTag("SqlError", (error): Effect.Effect<never, Conflict | DatabaseError> =>
            isUniqueViolation(error)
              ? Effect.fail(new Conflict({ message: "Another file is already processing" }))
              : Effect.fail(toDatabaseError(error))
          )
        )
        if (claimed.length === 0) {
          const row = yield* findRow(fileId)
          if (row === undefined) return yield* notFound(fileId)
          return yield* new ValidationError({
            message: `File not eligible for processing: it is ${row.status} (only uploaded or failed files can be processed)`,
            field: "file_id"
          })
        }
        const jobId = yield* jobs.enqueue(ENCRYPTION_FILE_QUEUE, { file_id: fileId }).pipe(
          Effect.tapError((error) =>
            query(sql`
              UPDATE uploaded_encryption_files
              SET status = 'failed', error_message = ${`could not start the job: ${error.message}`}
              WHERE id = ${fileId}::uuid AND status = 'processing' AND job_id IS NULL`).pipe(Effect.ignore)
          ),
          Effect.mapError((error) =>
            error._tag === "Conflict" ? new Conflict({ message: "Another file is already processing" }) : error
          )
        )
        // The worker may have claimed the row with this id already; setting it again is harmless.
        yield* query(sql`
          UPDATE uploaded_encryption_files SET job_id = ${jobId}::uuid
          WHERE id = ${fileId}::uuid AND status = 'processing' AND (job_id IS NULL OR job_id = ${jobId}::uuid)`)
        return { ok: true, file_id: fileId, status: "processing", job_id: jobId } satisfies ProcessingStarted
      })

      const run = (job: RunningJob, fileId: string) =>
        Effect.gen(function* () {
          // The row is this job's when it is processing for it (or for no job yet), or failed by an earlier attempt of it.
          const claimed = yield* sql<{
            raw_file_path: string | null
            direction: TokenDirection
            record_count_total: number | null
          }>`
            UPDATE uploaded_encryption_files
            SET status = 'processing', job_id = ${job.id}::uuid, error_message = NULL,
                processing_started_at = CASE WHEN status = 'processing' THEN processing_started_at ELSE now() END
            WHERE id = ${fileId}::uuid
              AND ((status = 'processing' AND (job_id IS NULL OR job_id = ${job.id}::uuid))
                OR (status = 'failed' AND job_id = ${job.id}::uuid))
            RETURNING raw_file_path, direction, record_count_total`.pipe(
            Effect.catchTag("SqlError", (error): Effect.Effect<never, Conflict | DatabaseError> =>
              isUniqueViolation(error)
                ? Effect.fail(new Conflict({ message: "Another file is already processing" }))
                : Effect.fail(toDatabaseError(error))
            )
          )
          const row = claimed[0]
          if (row === undefined) {
            return {
              file_id: fileId,
              status: "skipped",
              reason: "the file was deleted, archived or taken over by another job"
            } satisfies ProcessedFile
          }
          if (row.raw_file_path === null) return yield* new NotFound({ message: `File ${fileId} has no upload` })
          const source = yield* files.get(row.raw_file_path)
          const output = outputKey(fileId)
          const expected = row.record_count_total ?? 0
          const counts = yield* Effect.scoped(
            Effect.gen(function* () {
              const writer = yield* files.openWriter(output, { contentType: "text/csv" })
              const result = yield* transformTokenCsv(encryption, row.direction, source, (text, progress) =>
                Effect.tryPromise({
                  try: () => writer.write(text),
                  catch: (cause) =>
                    cause instanceof StorageError
                      ? cause
                      : new StorageError({ message: `could not write file ${output}`, cause })
                }).pipe(
                  Effect.andThen(
                    progress.records % (BATCH_ROWS * 8) < BATCH_ROWS
                      ? job.progress(progress.records, Math.max(expected, progress.records))
                      : Effect.void
                  )
                )
              )
              yield* Effect.tryPromise({
                try: () => writer.close(),
                catch: (cause) =>
                  cause instanceof StorageError
                    ? cause
                    : new StorageError({ message: `could not write file ${output}`, cause })
              })
              return result
            })
          )
          const done = yield* query(sql`
            UPDATE uploaded_encryption_files
            SET status = 'processed', encrypted_file_path = ${output}, processed_at = now(),
                record_count_total = ${counts.records}, record_count_failed = ${counts.failed}
            WHERE id = ${fileId}::uuid AND job_id = ${job.id}::uuid AND status = 'processing'
            RETURNING id`)
          if (done.length === 0) {
            // Deleted or archived while it ran: its output belongs to nobody.
            yield* files.delete(output).pipe(Effect.ignore)
            return {
              file_id: fileId,
              status: "skipped",
              reason: "the file was deleted or archived while it was processed"
            } satisfies ProcessedFile
          }
          yield* job.progress(counts.records, counts.records)
          return {
            file_id: fileId,
            status: "processed",
            direction: row.direction,
            records: counts.records,
            failed: counts.failed
          } satisfies ProcessedFile
        })

      const process = Effect.fn("EncryptionFiles.process")(function* (job: RunningJob) {
        const fileId = job.data.file_id
        if (typeof fileId !== "string" || !UUID.test(fileId)) {
          return yield* new ValidationError({ message: "the job has no valid file_id", field: "file_id" })
        }
        return yield* run(job, fileId).pipe(
          // A failure is shown on the row at once; a retry of this job claims the row back.
          Effect.tapError((error) =>
            query(sql`
              UPDATE uploaded_encryption_files SET status = 'failed', error_message = ${error.message}
              WHERE id = ${fileId}::uuid AND job_id = ${job.id}::uuid AND status = 'processing'`).pipe(Effect.ignore)
          )
        )
      })

      const download = Effect.fn("EncryptionFiles.download")(function* (fileId: string) {
        const row = yield* findRow(fileId)
        if (row === undefined) return yield* notFound(fileId)
        if (row.status !== "processed" || row.encrypted_file_path === null) {
          return yield* new ValidationError({
            message: `File not processed yet (it is ${row.status})`,
            field: "file_id"
          })
        }
        const body = yield* files
          .webStream(row.encrypted_file_path)
          .pipe(
            Effect.catchTag("NotFound", () =>
              Effect.fail(new NotFound({ message: `Processed file missing on storage: ${fileId}` }))
            )
          )
        const prefix = row.direction === "decrypt" ? "decrypted_" : "encrypted_"
        return { filename: `${prefix}${row.original_filename}`, body } satisfies EncryptionFileDownload
      })

      const archive = Effect.fn("EncryptionFiles.archive")(function* (fileId: string) {
        const row = yield* findRow(fileId)
        if (row === undefined) return yield* notFound(fileId)
        if (row.status === "processing") {
          return yield* new Conflict({ message: "The file is processing: archive it once it has finished" })
        }
        yield* query(sql`UPDATE uploaded_encryption_files SET status = 'archived' WHERE id = ${fileId}::uuid`)
      })

      const remove = Effect.fn("EncryptionFiles.delete")(function* (fileId: string) {
        if (!UUID.test(fileId)) return yield* notFound(fileId)
        const deleted = yield* query(sql<{ raw_file_path: string | null; encrypted_file_path: string | null }>`
          DELETE FROM uploaded_encryption_files WHERE id = ${fileId}::uuid
          RETURNING raw_file_path, encrypted_file_path`)
        const row = deleted[0]
        if (row === undefined) return yield* notFound(fileId)
        for (const key of [row.raw_file_path, row.encrypted_file_path]) {
          if (key !== null) yield* files.delete(key)
        }
      })

      return EncryptionFiles.of({
        upload,
        list,
        startProcessing,
        process,
        download,
        archive,
        delete: remove
      })
    })
  )

  static readonly layer = EncryptionFiles.layerNoDeps.pipe(Layer.provide(Encryption.layer))
}
