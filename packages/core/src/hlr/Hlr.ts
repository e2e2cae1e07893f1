/**
 * HLR runs on processed cleaning files (`docs/hlr.md`): `start` marks the file's HLR `uploading` and
 * queues a durable job; the job sends the numbers without a fresh cached result to hlrlookup.com as
 * one batch, polls it, and applies its results as they download, storing a copy on the way
 * (`HlrResults.ts`, `downloadAndApply` below).
 *
 * - One run at a time over all files: the partial unique index `one_active_hlr_only` (409).
 * - The run marker is `hlr_started_at` (milliseconds), given to the job as `run`: every write of the
 *   job is fenced by it, so a stale job never touches a later run.
 * - Exactly one batch per run: the batch id is stored on the row right after the provider created it
 *   and before anything else is done with it; a retried job (worker restart, SIGKILL) finds it and
 *   resumes — uploading and starting it only when the provider still has it `NEW`, else polling.
 *   The one window left is a crash between the provider's answer and that UPDATE.
 * - Polling every `HLR_POLL_EVERY_SECONDS`, up to `HLR_POLL_MAX_SECONDS` after the run started
 *   (counted from `hlr_started_at`, so a restart does not restart the clock); progress goes to
 *   `hlr_num_items` / `hlr_num_complete` and the job's progress.
 * - Failures: a retryable one (the provider unreachable or 5xx after the client's own retries, the
 *   database) leaves the run active for the job's retry; anything else, or the last attempt, sets
 *   `hlr_status = failed` with `hlr_error_message`. A run whose job can no longer finish it (failed,
 *   cancelled) is marked failed whenever a status is read or a run started (`reconcile`).
 */
import { Context, Duration, Effect, Layer, Option } from "effect"
import { SqlClient, type Statement } from "effect/sql"
import { RiskyOperators } from "../classification/RiskyOperators.ts"
import { Lists } from "../lists/Lists.ts"
import { AppConfig, requireIntegration } from "../platform/Config.ts"
import { decodeOptionalRow, PgBulk, toDatabaseError } from "../platform/Database.ts"
import {
  Conflict,
  NotFound,
  publicMessage,
  StorageError,
  UpstreamError,
  ValidationError,
  type DatabaseError,
  type NotConfigured
} from "../platform/Errors.ts"
import { failureMessage, isFileId, isFinalAttempt, runOutputKey, type FileDownload } from "../platform/FileJobKind.ts"
import { FileStore } from "../platform/FileStore.ts"
import { Jobs, type RunningJob } from "../platform/Jobs.ts"
import { HlrClient, isBatchComplete } from "./HlrClient.ts"
import { applyHlrResults, type HlrApplyResult } from "./HlrResults.ts"
import { numbersToSend } from "./HlrSource.ts"
import { recordRun } from "../platform/Observability.ts"
import {
  HLR_COLUMNS,
  HlrRow,
  type HlrJobResult,
  type HlrRunError,
  type HlrStarted,
  type HlrStatus,
  type HlrStatusName
} from "./HlrSchemas.ts"

export {
  HLR_STATUSES,
  type HlrJobResult,
  type HlrRunError,
  type HlrStarted,
  type HlrStatus,
  type HlrStatusName
} from "./HlrSchemas.ts"

export const HLR_QUEUE = "hlr.run"
/** Retries after the first attempt: a crash, the provider or the database down for a while. */
export const HLR_RETRY_LIMIT = 5

const ACTIVE: ReadonlyArray<string> = ["uploading", "processing"] satisfies ReadonlyArray<HlrStatusName>
const NOT_FOUND = "File not found"
const NOT_ELIGIBLE = "File not eligible for HLR (must be processed and not already active)"
const CONFLICT = "Another file is already running HLR"

/**
 * A run's files, under keys of their own (`runOutputKey`): a job of an earlier run that is still
 * writing never replaces the current run's files.
 */
const storage = (fileId: string, run: Date) => ({
  raw: runOutputKey("hlr", `${fileId}_raw`, run),
  clean: runOutputKey("hlr", `${fileId}_hlr_clean`, run)
})

const isUniqueViolation = (error: unknown): boolean =>
  (error as { reason?: { _tag?: string } }).reason?._tag === "UniqueViolation"

