/**
 * Files of phone numbers turned into tokens (or, new, tokens turned back into numbers): the
 * original's encryption-file flow (docs/original-api.md) as a durable job.
 *
 * upload (`raw_encrypted/<id>.csv`, status `uploaded`) → process (status `processing`, a job on
 * the `encryption-file` queue) → the job (`runJob`) writes `processed_encrypted/<id>.csv` (status
 * `processed`, or `failed` with the reason) → download / archive / delete. All of it but the upload
 * and the job's work is the shared file-job workflow (`platform/FileJobs.ts`).
 *
 * File format, as the original's: the value is the FIRST column of each CSV row (no header
 * detection: a header line is a value like any other; blank lines are skipped); the output has two
 * columns and no header — `value,token` when encrypting, `token,plaintext` when decrypting. A token
 * that does not decrypt is counted in `record_count_failed` and written with an empty second
 * column, so the output keeps one line per input row. Changes from the original: cells are trimmed
 * and a UTF-8 byte-order mark is dropped (the original encrypted both); an empty or binary upload is
 * refused at once (`UnreadableFile`, `platform/TextUpload.ts`) instead of failing later.
 *
 * One file processes at a time (the partial unique index `one_processing_encryption_file_only`,
 * HTTP 409 otherwise). Retries are safe: the job rewrites its output from the start (a FileStore
 * write is all or nothing) and every status change is fenced by the run.
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../platform/Config.ts"
import { toDatabaseError } from "../platform/Database.ts"
import {
  Conflict,
  DatabaseError,
  Forbidden,
  type NotConfigured,
  NotFound,
  PayloadTooLarge,
  StorageError,
  UnreadableFile,
  ValidationError
} from "../platform/Errors.ts"
import {
  FILE_JOB_STATUSES,
  makeFileJobs,
  runOutputKey,
  type FileDownload,
  type FileJobStarted,
  type FileUpload
} from "../platform/FileJobs.ts"
import { FileStore, type FileBody } from "../platform/FileStore.ts"
import type { RunningJob } from "../platform/Jobs.ts"
import { storeTextUpload, uploadFilename } from "../platform/TextUpload.ts"
import { Encryption } from "./Encryption.ts"
import { BATCH_ROWS, transformTokenCsv, type TokenDirection } from "./TokenCsv.ts"

export { firstColumnBatches, transformTokenCsv, type TokenCsvCounts, type TokenDirection } from "./TokenCsv.ts"

/** The queue of the processing job (`JOB_HANDLERS` in Workers.ts). */
export const ENCRYPTION_FILE_QUEUE = "encryption-file"

export const ENCRYPTION_FILE_STATUSES = FILE_JOB_STATUSES
export type EncryptionFileStatus = (typeof ENCRYPTION_FILE_STATUSES)[number]

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
export type ProcessingStarted = FileJobStarted

export interface ProcessedFile {
  readonly file_id: string
  readonly status: "processed" | "skipped"
  readonly direction?: TokenDirection
  readonly records?: number
  readonly failed?: number
  readonly reason?: string
}

/** `encrypted_<original_filename>` (`decrypted_…` for the decrypt direction). */
export type EncryptionFileDownload = FileDownload

const rawKey = (id: string) => `raw_encrypted/${id}.csv`
const outputKey = (id: string, run: Date) => runOutputKey("processed_encrypted", id, run)

/** A row of `uploaded_encryption_files`. */
const FileRow = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  raw_file_path: Schema.NullOr(Schema.String),
  encrypted_file_path: Schema.NullOr(Schema.String),
  status: Schema.Literals(ENCRYPTION_FILE_STATUSES),
  uploaded_at: Schema.Date,
  processing_started_at: Schema.NullOr(Schema.Date),
  processed_at: Schema.NullOr(Schema.Date),
  error_message: Schema.NullOr(Schema.String),
  direction: Schema.Literals(["encrypt", "decrypt"]),
  record_count_total: Schema.NullOr(Schema.Number),
  record_count_failed: Schema.NullOr(Schema.Number),
  job_id: Schema.NullOr(Schema.String)
})

