/**
 * The HLR run's shapes: a file's `hlr_status` values, the `uploaded_csv_files` columns a run reads
 * (`HlrRow`), and what `Hlr.ts`'s operations answer (the original's keys).
 */
import { Schema } from "effect"
import type {
  DatabaseError,
  NotFound,
  PayloadTooLarge,
  StorageError,
  UnreadableFile,
  ValidationError
} from "../platform/Errors.ts"
import type { HlrError } from "./HlrClient.ts"
import type { HlrApplyResult } from "./HlrResults.ts"

/**
 * A file's `hlr_status` (null before its first run): `uploading` while the numbers are sent, then
 * `processing` until the results are applied (`complete`) or the run gives up (`failed`).
 */
export const HLR_STATUSES = ["uploading", "processing", "complete", "failed"] as const
export type HlrStatusName = (typeof HLR_STATUSES)[number]

const Nullable = <S extends Schema.Top>(schema: S) => Schema.NullOr(schema)
export const HlrRow = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  status: Schema.String,
  processed_file_path: Nullable(Schema.String),
  hlr_status: Nullable(Schema.String),
  hlr_batch_id: Nullable(Schema.String),
  hlr_result_file_path: Nullable(Schema.String),
  hlr_raw_file_path: Nullable(Schema.String),
  hlr_started_at: Nullable(Schema.Date),
  hlr_completed_at: Nullable(Schema.Date),
  hlr_num_items: Nullable(Schema.Number),
  hlr_num_complete: Nullable(Schema.Number),
  hlr_error_message: Nullable(Schema.String),
  hlr_job_id: Nullable(Schema.String)
})
export type HlrRow = typeof HlrRow.Type
export const HLR_COLUMNS = `id::text AS id, original_filename, status, processed_file_path, hlr_status, hlr_batch_id,
  hlr_result_file_path, hlr_raw_file_path, hlr_started_at, hlr_completed_at, hlr_num_items, hlr_num_complete,
  hlr_error_message, hlr_job_id::text AS hlr_job_id`

/** `POST /{file_id}/hlr`'s answer: the original's keys plus the job. */
export interface HlrStarted {
  readonly ok: true
  readonly file_id: string
  readonly hlr_status: "processing"
  readonly job_id: string
}

/** `GET /{file_id}/hlr`: the original's keys, plus the job and the last run's counts. */
export interface HlrStatus {
  readonly file_id: string
  readonly hlr_status: string | null
  readonly hlr_batch_id: string | null
  readonly hlr_result_file_path: string | null
  readonly hlr_started_at: Date | null
  readonly hlr_completed_at: Date | null
  readonly hlr_num_items: number | null
  readonly hlr_num_complete: number | null
  readonly hlr_error_message: string | null
  readonly hlr_raw_file_path: string | null
  readonly job_id: string | null
  /** The completed run's counts (`HlrJobResult`), null before. */
  readonly result: unknown
}

export interface HlrJobResult {
  readonly file_id: string
  readonly status: "complete" | "skipped"
  readonly reason?: string
  readonly batch_id?: string | null
  /** Numbers sent to the provider in the batch (0 when every number came from the cache). */
  readonly sent?: number
  readonly counts?: HlrApplyResult
}

export type HlrRunError =
  HlrError | ValidationError | NotFound | UnreadableFile | PayloadTooLarge | DatabaseError | StorageError