export class Hlr extends Context.Service<
  Hlr,
  {
    /** Starts an HLR run on a processed file; 409 while another runs, 503 when HLR is not configured. */
    readonly start: (
      fileId: string
    ) => Effect.Effect<HlrStarted, NotFound | ValidationError | Conflict | NotConfigured | DatabaseError>
    /** Every operation answers `NotConfigured` (503) without HLRLOOKUP_APIKEY / HLRLOOKUP_SECRET. */
    readonly status: (fileId: string) => Effect.Effect<HlrStatus, NotFound | NotConfigured | DatabaseError>
    /** `clean`: the live numbers (`hlr_<name>`); `raw`: the provider's results (`hlr_raw_<name>`). */
    readonly download: (
      fileId: string,
      which: "clean" | "raw"
    ) => Effect.Effect<FileDownload, NotFound | ValidationError | NotConfigured | StorageError | DatabaseError>
    /** The job handler (`hlr.run`); resumes the stored batch. */
    readonly runJob: (job: RunningJob) => Effect.Effect<HlrJobResult, HlrRunError>
  }
>()("@optimizer/core/hlr/Hlr") {
  static readonly layerNoDeps = Layer.effect(
    Hlr,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const settings = yield* AppConfig
      const jobs = yield* Jobs
      const files = yield* FileStore
      const client = yield* HlrClient
      const context = yield* Effect.context<PgBulk | FileStore | Lists | RiskyOperators>()
      const db = Effect.mapError((cause: unknown) => toDatabaseError(cause))
      const decodeOne = decodeOptionalRow(HlrRow)

      const find = (id: string): Effect.Effect<Option.Option<HlrRow>, DatabaseError> =>
        isFileId(id)
          ? sql`SELECT ${sql.unsafe(HLR_COLUMNS)} FROM uploaded_csv_files WHERE id = ${id}::uuid`.pipe(decodeOne)
          : Effect.succeed(Option.none())
      // Keys the product did not write (paths migrated from the original) are skipped, not fatal.
      const deleteStored = (key: string) =>
        files.delete(key).pipe(Effect.catchTag("ValidationError", () => Effect.void))
      /** A refused run's files, except those the row names (another attempt of the same run finished). */
      const discardRunFiles = (id: string, keys: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          const row = yield* find(id)
          const named = Option.isSome(row) ? [row.value.hlr_raw_file_path, row.value.hlr_result_file_path] : []
          yield* Effect.forEach(
            keys.filter((key) => !named.includes(key)),
            deleteStored,
            { discard: true }
          )
        })
      const get = (id: string) =>
        find(id).pipe(
          Effect.flatMap((row) =>
            Option.isSome(row) ? Effect.succeed(row.value) : Effect.fail(new NotFound({ message: NOT_FOUND }))
          )
        )

      /** Active runs whose job can no longer finish them become `failed`. */
      const reconcile = sql`
        UPDATE uploaded_csv_files f SET hlr_status = 'failed', lock_owner = NULL,
          hlr_error_message = coalesce(f.hlr_error_message, CASE
            WHEN j.job_id IS NULL THEN 'the HLR job was never queued'
            WHEN j.state = 'completed' THEN 'the HLR job finished without completing the run'
            ELSE coalesce(j.error, 'the HLR job ' || j.state) END)
        FROM uploaded_csv_files f2 LEFT JOIN job_status j ON j.job_id = f2.hlr_job_id
        WHERE f.id = f2.id AND f.hlr_status IN ('uploading', 'processing') AND (
          j.state IN ('failed', 'cancelled', 'completed')
          OR (f2.hlr_job_id IS NULL AND f2.hlr_started_at < now() - interval '10 minutes'))`.pipe(Effect.asVoid, db)

      const failRun = (id: string, run: Date, message: string) =>
        sql`
          UPDATE uploaded_csv_files SET hlr_status = 'failed', hlr_error_message = ${message.slice(0, 2000)},
            lock_owner = NULL
          WHERE id = ${id}::uuid AND hlr_started_at = ${run} AND hlr_status IN ('uploading', 'processing')`.pipe(
          Effect.asVoid,
          db
        )

      const start = Effect.fn("Hlr.start")(function* (fileId: string) {
        yield* requireIntegration("HLR", settings.hlr)
        if (!isFileId(fileId)) return yield* new NotFound({ message: NOT_FOUND })
        yield* reconcile
        const marked = yield* sql<{ run: Date; previous_result: string | null }>`
          UPDATE uploaded_csv_files f SET hlr_status = 'uploading', hlr_started_at = date_trunc('milliseconds', now()),
            hlr_batch_id = NULL, hlr_result_file_path = NULL, hlr_completed_at = NULL, hlr_num_items = NULL,
            hlr_num_complete = NULL, hlr_error_message = NULL, hlr_job_id = NULL, lock_owner = 'hlr'
          FROM uploaded_csv_files before
          WHERE f.id = ${fileId}::uuid AND before.id = f.id AND f.status = 'processed'
            AND (f.hlr_status IS NULL OR f.hlr_status IN ('failed', 'complete'))
          RETURNING f.hlr_started_at AS run, before.hlr_result_file_path AS previous_result`.pipe(
          Effect.catch((error) =>
            Effect.fail(isUniqueViolation(error) ? new Conflict({ message: CONFLICT }) : toDatabaseError(error))
          )
        )
        const run = marked[0]?.run
        // The previous run's clean file is no longer named by the row: nothing can download it.
        const previousResult = marked[0]?.previous_result
        if (previousResult != null) {
          yield* deleteStored(previousResult).pipe(
            Effect.catch((error) => Effect.logWarning("could not delete the previous HLR clean file", error.message))
          )
        }
        if (run === undefined) {
          const row = yield* get(fileId)
          return yield* row.hlr_status !== null && ACTIVE.includes(row.hlr_status)
            ? new Conflict({ message: CONFLICT })
            : new ValidationError({ message: NOT_ELIGIBLE, field: "file_id" })
        }
        const jobId = yield* jobs
          .enqueue(
            HLR_QUEUE,
            { file_id: fileId, run: run.toISOString() },
            // No singleton key: the unique index already allows one active run, and each run has its marker.
            { retryLimit: HLR_RETRY_LIMIT }
          )
          .pipe(
            Effect.tapError((error) =>
              failRun(fileId, run, `could not queue the HLR job: ${publicMessage(error)}`).pipe(Effect.ignore)
            )
          )
        yield* sql`UPDATE uploaded_csv_files SET hlr_job_id = ${jobId}::uuid
          WHERE id = ${fileId}::uuid AND hlr_started_at = ${run}`.pipe(db)
        yield* Effect.logInfo("HLR run queued").pipe(Effect.annotateLogs({ file_id: fileId, job_id: jobId }))
        return { ok: true as const, file_id: fileId, hlr_status: "processing" as const, job_id: jobId }
      })

      const status = Effect.fn("Hlr.status")(function* (fileId: string) {
        yield* requireIntegration("HLR", settings.hlr)
        yield* reconcile.pipe(Effect.catch((e) => Effect.logWarning("could not reconcile HLR runs", e.message)))
        const row = yield* get(fileId)
        const job = row.hlr_job_id === null ? Option.none() : yield* jobs.get(row.hlr_job_id)
        return {
          file_id: row.id,
          hlr_status: row.hlr_status,
          hlr_batch_id: row.hlr_batch_id,
          hlr_result_file_path: row.hlr_result_file_path,
          hlr_started_at: row.hlr_started_at,
          hlr_completed_at: row.hlr_completed_at,
          hlr_num_items: row.hlr_num_items,
          hlr_num_complete: row.hlr_num_complete,
          hlr_error_message: row.hlr_error_message,
          hlr_raw_file_path: row.hlr_raw_file_path,
          job_id: row.hlr_job_id,
          result: Option.isSome(job) ? (job.value.result ?? null) : null
        }
      })

      const download = Effect.fn("Hlr.download")(function* (fileId: string, which: "clean" | "raw") {
        yield* requireIntegration("HLR", settings.hlr)
        const row = yield* get(fileId)
        const key =
          which === "clean" ? (row.hlr_status === "complete" ? row.hlr_result_file_path : null) : row.hlr_raw_file_path
        if (key === null) {
          return yield* new ValidationError({
            message: which === "clean" ? "HLR not complete yet" : "Raw HLR file not available",
            field: "file_id"
          })
        }
        const body = yield* files.webStream(key).pipe(
          Effect.catchTag("NotFound", () =>
            Effect.fail(
              new NotFound({ message: which === "clean" ? "HLR result file missing on disk" : "Raw HLR file missing" })
            )
          ),
          Effect.catchTag("ValidationError", (e) =>
            Effect.fail(new StorageError({ message: `bad stored key: ${e.message}` }))
          )
        )
        return {
          filename: `${which === "clean" ? "hlr_" : "hlr_raw_"}${row.original_filename}`,
          body
        }
      })

      // --- the job ------------------------------------------------------------------------------

      /** Fenced UPDATE of the run; false when the run is no longer the file's active one. */
      const updateRun = (fileId: string, run: Date, set: Statement.Fragment) =>
        sql`UPDATE uploaded_csv_files SET ${set}
          WHERE id = ${fileId}::uuid AND hlr_started_at = ${run} AND hlr_status IN ('uploading', 'processing')
          RETURNING id`.pipe(
          Effect.map((rows) => rows.length > 0),
          db
        )

      const submit = (fileId: string, run: Date, batchId: string, source: { csv: Uint8Array; count: number }) =>
        Effect.gen(function* () {
          yield* client.uploadSource(batchId, source.csv)
          yield* client.startBatch(batchId)
          return yield* updateRun(
            fileId,
            run,
            sql`hlr_status = 'processing', hlr_num_items = ${source.count}, hlr_num_complete = 0`
          )
        })

      const poll = (job: RunningJob, fileId: string, run: Date, batchId: string, everyS: number, maxS: number) =>
        Effect.gen(function* () {
          const deadline = run.getTime() + maxS * 1000
          for (;;) {
            const batch = yield* client.status(batchId)
            const items = batch.numItems
            const done = batch.numComplete
            yield* sql`UPDATE uploaded_csv_files SET
                hlr_num_items = coalesce(${items}, hlr_num_items), hlr_num_complete = coalesce(${done}, hlr_num_complete)
              WHERE id = ${fileId}::uuid AND hlr_started_at = ${run}`.pipe(db)
            if (items !== null && done !== null) yield* job.progress(done, items)
            if (isBatchComplete(batch.status)) return batch
            if (Date.now() + everyS * 1000 > deadline) {
              return yield* new UpstreamError({
                service: "hlrlookup",
                retryable: false,
                message: "HLR polling timed out"
              })
            }
            yield* Effect.sleep(Duration.seconds(everyS))
          }
        })

      /**
       * The results applied as they download, in one read of the body: each chunk goes to the raw
       * file's writer and to the pass (the pass pulls; the chunk's write runs while the pass parses
       * it and is awaited before the next chunk is read, so a slow store slows the pass and nothing
       * piles up). The raw file appears under its key only once the apply succeeded and the body was
       * read to its end; a failure (the download broken off, the apply) aborts it, and the job's
       * retry downloads the same batch again (`HlrClient.results` never retries a body it handed on).
       */
      const downloadAndApply = <E, R>(
        batchId: string,
        rawKey: string,
        apply: (results: AsyncIterable<Uint8Array>) => Effect.Effect<HlrApplyResult, E, R>
      ) =>
        Effect.scoped(
          Effect.gen(function* () {
            const body = yield* client.results(batchId)
            // Aborted when the scope closes unless closed before (nothing half written under the key).
            const raw = yield* files.openWriter(rawKey, { contentType: "text/csv" })
            let ended = false
            const tee = (async function* () {
              for await (const chunk of body) {
                // Handed over, not copied: the body's chunks are fresh, and the pass only reads them.
                const written = raw.write(chunk, { handOver: true })
                written.catch(() => undefined) // awaited below; this only keeps it from being "unhandled" meanwhile
                yield chunk
                await written
              }
              ended = true
            })()
            const counts = yield* apply(tee)
            if (!ended) {
              return yield* new StorageError({ message: "the HLR results were not read to their end" })
            }
            yield* Effect.tryPromise({
              try: () => raw.close(),
              catch: (cause) =>
                cause instanceof StorageError
                  ? cause
                  : new StorageError({ message: `could not store the HLR raw results: ${String(cause)}` })
            })
            return counts
          })
        )

      const work = (job: RunningJob, fileId: string, run: Date, row: HlrRow) =>
        Effect.gen(function* () {
          const hlr = yield* requireIntegration("HLR", settings.hlr)
          const numbersKey = row.processed_file_path
          if (numbersKey === null) {
            return yield* new ValidationError({
              message: "the file has no processed output to check",
              field: "file_id"
            })
          }
          const skipped = (reason: string): HlrJobResult => ({ file_id: fileId, status: "skipped", reason })
          let batchId = row.hlr_batch_id
          let sent = row.hlr_num_items ?? 0
          if (batchId === null) {
            const source = yield* numbersToSend(numbersKey, hlr.cacheDays).pipe(Effect.provide(context))
            sent = source.count
            if (source.count > 0) {
              const created = yield* client.createBatch(`${fileId}.csv`)
              // Stored before anything else: a retry resumes this batch instead of creating another.
              if (!(yield* updateRun(fileId, run, sql`hlr_batch_id = ${created}`))) {
                return skipped("the run is no longer active")
              }
              batchId = created
              if (!(yield* submit(fileId, run, created, source))) return skipped("the run is no longer active")
            }
          } else if (row.hlr_status === "uploading") {
            const batch = yield* client.status(batchId)
            if (batch.status === "NEW" || batch.status === "") {
              const source = yield* numbersToSend(numbersKey, hlr.cacheDays).pipe(Effect.provide(context))
              sent = source.count
              if (!(yield* submit(fileId, run, batchId, source))) return skipped("the run is no longer active")
            } else if (!(yield* updateRun(fileId, run, sql`hlr_status = 'processing'`))) {
              return skipped("the run is no longer active")
            }
          }
          const keys = storage(fileId, run)
          let counts: HlrApplyResult
          const apply = (results: AsyncIterable<Uint8Array> | null) =>
            applyHlrResults({ fileId, results, numbersKey, cleanKey: keys.clean, actor: `hlr:${fileId}` }).pipe(
              Effect.provide(context)
            )
          if (batchId === null) {
            counts = yield* apply(null)
          } else {
            const done = yield* poll(job, fileId, run, batchId, hlr.pollEverySeconds, hlr.pollMaxSeconds)
            sent = done.numItems ?? sent
            counts = yield* downloadAndApply(batchId, keys.raw, apply)
            // The run's raw results (whole: the writer closed) replace the earlier run's, kept until now for `/hlr/raw`.
            const stored = yield* sql<{ previous: string | null }>`
              UPDATE uploaded_csv_files f SET hlr_raw_file_path = ${keys.raw}
              FROM uploaded_csv_files before
              WHERE f.id = ${fileId}::uuid AND before.id = f.id AND f.hlr_started_at = ${run}
              RETURNING before.hlr_raw_file_path AS previous`.pipe(db)
            const previous = stored[0]?.previous
            if (previous != null && previous !== keys.raw) yield* deleteStored(previous)
          }
          const finished = yield* sql`
            UPDATE uploaded_csv_files SET hlr_status = 'complete', hlr_result_file_path = ${keys.clean},
              hlr_completed_at = now(), lock_owner = NULL, hlr_error_message = NULL
            WHERE id = ${fileId}::uuid AND hlr_started_at = ${run} AND hlr_status IN ('uploading', 'processing')
            RETURNING id`.pipe(db)
          if (finished.length === 0) {
            yield* discardRunFiles(fileId, [keys.raw, keys.clean])
            return skipped("the run is no longer active")
          }
          yield* Effect.logInfo("HLR run complete").pipe(
            Effect.annotateLogs({ file_id: fileId, batch_id: batchId ?? "none", sent, reused: counts.reused })
          )
          return { file_id: fileId, status: "complete" as const, batch_id: batchId, sent, counts }
        })

      const runJob = Effect.fn("Hlr.runJob")(function* (job: RunningJob) {
        const fileId = typeof job.data.file_id === "string" ? job.data.file_id : ""
        const run = new Date(typeof job.data.run === "string" ? job.data.run : Number.NaN)
        const found = yield* find(fileId)
        if (
          Option.isNone(found) ||
          found.value.hlr_started_at?.getTime() !== run.getTime() ||
          found.value.hlr_status === null ||
          !ACTIVE.includes(found.value.hlr_status)
        ) {
          return { file_id: fileId, status: "skipped" as const, reason: "the run is no longer active" }
        }
        return yield* work(job, fileId, run, found.value).pipe(
          Effect.tap((result) =>
            Effect.sync(() => {
              if (result.status === "complete" && result.counts !== undefined) {
                recordRun("hlr", result.counts.results + result.counts.reused + result.counts.missing)
              }
            })
          ),
          Effect.tapError((error) =>
            isFinalAttempt(job, error, HLR_RETRY_LIMIT)
              ? failRun(fileId, run, publicMessage(error)).pipe(Effect.ignore)
              : Effect.logWarning("HLR attempt failed; it will be retried", failureMessage(error))
          )
        )
      })

      return Hlr.of({ start, status, download, runJob })
    })
  )

  static readonly layer = Hlr.layerNoDeps.pipe(
    Layer.provide(Layer.mergeAll(HlrClient.layer, Lists.layer, RiskyOperators.layer))
  )
}