const FILE_COLUMNS = `id::text AS id, original_filename, raw_file_path, encrypted_file_path, status, uploaded_at,
  processing_started_at, processed_at, error_message, direction, record_count_total, record_count_failed,
  job_id::text AS job_id`

export class EncryptionFiles extends Context.Service<
  EncryptionFiles,
  {
    /** Stores an upload (`UPLOAD_MAX_BYTES` unless `maxBytes`); empty or binary content is `UnreadableFile`. */
    readonly upload: FileUpload<
      UploadedEncryptionFile,
      UnreadableFile | PayloadTooLarge | ValidationError | StorageError | DatabaseError
    >
    /** Newest first; only the given statuses when any are given. */
    readonly list: (
      statuses?: ReadonlyArray<EncryptionFileStatus>
    ) => Effect.Effect<ReadonlyArray<EncryptionFileItem>, DatabaseError>
    readonly get: (fileId: string) => Effect.Effect<EncryptionFileItem, NotFound | DatabaseError>
    /**
     * Marks an `uploaded` or `failed` file `processing` and queues its job. `Conflict` while another
     * file is processing; `ValidationError` when its status does not allow it; `NotFound`.
     */
    readonly process: (
      fileId: string,
      direction: TokenDirection
    ) => Effect.Effect<ProcessingStarted, NotFound | ValidationError | Conflict | DatabaseError>
    /** The job: reads the upload, writes the output, records the outcome. */
    readonly runJob: (
      job: RunningJob
    ) => Effect.Effect<
      ProcessedFile,
      UnreadableFile | NotConfigured | ValidationError | NotFound | StorageError | Conflict | DatabaseError
    >
    /**
     * The processed file; `ValidationError` (400) while it is not processed. A decrypted file holds
     * numbers in clear: with `mayReveal: false` (the HTTP API for a non-admin) it is `Forbidden`.
     */
    readonly download: (
      fileId: string,
      options?: { readonly mayReveal?: boolean }
    ) => Effect.Effect<EncryptionFileDownload, NotFound | Forbidden | ValidationError | StorageError | DatabaseError>
    readonly archive: (fileId: string) => Effect.Effect<void, NotFound | Conflict | DatabaseError>
    /** Removes the row and its stored files. */
    readonly delete: (fileId: string) => Effect.Effect<void, NotFound | Conflict | StorageError | DatabaseError>
  }
