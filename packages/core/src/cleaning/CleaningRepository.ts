/**
 * The rows of the cleaning flow: `uploaded_csv_files` (one per uploaded list, its status machine
 * and the FileStore keys of its files) and `csv_processing_stats` (the result counts), with the
 * original's column names (ORIGINAL.md §2.4). The numbers themselves never pass through here: the
 * pipeline (`CleaningPipeline.ts`) works on them with COPY and set-based SQL.
 *
 * A processing run is identified by the file's `processing_started_at` (millisecond precision, so
 * it survives a round trip through a JS Date): every write of a run is fenced by it, so a stale
 * run — a worker presumed dead that was only slow, a job of an earlier run — can never overwrite
 * the state of the current one.
 */
import { Context, Effect, Layer, Option } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { toDatabaseError } from "../platform/Database.ts"
import { Conflict, NotFound, ValidationError, type DatabaseError } from "../platform/Errors.ts"
import type { CleaningCounts } from "./CleaningPipeline.ts"

export type FileStatus = "uploaded" | "processing" | "processed" | "failed" | "archived"

/** An item of `GET /files`: exactly the original's keys (ORIGINAL.md §1.4 item 8). */
export interface CleaningFileItem {
  readonly id: string
  readonly original_filename: string
  readonly status: FileStatus
  readonly record_count_total: number | null
  readonly record_count_clean: number | null
  readonly uploaded_at: Date
  readonly processing_started_at: Date | null
  readonly processed_at: Date | null
  readonly error_message: string | null
  readonly hlr_status: string | null
  readonly hlr_batch_id: string | null
  readonly hlr_started_at: Date | null
  readonly hlr_completed_at: Date | null
  readonly hlr_num_items: number | null
  readonly hlr_num_complete: number | null
  readonly hlr_error_message: string | null
  readonly hlr_raw_file_path: string | null
}

/** The whole row, as the service and the CLI see it. */
export interface CleaningFile extends CleaningFileItem {
  readonly raw_file_path: string | null
  readonly processed_file_path: string | null
  readonly rejects_file_path: string | null
  readonly annotated_file_path: string | null
  readonly hlr_result_file_path: string | null
  readonly lock_owner: string | null
  readonly job_id: string | null
  readonly progress_processed: number | null
  readonly progress_total: number | null
  readonly options: Record<string, unknown> | null
  readonly phone_metadata_version: string | null
}

/** `GET /{file_id}/stats`: the original's keys plus the new ones. */
export interface CleaningStats extends CleaningCounts {
  readonly file_id: string
  readonly created_at: Date
  readonly phone_metadata_version: string | null
}

export const ITEM_KEYS: ReadonlyArray<keyof CleaningFileItem> = [
  "id",
  "original_filename",
  "status",
  "record_count_total",
  "record_count_clean",
  "uploaded_at",
  "processing_started_at",
  "processed_at",
  "error_message",
  "hlr_status",
  "hlr_batch_id",
  "hlr_started_at",
  "hlr_completed_at",
  "hlr_num_items",
  "hlr_num_complete",
  "hlr_error_message",
  "hlr_raw_file_path"
]

const FILE_COLUMNS = `id::text AS id, original_filename, status, record_count_total, record_count_clean, uploaded_at,
  processing_started_at, processed_at, error_message, hlr_status, hlr_batch_id, hlr_started_at, hlr_completed_at,
  hlr_num_items, hlr_num_complete, hlr_error_message, hlr_raw_file_path, raw_file_path, processed_file_path,
  rejects_file_path, annotated_file_path, hlr_result_file_path, lock_owner, job_id::text AS job_id,
  progress_processed::float8 AS progress_processed, progress_total::float8 AS progress_total, options,
  phone_metadata_version`

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const isFileId = (id: string): boolean => typeof id === "string" && UUID.test(id)

export const NOT_ELIGIBLE = "File not found or not eligible for processing"

const isUniqueViolation = (error: SqlError.SqlError): boolean =>
  (error as { reason?: { _tag?: string } }).reason?._tag === "UniqueViolation"

export interface FinishedRun {
  readonly counts: CleaningCounts
  readonly processedKey: string
  readonly rejectsKey: string | null
  readonly annotatedKey: string | null
  readonly phoneMetadataVersion: string
}

