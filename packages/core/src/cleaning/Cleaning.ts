/**
 * CSV list cleaning, the main job (docs/original-api.md): operators upload the
 * target list of the next broadcast, clean it against the blacklist, the monitor list, the
 * converters (`api_voluum_conversions`) and the numbers already sent to (`main_database`), and send
 * the result to MessageWhiz and the HLR provider.
 *
 * Flow and status machine (the original's): `upload` → `uploaded`; `process` → `processing` (one
 * file at a time: the partial unique index `one_processing_file_only`, a second file gets
 * `Conflict`) and a durable job; the job → `processed` | `failed`; `failed` may be processed again;
 * `archive` → `archived`; `delete` removes the row, its stats and its stored files. All of it but
 * the upload and the job's work is the shared file-job workflow (`platform/FileJobs.ts`).
 *
 * The job and `optimizer clean` (a local file, synchronously) run the same engine,
 * `CleaningPipeline.runPipeline`; see there for how it stays fast, flat in memory and exactly-once.
 *
 * Crashes: a worker that dies mid-file leaves the row `processing`; the job is retried (pg-boss
 * heartbeat) and the retry runs the file again from the start, computing the same result (the
 * pipeline's run marker). A job that ends without finishing the row (cancelled, out of retries)
 * leaves it `failed`: the handler records the failure, and `reconcile` catches what the handler
 * could not (a worker killed on the last attempt) whenever files are listed or processed.
 */
