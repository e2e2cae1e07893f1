/**
 * The rows of the cleaning flow: `uploaded_csv_files` (one per uploaded list, its status machine
 * and the FileStore keys of its files) and `csv_processing_stats` (the result counts), with the
 * original's column names (docs/original-api.md). The numbers themselves never pass through here:
 * the pipeline (`CleaningPipeline.ts`) works on them with COPY and set-based SQL.
 *
 * A run's writes are fenced by its run marker, `processing_started_at` (see `platform/FileJobs.ts`).
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { decodeOptionalRow, decodeRows, toDatabaseError } from "../platform/Database.ts"
import type { DatabaseError } from "../platform/Errors.ts"
import { isFileId } from "../platform/FileJobs.ts"
import type { CleaningCounts } from "./CleaningPipeline.ts"

export type FileStatus = "uploaded" | "processing" | "processed" | "failed" | "archived"

/** An item of `GET /files`: exactly the original's keys (docs/original-api.md). */
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

export const FILE_COLUMNS = `id::text AS id, original_filename, status, record_count_total, record_count_clean, uploaded_at,
  processing_started_at, processed_at, error_message, hlr_status, hlr_batch_id, hlr_started_at, hlr_completed_at,
  hlr_num_items, hlr_num_complete, hlr_error_message, hlr_raw_file_path, raw_file_path, processed_file_path,
  rejects_file_path, annotated_file_path, hlr_result_file_path, lock_owner, job_id::text AS job_id,
  progress_processed::float8 AS progress_processed, progress_total::float8 AS progress_total, options,
  phone_metadata_version`

export const NOT_ELIGIBLE = "File not found or not eligible for processing"

const Nullable = <S extends Schema.Top>(schema: S) => Schema.NullOr(schema)

/** A row of `uploaded_csv_files` as `FILE_COLUMNS` selects it. */
export const CleaningFileRow = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  status: Schema.Literals(["uploaded", "processing", "processed", "failed", "archived"]),
  record_count_total: Nullable(Schema.Number),
  record_count_clean: Nullable(Schema.Number),
  uploaded_at: Schema.Date,
  processing_started_at: Nullable(Schema.Date),
  processed_at: Nullable(Schema.Date),
  error_message: Nullable(Schema.String),
  hlr_status: Nullable(Schema.String),
  hlr_batch_id: Nullable(Schema.String),
  hlr_started_at: Nullable(Schema.Date),
  hlr_completed_at: Nullable(Schema.Date),
  hlr_num_items: Nullable(Schema.Number),
  hlr_num_complete: Nullable(Schema.Number),
  hlr_error_message: Nullable(Schema.String),
  hlr_raw_file_path: Nullable(Schema.String),
  raw_file_path: Nullable(Schema.String),
  processed_file_path: Nullable(Schema.String),
  rejects_file_path: Nullable(Schema.String),
  annotated_file_path: Nullable(Schema.String),
  hlr_result_file_path: Nullable(Schema.String),
  lock_owner: Nullable(Schema.String),
  job_id: Nullable(Schema.String),
  progress_processed: Nullable(Schema.Number),
  progress_total: Nullable(Schema.Number),
  options: Nullable(Schema.Record(Schema.String, Schema.Unknown)),
  phone_metadata_version: Nullable(Schema.String)
})

const StatsRow = Schema.Struct({
  file_id: Schema.String,
  total_records: Schema.Number,
  removed_blacklist: Schema.Number,
  removed_monitor: Schema.Number,
  removed_conversion: Schema.Number,
  removed_maindatabase: Schema.Number,
  final_clean_count: Schema.Number,
  created_at: Schema.Date,
  removed_duplicates: Schema.Number,
  removed_invalid: Schema.Number,
  phone_metadata_version: Nullable(Schema.String)
})

export interface FinishedRun {
  readonly counts: CleaningCounts
  readonly processedKey: string
  readonly rejectsKey: string | null
  readonly annotatedKey: string | null
  readonly phoneMetadataVersion: string
}

/**
 * What only cleaning writes; the rest of a file's life (start, runs, archive, delete) is the shared
 * file-job workflow (`platform/FileJobs.ts`) on `uploaded_csv_files`.
 */
export class CleaningRepository extends Context.Service<
  CleaningRepository,
  {
    readonly insertUploaded: (row: {
      readonly id: string
      readonly originalFilename: string
      readonly rawKey: string
      readonly lines: number
    }) => Effect.Effect<CleaningFile, DatabaseError>
    /** Stats and `processed` in one statement; false when the run is no longer the file's current one. */
    readonly finishRun: (id: string, run: Date, result: FinishedRun) => Effect.Effect<boolean, DatabaseError>
    readonly stats: (id: string) => Effect.Effect<Option.Option<CleaningStats>, DatabaseError>
  }
>()("@optimizer/core/cleaning/CleaningRepository") {
  static readonly layer = Layer.effect(
    CleaningRepository,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const insertUploaded = Effect.fn("CleaningRepository.insertUploaded")(function* (row: {
        readonly id: string
        readonly originalFilename: string
        readonly rawKey: string
        readonly lines: number
      }) {
        const [inserted] = yield* sql`
          INSERT INTO uploaded_csv_files (id, original_filename, raw_file_path, status, record_count_total)
          VALUES (${row.id}::uuid, ${row.originalFilename}, ${row.rawKey}, 'uploaded', ${row.lines})
          RETURNING ${sql.unsafe(FILE_COLUMNS)}`.pipe(decodeRows(CleaningFileRow))
        return inserted!
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

      const stats = Effect.fn("CleaningRepository.stats")(function* (id: string) {
        if (!isFileId(id)) return Option.none<CleaningStats>()
        return yield* sql`
          SELECT s.file_id::text AS file_id, s.total_records, s.removed_blacklist, s.removed_monitor,
            s.removed_conversion, s.removed_maindatabase, s.final_clean_count, s.created_at,
            s.removed_duplicates, s.removed_invalid, f.phone_metadata_version
          FROM csv_processing_stats s JOIN uploaded_csv_files f ON f.id = s.file_id
          WHERE s.file_id = ${id}::uuid`.pipe(decodeOptionalRow(StatsRow))
      })

      return CleaningRepository.of({ insertUploaded, finishRun, stats })
    })
  )
}