>()("@optimizer/core/encryption/EncryptionFiles") {
  static readonly layerNoDeps = Layer.effect(
    EncryptionFiles,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const files = yield* FileStore
      const encryption = yield* Encryption
      const settings = yield* AppConfig
      const notFound = (fileId: string) => `File not found: ${fileId}`
      const fileJobs = yield* makeFileJobs({
        table: "uploaded_encryption_files",
        queue: ENCRYPTION_FILE_QUEUE,
        name: "EncryptionFiles",
        columns: FILE_COLUMNS,
        row: FileRow,
        storedKeys: (row) => [row.raw_file_path, row.encrypted_file_path],
        startFrom: ["uploaded", "failed"],
        messages: {
          notFound,
          conflict: "Another file is already processing",
          notEligible: (fileId, status) =>
            status === undefined
              ? new NotFound({ message: notFound(fileId) })
              : new ValidationError({
                  message: `File not eligible for processing: it is ${status} (only uploaded or failed files can be processed)`,
                  field: "file_id"
                }),
          notProcessed: (row) => `File not processed yet (it is ${row.status})`,
          queueFailed: "could not start the job",
          archiveWhileProcessing: "The file is processing: archive it once it has finished"
        }
      })

      /** The item of a row: every column but the stored files' keys. */
      const item = ({ raw_file_path: _raw, encrypted_file_path: _output, ...rest }: typeof FileRow.Type) =>
        rest satisfies EncryptionFileItem

      const upload = Effect.fn("EncryptionFiles.upload")(function* (
        filename: string,
        body: FileBody,
        options?: { readonly maxBytes?: number }
      ) {
        const id = randomUUID()
        const key = rawKey(id)
        const lines = yield* storeTextUpload(files, key, body, {
          maxBytes: options?.maxBytes ?? settings.uploadMaxBytes,
          empty: new UnreadableFile({ message: "the file is empty: it has no values" })
        })
        const originalFilename = uploadFilename(filename)
        yield* sql`
          INSERT INTO uploaded_encryption_files (id, original_filename, raw_file_path, status, record_count_total)
          VALUES (${id}::uuid, ${originalFilename}, ${key}, 'uploaded', ${lines})`.pipe(
          Effect.mapError((cause) => toDatabaseError(cause)),
          Effect.tapError(() => files.delete(key).pipe(Effect.ignore))
        )
        return { id, original_filename: originalFilename, status: "uploaded" } satisfies UploadedEncryptionFile
      })

      const list = (statuses?: ReadonlyArray<EncryptionFileStatus>) =>
        fileJobs.list(statuses ?? []).pipe(Effect.map((rows) => rows.map(item)))

      const process = (fileId: string, direction: TokenDirection) =>
        fileJobs.start(fileId, {}, sql`, direction = ${direction}`)

      const runJob = Effect.fn("EncryptionFiles.runJob")(function* (job: RunningJob) {
        return yield* fileJobs.runJob(
          job,
          (stale) =>
            Effect.succeed({
              file_id: stale.fileId,
              status: "skipped",
              reason: "the file was deleted, archived or taken over by another job"
            } satisfies ProcessedFile),
          ({ fileId, run, row }) =>
            Effect.gen(function* () {
              if (row.raw_file_path === null) return yield* new NotFound({ message: `File ${fileId} has no upload` })
              const source = yield* files.get(row.raw_file_path)
              const output = outputKey(fileId, run)
              const expected = row.record_count_total ?? 0
              const counts = yield* Effect.scoped(
                Effect.gen(function* () {
                  const writer = yield* files.openWriter(output, { contentType: "text/csv" })
                  const written = (cause: unknown) =>
                    cause instanceof StorageError
                      ? cause
                      : new StorageError({ message: `could not write file ${output}`, cause })
                  const result = yield* transformTokenCsv(encryption, row.direction, source, (text, progress) =>
                    Effect.tryPromise({ try: () => writer.write(text), catch: written }).pipe(
                      Effect.andThen(
                        progress.records % (BATCH_ROWS * 8) < BATCH_ROWS
                          ? job.progress(progress.records, Math.max(expected, progress.records))
                          : Effect.void
                      )
                    )
                  )
                  yield* Effect.tryPromise({ try: () => writer.close(), catch: written })
                  return result
                })
              )
              const done = yield* fileJobs.finish(
                fileId,
                run,
                sql`, encrypted_file_path = ${output}, record_count_total = ${counts.records},
              record_count_failed = ${counts.failed}`,
                [output]
              )
              if (!done) {
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
        )
      })

      const download = (fileId: string, options?: { readonly mayReveal?: boolean }) =>
        Effect.gen(function* () {
          if (options?.mayReveal === false) {
            const row = yield* fileJobs.get(fileId)
            if (row.direction === "decrypt") {
              return yield* new Forbidden({
                message: "A decrypted file holds numbers in clear: downloading it needs the admin role"
              })
            }
          }
          return yield* fileJobs.download(fileId, (row) => ({
            key: row.encrypted_file_path,
            filename: `${row.direction === "decrypt" ? "decrypted_" : "encrypted_"}${row.original_filename}`
          }))
        })

      return EncryptionFiles.of({
        upload,
        list,
        get: (fileId) => fileJobs.get(fileId).pipe(Effect.map(item)),
        process,
        runJob,
        download,
        archive: fileJobs.archive,
        delete: (fileId) => fileJobs.delete(fileId).pipe(Effect.asVoid)
      })
    })
  )

  static readonly layer = EncryptionFiles.layerNoDeps.pipe(Layer.provide(Encryption.layer))
}