import { randomUUID } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import { Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../platform/Config.ts"
import { PgBulk, toDatabaseError } from "../platform/Database.ts"
import {
  Conflict,
  DatabaseError,
  NotFound,
  PayloadTooLarge,
  StorageError,
  UnreadableFile,
  ValidationError
} from "../platform/Errors.ts"
import { makeFileJobs, runOutputKey, type FileJobStarted, type FileUpload } from "../platform/FileJobs.ts"
import { FileStore, type FileBody, type FileWriter } from "../platform/FileStore.ts"
import type { RunningJob } from "../platform/Jobs.ts"
import { storeTextUpload, uploadFilename } from "../platform/TextUpload.ts"
import { checkOptions, flagsOf, optionsFromJson, optionsJson, type CleaningOptions } from "./CleaningOptions.ts"
import { localFileWriter } from "./LocalFiles.ts"
import { runPipeline, type PipelineResult } from "./CleaningPipeline.ts"
import {
  CleaningFileRow,
  CleaningRepository,
  FILE_COLUMNS,
  NOT_ELIGIBLE,
  type CleaningFile,
  type CleaningStats,
  type FileStatus
} from "./CleaningRepository.ts"
import { recordRun } from "../platform/Observability.ts"

export { ITEM_KEYS, type CleaningFile, type CleaningFileItem, type CleaningStats } from "./CleaningRepository.ts"
export type { CleaningCounts, CleaningFlags, PipelineResult } from "./CleaningPipeline.ts"

/** The durable job's queue. */
export const CLEANING_QUEUE = "cleaning.process"
/** Retries after the first attempt: a crash or a database outage; bad input fails at once. */
export const CLEANING_RETRY_LIMIT = 3

export type { CleaningOptions } from "./CleaningOptions.ts"

export interface UploadResult {
  readonly id: string
  readonly original_filename: string
  readonly status: "uploaded"
}

export type ProcessStarted = FileJobStarted

export type DownloadKind = "default" | "rejects" | "annotated"

export interface Download {
  /** `processed_<original_filename>` (the original's name), `rejects_…`, `annotated_…`. */
  readonly filename: string
  readonly body: ReadableStream<Uint8Array>
}

export interface LocalCleaningOptions extends Omit<CleaningOptions, "rejects" | "annotated"> {
  /** Where the cleaned list goes (one number per line). */
  readonly out: string
  readonly rejectsOut?: string | undefined
  readonly annotatedOut?: string | undefined
  /** Rows read so far, every few tens of thousands of rows (a progress display). */
  readonly onProgress?: ((rowsRead: number) => void) | undefined
}

/** What a run of the job returns (the job's result in `job_status`). */
export interface CleaningJobResult {
  readonly file_id: string
  readonly status: "processed" | "skipped"
  readonly reason?: string
  readonly stats?: PipelineResult | CleaningStats
}

const PROGRESS_INTERVAL_MS = 500

// ---------------------------------------------------------------------------------------------

const rawKey = (id: string) => `raw/${id}.csv`

/** A run's outputs, each run with its own keys (`runOutputKey`). */
const outputKeys = (id: string, run: Date) => ({
  processed: runOutputKey("processed", id, run),
  rejects: runOutputKey("rejects", id, run),
  annotated: runOutputKey("annotated", id, run)
})

const pipelineFailure = (cause: unknown): UnreadableFile | ValidationError | DatabaseError | StorageError => {
  if (
    cause instanceof UnreadableFile ||
    cause instanceof ValidationError ||
    cause instanceof DatabaseError ||
    cause instanceof StorageError
  ) {
    return cause
  }
  return toDatabaseError(cause, "the cleaning run failed")
}

export class Cleaning extends Context.Service<
  Cleaning,
  {
    /**
     * Stores an uploaded list (streamed; `UPLOAD_MAX_BYTES`) as `uploaded`. Binary, UTF-16 and empty
     * files are `UnreadableFile`; a body over the limit is `PayloadTooLarge`.
     */
    readonly upload: FileUpload<
      UploadResult,
      UnreadableFile | PayloadTooLarge | StorageError | DatabaseError | ValidationError
    >
    /** Files, newest first; only these statuses when given. */
    readonly list: (statuses?: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<CleaningFile>, DatabaseError>
    readonly get: (id: string) => Effect.Effect<CleaningFile, NotFound | DatabaseError>
    /** Marks the file `processing` and queues its job; answers at once. */
    readonly process: (
      id: string,
      options?: CleaningOptions
    ) => Effect.Effect<ProcessStarted, NotFound | ValidationError | Conflict | DatabaseError>
    /** The last run's counts; `ValidationError` (400) while the file has not been processed. */
    readonly stats: (id: string) => Effect.Effect<CleaningStats, NotFound | ValidationError | DatabaseError>
    readonly download: (
      id: string,
      kind?: DownloadKind
    ) => Effect.Effect<Download, NotFound | ValidationError | StorageError | DatabaseError>
    readonly archive: (id: string) => Effect.Effect<void, NotFound | Conflict | DatabaseError>
    /** The row, its stats and every stored file of it. */
    readonly delete: (id: string) => Effect.Effect<void, NotFound | Conflict | DatabaseError | StorageError>
    /** The job handler (`cleaning.process`); idempotent per run. */
    readonly runJob: (
      job: RunningJob
    ) => Effect.Effect<CleaningJobResult, UnreadableFile | ValidationError | NotFound | DatabaseError | StorageError>
    /** `optimizer clean`: a local file through the same pipeline, synchronously; no row is created. */
    readonly cleanLocalFile: (
      file: string,
      options: LocalCleaningOptions
    ) => Effect.Effect<PipelineResult, NotFound | UnreadableFile | ValidationError | DatabaseError | StorageError>
  }
>()("@optimizer/core/cleaning/Cleaning") {
  static readonly layerNoDeps = Layer.effect(
    Cleaning,
    Effect.gen(function* () {
      const repository = yield* CleaningRepository
      const files = yield* FileStore
      const bulk = yield* PgBulk
      const settings = yield* AppConfig
      const sql = yield* SqlClient.SqlClient
      const fileJobs = yield* makeFileJobs({
        table: "uploaded_csv_files",
        queue: CLEANING_QUEUE,
        name: "Cleaning",
        columns: FILE_COLUMNS,
        row: CleaningFileRow,
        startFrom: ["uploaded", "failed"],
        retryLimit: CLEANING_RETRY_LIMIT,
        // A new run starts from nothing: no outputs, no clean count, progress from 0.
        onStart: `, lock_owner = 'api', progress_processed = 0, progress_total = record_count_total,
          processed_file_path = NULL, rejects_file_path = NULL, annotated_file_path = NULL, record_count_clean = NULL`,
        onFail: ", lock_owner = NULL",
        progressColumns: true,
        messages: {
          notFound: () => "File not found",
          conflict: "Another file is already processing",
          notEligible: (_id, status) =>
            status === undefined
              ? new NotFound({ message: NOT_ELIGIBLE })
              : status === "processing"
                ? new Conflict({ message: "Another file is already processing: this one" })
                : new ValidationError({ message: `${NOT_ELIGIBLE} (its status is ${status})`, field: "file_id" }),
          notProcessed: () => "File not processed yet",
          queueFailed: "could not queue the processing job",
          archiveWhileProcessing: "The file is processing: archive it once its run has finished"
        },
        storedKeys: (row) => [
          row.raw_file_path,
          row.processed_file_path,
          row.rejects_file_path,
          row.annotated_file_path,
          row.hlr_result_file_path,
          row.hlr_raw_file_path
        ],
        deleteBlocked: {
          where: "status = 'processing' OR (hlr_status IS NOT NULL AND hlr_status IN ('uploading', 'processing'))",
          message: (row) =>
            row.status === "processing"
              ? "The file is processing: delete it once its run has finished"
              : "An HLR run is using the file: delete it once the run has finished"
        }
      })

      const upload = Effect.fn("Cleaning.upload")(function* (
        filename: string,
        body: FileBody,
        options?: { readonly maxBytes?: number }
      ) {
        const id = randomUUID()
        const key = rawKey(id)
        const lines = yield* storeTextUpload(files, key, body, {
          maxBytes: options?.maxBytes ?? settings.uploadMaxBytes,
          empty: new UnreadableFile({ message: "the file is empty: it has no line with content" })
        })
        const row = yield* repository
          .insertUploaded({ id, originalFilename: uploadFilename(filename), rawKey: key, lines })
          .pipe(Effect.tapError(() => files.delete(key).pipe(Effect.ignore)))
        yield* Effect.logInfo("list uploaded").pipe(Effect.annotateLogs({ file_id: id, lines }))
        return { id: row.id, original_filename: row.original_filename, status: "uploaded" as const }
      })

      const list = Effect.fn("Cleaning.list")(function* (statuses?: ReadonlyArray<string>) {
        return yield* fileJobs.list((statuses ?? []).map((s) => s.trim()).filter((s) => s !== ""))
      })

      const process = Effect.fn("Cleaning.process")(function* (id: string, options: CleaningOptions = {}) {
        const checked = yield* checkOptions(options)
        return yield* fileJobs.start(id, {}, sql`, options = ${JSON.stringify(optionsJson(checked))}::jsonb`)
      })

      const stats = Effect.fn("Cleaning.stats")(function* (id: string) {
        const found = yield* repository.stats(id)
        if (Option.isSome(found)) return found.value
        yield* fileJobs.get(id)
        return yield* new ValidationError({ message: "File not processed yet", field: "file_id" })
      })

      const download = (id: string, kind: DownloadKind = "default") =>
        fileJobs
          .download(id, (row) => {
            const key =
              kind === "rejects"
                ? row.rejects_file_path
                : kind === "annotated"
                  ? row.annotated_file_path
                  : row.processed_file_path
            if (row.processed_file_path === null) return { key: null, filename: "" }
            if (key === null) {
              return new NotFound({
                message: `No ${kind} file for this run: process the file with ${kind}=true to get one`
              })
            }
            const prefix = kind === "default" ? "processed" : kind
            return { key, filename: `${prefix}_${row.original_filename}` }
          })
          .pipe(Effect.withSpan("Cleaning.download"))

      const deleteFile = (id: string) => fileJobs.delete(id).pipe(Effect.asVoid)

      /** Runs the pipeline with writers from `openOutputs`, closing them on success and aborting them otherwise. */
      const runWithOutputs = (
        open: () => Promise<AsyncIterable<Uint8Array>>,
        options: CleaningOptions,
        marker: Date,
        outputs: { clean: FileWriter; rejects: FileWriter | undefined; annotated: FileWriter | undefined },
        onProgress: ((rows: number) => void) | undefined
      ) =>
        Effect.tryPromise({
          try: async (signal) => {
            const writers = [outputs.clean, outputs.rejects, outputs.annotated].filter(
              (w): w is FileWriter => w !== undefined
            )
            try {
              const result = await runPipeline({
                open,
                flags: flagsOf(options),
                country: options.country,
                phoneColumn: options.phoneColumn,
                marker,
                outputs,
                pool: bulk.pool,
                signal,
                onProgress
              })
              for (const writer of writers) await writer.close()
              return result
            } catch (cause) {
              await Promise.all(writers.map((w) => w.abort().catch(() => undefined)))
              throw cause
            }
          },
          catch: pipelineFailure
        })

      /** A job with nothing to do: the file was deleted, or its run is not this job's. */
      const staleJob = Effect.fn("Cleaning.staleJob")(function* (claim: {
        readonly fileId: string
        readonly run: Date
        readonly row: Option.Option<CleaningFile>
      }) {
        const { fileId, run } = claim
        if (Option.isNone(claim.row)) {
          return { file_id: fileId, status: "skipped" as const, reason: "the file was deleted" }
        }
        const row = claim.row.value
        if (row.status === "processed" && row.processing_started_at?.getTime() === run.getTime()) {
          // An earlier attempt finished the file and died before the job was settled.
          const done = yield* repository.stats(fileId)
          return {
            file_id: fileId,
            status: "processed" as const,
            ...(Option.isSome(done) ? { stats: done.value } : {})
          }
        }
        return {
          file_id: fileId,
          status: "skipped" as const,
          reason: `the file is ${row.status} by another run; this job is stale`
        }
      })

      /** The run of a job: the pipeline from the stored upload to the stored outputs. */
      const cleanStoredFile = Effect.fn("Cleaning.cleanStoredFile")(function* (
        job: RunningJob,
        claim: { readonly fileId: string; readonly run: Date; readonly row: CleaningFile }
      ) {
        const { fileId, run, row } = claim
        const options = optionsFromJson(row.options)
        const keys = outputKeys(fileId, run)
        const uploadKey = row.raw_file_path ?? rawKey(fileId)
        const total = Math.max(row.record_count_total ?? 0, 0)

        // Progress: at most one write in flight, at most every PROGRESS_INTERVAL_MS.
        const context = yield* Effect.context<never>()
        let lastProgress = 0
        let inFlight = false
        const onProgress = (rows: number) => {
          const now = Date.now()
          if (inFlight || now - lastProgress < PROGRESS_INTERVAL_MS) return
          lastProgress = now
          inFlight = true
          const t = Math.max(total, rows)
          Effect.runPromiseWith(context)(
            Effect.all([job.progress(rows, t), fileJobs.progress(fileId, run, rows, t).pipe(Effect.ignore)], {
              concurrency: 2,
              discard: true
            })
          ).finally(() => {
            inFlight = false
          })
        }

        const result = yield* Effect.scoped(
          Effect.gen(function* () {
            const clean = yield* files.openWriter(keys.processed, { contentType: "text/csv" })
            const rejects = options.rejects
              ? yield* files.openWriter(keys.rejects, { contentType: "text/csv" })
              : undefined
            const annotated = options.annotated
              ? yield* files.openWriter(keys.annotated, { contentType: "text/csv" })
              : undefined
            const open = () =>
              Effect.runPromise(
                files
                  .get(uploadKey)
                  .pipe(
                    Effect.mapError((error) =>
                      error._tag === "NotFound"
                        ? new UnreadableFile({ message: "the uploaded file is missing from storage: upload it again" })
                        : error._tag === "ValidationError"
                          ? new StorageError({ message: error.message })
                          : error
                    )
                  )
              )
            return yield* runWithOutputs(open, options, run, { clean, rejects, annotated }, onProgress)
          })
        ).pipe(
          Effect.mapError((error) =>
            error._tag === "ValidationError" && error.field !== "phone_column"
              ? new StorageError({ message: error.message })
              : error
          )
        )
        const finished = yield* repository.finishRun(fileId, run, {
          counts: result,
          processedKey: keys.processed,
          rejectsKey: options.rejects ? keys.rejects : null,
          annotatedKey: options.annotated ? keys.annotated : null,
          phoneMetadataVersion: result.phone_metadata_version
        })
        yield* job.progress(result.total_records, result.total_records)
        if (!finished) {
          yield* fileJobs.discardOutputs(fileId, [keys.processed, keys.rejects, keys.annotated])
          return { file_id: fileId, status: "skipped" as const, reason: "the file changed while it was processed" }
        }
        recordRun("cleaning", result.total_records)
        yield* Effect.logInfo("list cleaned").pipe(
          Effect.annotateLogs({
            file_id: fileId,
            total_records: result.total_records,
            final_clean_count: result.final_clean_count
          })
        )
        return { file_id: fileId, status: "processed" as const, stats: result }
      })

      // The jobs engine retries database failures (and crashes) up to CLEANING_RETRY_LIMIT times;
      // anything else, or the last attempt, ends the file's run (`FileJobs.guard`).
      const runJob = (job: RunningJob) =>
        fileJobs.runJob(job, staleJob, (claim) => cleanStoredFile(job, claim)).pipe(Effect.withSpan("Cleaning.runJob"))

      const cleanLocalFile = Effect.fn("Cleaning.cleanLocalFile")(function* (
        file: string,
        options: LocalCleaningOptions
      ) {
        const checked = yield* checkOptions(options)
        const stat = yield* Effect.tryPromise({
          try: () => fs.stat(file),
          catch: () => new NotFound({ message: `no such file: ${file}` })
        })
        if (!stat.isFile()) return yield* new NotFound({ message: `not a file: ${file}` })
        if (stat.size === 0) return yield* new UnreadableFile({ message: "the file is empty" })
        const outputs = yield* Effect.tryPromise({
          try: async () => ({
            clean: await localFileWriter(options.out),
            rejects: options.rejectsOut === undefined ? undefined : await localFileWriter(options.rejectsOut),
            annotated: options.annotatedOut === undefined ? undefined : await localFileWriter(options.annotatedOut)
          }),
          catch: (cause) =>
            new StorageError({ message: `could not create the output files: ${(cause as Error)?.message}`, cause })
        })
        const open = async () => createReadStream(file, { highWaterMark: 256 * 1024 })
        return yield* runWithOutputs(open, checked, new Date(), outputs, options.onProgress)
      })

      // A file an HLR run is reading stays where it is until the run ends (the delete refuses it too).
      const archive = (id: string) =>
        sql<{ id: string }>`
          SELECT id::text AS id FROM uploaded_csv_files
          WHERE id::text = ${id} AND hlr_status IN ('uploading', 'processing')`.pipe(
          Effect.mapError((cause) => toDatabaseError(cause)),
          Effect.flatMap((rows) =>
            rows.length > 0
              ? Effect.fail(
                  new Conflict({ message: "An HLR run is using the file: archive it once the run has finished" })
                )
              : fileJobs.archive(id)
          )
        )

      return Cleaning.of({
        upload,
        list,
        get: fileJobs.get,
        process,
        stats,
        download,
        archive,
        delete: deleteFile,
        runJob,
        cleanLocalFile
      })
    })
  )

  static readonly layer = Cleaning.layerNoDeps.pipe(Layer.provide(CleaningRepository.layer))
}

export type { FileStatus }
export { NOT_ELIGIBLE }