export class CleaningRepository extends Context.Service<
  CleaningRepository,
  {
    readonly insertUploaded: (row: {
      readonly id: string
      readonly originalFilename: string
      readonly rawKey: string
      readonly lines: number
    }) => Effect.Effect<CleaningFile, DatabaseError>
    readonly find: (id: string) => Effect.Effect<Option.Option<CleaningFile>, DatabaseError>
    /** Newest first; all statuses when `statuses` is empty. */
    readonly list: (statuses: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<CleaningFile>, DatabaseError>
    /**
     * `uploaded`/`failed` → `processing` with a new run identity; `Conflict` when another file is
     * processing (the partial unique index `one_processing_file_only`) or this one already is;
     * `NotFound` / `ValidationError` otherwise.
     */
    readonly markProcessing: (
      id: string,
      options: Record<string, unknown>
    ) => Effect.Effect<CleaningFile, DatabaseError | Conflict | NotFound | ValidationError>
    /** Records the job of a run (fenced by the run). */
    readonly setJob: (id: string, run: Date, jobId: string) => Effect.Effect<void, DatabaseError>
    readonly progress: (id: string, run: Date, processed: number, total: number) => Effect.Effect<void, DatabaseError>
    /** Stats and `processed` in one statement; false when the run is no longer the file's current one. */
    readonly finishRun: (id: string, run: Date, result: FinishedRun) => Effect.Effect<boolean, DatabaseError>
    /** `processing` → `failed` with the message (fenced by the run). */
    readonly failRun: (id: string, run: Date, message: string) => Effect.Effect<void, DatabaseError>
    /**
     * Rows left `processing` by a job that can no longer finish them (failed or cancelled job, a job
     * that completed without finishing the row, a run whose job was never queued) become `failed`.
     */
    readonly reconcile: Effect.Effect<number, DatabaseError>
    readonly stats: (id: string) => Effect.Effect<Option.Option<CleaningStats>, DatabaseError>
    readonly archive: (id: string) => Effect.Effect<void, DatabaseError | NotFound | Conflict>
    /** Deletes the row (its stats go with it: ON DELETE CASCADE); returns it so its files can be deleted. */
    readonly remove: (id: string) => Effect.Effect<CleaningFile, DatabaseError | NotFound | Conflict>
  }
>()("@optimizer/core/cleaning/CleaningRepository") {
  static readonly layer = Layer.effect(
    CleaningRepository,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const fileRows = (rows: ReadonlyArray<Record<string, unknown>>): Array<CleaningFile> =>
        rows as unknown as Array<CleaningFile>

      const insertUploaded = Effect.fn("CleaningRepository.insertUploaded")(function* (row: {
        readonly id: string
        readonly originalFilename: string
        readonly rawKey: string
        readonly lines: number
      }) {
        const rows = yield* sql<Record<string, unknown>>`
          INSERT INTO uploaded_csv_files (id, original_filename, raw_file_path, status, record_count_total)
          VALUES (${row.id}::uuid, ${row.originalFilename}, ${row.rawKey}, 'uploaded', ${row.lines})
          RETURNING ${sql.unsafe(FILE_COLUMNS)}`.pipe(Effect.mapError(toDatabaseError))
        return fileRows(rows)[0]!
      })

      const find = Effect.fn("CleaningRepository.find")(function* (id: string) {
        if (!isFileId(id)) return Option.none<CleaningFile>()
        const rows = yield* sql<Record<string, unknown>>`
          SELECT ${sql.unsafe(FILE_COLUMNS)} FROM uploaded_csv_files WHERE id = ${id}::uuid`.pipe(
          Effect.mapError(toDatabaseError)
        )
        return Option.fromNullishOr(fileRows(rows)[0])
      })

      const list = Effect.fn("CleaningRepository.list")(function* (statuses: ReadonlyArray<string>) {
        const rows = yield* (
          statuses.length === 0
            ? sql<Record<string, unknown>>`
                SELECT ${sql.unsafe(FILE_COLUMNS)} FROM uploaded_csv_files ORDER BY uploaded_at DESC`
            : sql<Record<string, unknown>>`
                SELECT ${sql.unsafe(FILE_COLUMNS)} FROM uploaded_csv_files
                WHERE status IN ${sql.in(statuses)} ORDER BY uploaded_at DESC`
        ).pipe(Effect.mapError(toDatabaseError))
        return fileRows(rows)
      })

      const markProcessing = Effect.fn("CleaningRepository.markProcessing")(function* (
        id: string,
        options: Record<string, unknown>
      ) {
        if (!isFileId(id)) return yield* new NotFound({ message: NOT_ELIGIBLE })
        const updated = yield* sql<Record<string, unknown>>`
          UPDATE uploaded_csv_files SET
            status = 'processing',
            processing_started_at = date_trunc('milliseconds', now()),
            processed_at = NULL,
            error_message = NULL,
            lock_owner = 'api',
            options = ${JSON.stringify(options)}::jsonb,
            job_id = NULL,
            progress_processed = 0,
            progress_total = record_count_total,
            processed_file_path = NULL,
            rejects_file_path = NULL,
            annotated_file_path = NULL,
            record_count_clean = NULL
          WHERE id = ${id}::uuid AND status IN ('uploaded', 'failed')
          RETURNING ${sql.unsafe(FILE_COLUMNS)}`.pipe(
          Effect.catch((error): Effect.Effect<never, Conflict | DatabaseError> =>
            isUniqueViolation(error)
              ? Effect.fail(new Conflict({ message: "Another file is already processing" }))
              : Effect.fail(toDatabaseError(error))
          )
        )
        const row = fileRows(updated)[0]
        if (row !== undefined) return row
        const existing = yield* find(id)
        if (Option.isNone(existing)) return yield* new NotFound({ message: NOT_ELIGIBLE })
        if (existing.value.status === "processing") {
          return yield* new Conflict({ message: "Another file is already processing: this one" })
        }
        return yield* new ValidationError({
          message: `${NOT_ELIGIBLE} (its status is ${existing.value.status})`,
          field: "file_id"
        })
      })

      const setJob = Effect.fn("CleaningRepository.setJob")(function* (id: string, run: Date, jobId: string) {
        yield* sql`
          UPDATE uploaded_csv_files SET job_id = ${jobId}::uuid
          WHERE id = ${id}::uuid AND processing_started_at = ${run} AND status = 'processing'`.pipe(
          Effect.mapError(toDatabaseError)
        )
      })

      const progress = Effect.fn("CleaningRepository.progress")(function* (
        id: string,
        run: Date,
        processed: number,
        total: number
      ) {
        yield* sql`
          UPDATE uploaded_csv_files SET progress_processed = ${processed}, progress_total = ${total}
          WHERE id = ${id}::uuid AND processing_started_at = ${run} AND status = 'processing'`.pipe(
          Effect.mapError(toDatabaseError)
        )
      })

      const finishRun = Effect.fn("CleaningRepository.finishRun")(function* (
        id: string,
        run: Date,
        result: FinishedRun
      ) {
        const c = result.counts
        const rows = yield* sql<{ file_id: string }>`
          WITH done AS (
            UPDATE uploaded_csv_files SET
              status = 'processed',
              processed_file_path = ${result.processedKey},
              rejects_file_path = ${result.rejectsKey},
              annotated_file_path = ${result.annotatedKey},
              record_count_total = ${c.total_records},
              record_count_clean = ${c.final_clean_count},
              processed_at = now(),
              lock_owner = NULL,
              error_message = NULL,
              phone_metadata_version = ${result.phoneMetadataVersion},
              progress_processed = ${c.total_records},
              progress_total = ${c.total_records}
            WHERE id = ${id}::uuid AND processing_started_at = ${run} AND status = 'processing'
            RETURNING id
          )
          INSERT INTO csv_processing_stats (file_id, total_records, removed_blacklist, removed_monitor,
            removed_conversion, removed_maindatabase, final_clean_count, created_at, removed_duplicates, removed_invalid)
          SELECT id, ${c.total_records}, ${c.removed_blacklist}, ${c.removed_monitor}, ${c.removed_conversion},
            ${c.removed_maindatabase}, ${c.final_clean_count}, now(), ${c.removed_duplicates}, ${c.removed_invalid}
          FROM done
          ON CONFLICT (file_id) DO UPDATE SET
            total_records = EXCLUDED.total_records, removed_blacklist = EXCLUDED.removed_blacklist,
            removed_monitor = EXCLUDED.removed_monitor, removed_conversion = EXCLUDED.removed_conversion,
            removed_maindatabase = EXCLUDED.removed_maindatabase, final_clean_count = EXCLUDED.final_clean_count,
            created_at = now(), removed_duplicates = EXCLUDED.removed_duplicates,
            removed_invalid = EXCLUDED.removed_invalid
          RETURNING file_id::text AS file_id`.pipe(Effect.mapError(toDatabaseError))
        return rows.length > 0
      })

      const failRun = Effect.fn("CleaningRepository.failRun")(function* (id: string, run: Date, message: string) {
        yield* sql`
          UPDATE uploaded_csv_files SET status = 'failed', error_message = ${message.slice(0, 2000)}, lock_owner = NULL
          WHERE id = ${id}::uuid AND processing_started_at = ${run} AND status = 'processing'`.pipe(
          Effect.mapError(toDatabaseError)
        )
      })

      const reconcile = sql<{ id: string }>`
        UPDATE uploaded_csv_files f SET
          status = 'failed',
          lock_owner = NULL,
          error_message = coalesce(f.error_message, CASE
            WHEN j.job_id IS NULL THEN 'the processing job was never queued'
            WHEN j.state = 'completed' THEN 'the processing job finished without completing the file'
            ELSE coalesce(j.error, 'the processing job ' || j.state)
          END)
        FROM uploaded_csv_files f2
        LEFT JOIN job_status j ON j.job_id = f2.job_id
        WHERE f.id = f2.id AND f.status = 'processing' AND (
          j.state IN ('failed', 'cancelled', 'completed')
          OR (f2.job_id IS NULL AND f2.processing_started_at < now() - interval '10 minutes')
        )
        RETURNING f.id::text AS id`.pipe(
        Effect.map((rows) => rows.length),
        Effect.mapError(toDatabaseError),
        Effect.withSpan("CleaningRepository.reconcile")
      )

      const stats = Effect.fn("CleaningRepository.stats")(function* (id: string) {
        if (!isFileId(id)) return Option.none<CleaningStats>()
        const rows = yield* sql<Record<string, unknown>>`
          SELECT s.file_id::text AS file_id, s.total_records, s.removed_blacklist, s.removed_monitor,
            s.removed_conversion, s.removed_maindatabase, s.final_clean_count, s.created_at,
            s.removed_duplicates, s.removed_invalid, f.phone_metadata_version
          FROM csv_processing_stats s JOIN uploaded_csv_files f ON f.id = s.file_id
          WHERE s.file_id = ${id}::uuid`.pipe(Effect.mapError(toDatabaseError))
        return Option.fromNullishOr(rows[0] as CleaningStats | undefined)
      })

      const archive = Effect.fn("CleaningRepository.archive")(function* (id: string) {
        if (!isFileId(id)) return yield* new NotFound({ message: "File not found" })
        const rows = yield* sql<{ id: string }>`
          UPDATE uploaded_csv_files SET status = 'archived'
          WHERE id = ${id}::uuid AND status <> 'processing'
          RETURNING id::text AS id`.pipe(Effect.mapError(toDatabaseError))
        if (rows.length > 0) return
        const existing = yield* find(id)
        if (Option.isNone(existing)) return yield* new NotFound({ message: "File not found" })
        return yield* new Conflict({ message: "The file is processing: archive it once its run has finished" })
      })

      const remove = Effect.fn("CleaningRepository.remove")(function* (id: string) {
        if (!isFileId(id)) return yield* new NotFound({ message: "File not found" })
        const rows = yield* sql<Record<string, unknown>>`
          DELETE FROM uploaded_csv_files
          WHERE id = ${id}::uuid AND status <> 'processing'
            AND (hlr_status IS NULL OR hlr_status NOT IN ('uploading', 'processing'))
          RETURNING ${sql.unsafe(FILE_COLUMNS)}`.pipe(Effect.mapError(toDatabaseError))
        const row = fileRows(rows)[0]
        if (row !== undefined) return row
        const existing = yield* find(id)
        if (Option.isNone(existing)) return yield* new NotFound({ message: "File not found" })
        return yield* new Conflict({
          message:
            existing.value.status === "processing"
              ? "The file is processing: delete it once its run has finished"
              : "An HLR run is using the file: delete it once the run has finished"
        })
      })

      return CleaningRepository.of({
        insertUploaded,
        find,
        list,
        markProcessing,
        setJob,
        progress,
        finishRun,
        failRun,
        reconcile,
        stats,
        archive,
        remove
      })
    })
  )
}
