/**
 * CSV list cleaning (docs/original-api.md): upload, list, process as a job, stats, download,
 * archive, delete — the original's paths, parameters and response keys, with real status codes
 * (404 unknown file, 400 not processed yet, 409 another file processing, 413 too large, 422 not a
 * CSV) instead of the original's wrapped 500s.
 */
import { Effect, Schema } from "effect"
import { Cleaning, ITEM_KEYS, type AppServices, type CleaningFile } from "@optimizer/core"
import { fileRoutes, statusesOf } from "../fileRoutes.ts"
import { QueryBoolean, type Routes } from "../http.ts"
import { Count, FileStatus, HlrRunStatus, Null, Timestamp, Uploaded } from "../responses.ts"

const ProcessQuery = Schema.Struct({
  include_conversion: Schema.optionalKey(QueryBoolean),
  include_main_database: Schema.optionalKey(QueryBoolean),
  include_blacklist: Schema.optionalKey(QueryBoolean),
  include_monitor: Schema.optionalKey(QueryBoolean),
  country: Schema.optionalKey(Schema.String),
  phone_column: Schema.optionalKey(Schema.String),
  rejects: Schema.optionalKey(QueryBoolean),
  annotated: Schema.optionalKey(QueryBoolean)
})

const DownloadQuery = Schema.Struct({ kind: Schema.optionalKey(Schema.Literals(["default", "rejects", "annotated"])) })

/** A `/files` item: the original's keys (`ITEM_KEYS`, `CleaningFileItem` in core). */
const CleaningFileItem = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  status: FileStatus,
  record_count_total: Schema.NullOr(Count).annotate({
    description: "Non-blank lines at upload (header included); rows read once processed"
  }),
  record_count_clean: Schema.NullOr(Count).annotate({ description: "Numbers kept by the last run" }),
  uploaded_at: Timestamp,
  processing_started_at: Schema.NullOr(Timestamp),
  processed_at: Schema.NullOr(Timestamp),
  error_message: Schema.NullOr(Schema.String),
  hlr_status: HlrRunStatus,
  hlr_batch_id: Schema.NullOr(Schema.String),
  hlr_started_at: Schema.NullOr(Timestamp),
  hlr_completed_at: Schema.NullOr(Timestamp),
  hlr_num_items: Schema.NullOr(Count),
  hlr_num_complete: Schema.NullOr(Count),
  hlr_error_message: Schema.NullOr(Schema.String),
  hlr_raw_file_path: Schema.NullOr(Schema.String)
}).annotate({ identifier: "CleaningFileItem" })

/** `GET /{file_id}/stats` (`CleaningStats` in core). */
const CleaningStats = Schema.Struct({
  file_id: Schema.String,
  total_records: Count,
  removed_blacklist: Count,
  removed_monitor: Count,
  removed_conversion: Count,
  removed_maindatabase: Count,
  final_clean_count: Count,
  created_at: Timestamp,
  removed_duplicates: Count,
  removed_invalid: Count.annotate({ description: "Rows without a valid phone number" }),
  phone_metadata_version: Schema.NullOr(Schema.String).annotate({
    description: "The libphonenumber metadata the run validated numbers with"
  })
}).annotate({ identifier: "CleaningStats" })

/** A `/files` item: exactly the original's keys. */
const item = (file: CleaningFile) => Object.fromEntries(ITEM_KEYS.map((key) => [key, file[key]]))

export const cleaningRoutes = (routes: Routes<AppServices>) =>
  fileRoutes(routes, {
    tag: "cleaning",
    upload: {
      path: "/upload",
      summary: "Upload a list to clean (multipart field `file`; CSV, any delimiter, with or without a header)",
      description:
        "Stored as it is; record_count_total = the number of non-blank lines (header included). 413 above UPLOAD_MAX_BYTES; 422 for a binary, UTF-16 or empty file.",
      returns: '{"id", "original_filename", "status": "uploaded"}',
      response: Uploaded,
      run: (file, maxBytes) => Cleaning.use((cleaning) => cleaning.upload(file.filename, file.stream, { maxBytes }))
    },
    list: {
      path: "/files",
      summary: "Uploaded lists, newest first; ?status=a,b filters",
      description: "Progress of a running file: GET /jobs/{job_id} (processed / total rows).",
      returns: `{"items": [{${ITEM_KEYS.map((k) => `"${k}"`).join(", ")}}]}`,
      item: CleaningFileItem,
      run: (status) =>
        statusesOf(status).pipe(
          Effect.flatMap((statuses) => Cleaning.use((cleaning) => cleaning.list(statuses))),
          Effect.map((files) => files.map(item))
        )
    },
    process: {
      path: "/:file_id/process",
      summary: "Clean a list as a job against the chosen lists",
      description:
        "include_blacklist, include_monitor, include_conversion, include_main_database (filter against main_database and add the kept numbers to it), all false by default; country: ISO2 default for national numbers (a country/country_code column wins per row); phone_column: header name or 1-based position (default: found by name or content); rejects, annotated: also write those files (GET /{file_id}/download?kind=…). 409 while another file is processing; 400 when the file is not uploaded/failed.",
      query: ProcessQuery,
      returns: '{"ok": true, "file_id", "status": "processing", "job_id"}',
      run: ({ fileId, query }) =>
        Cleaning.use((cleaning) =>
          cleaning.process(fileId, {
            includeBlacklist: query.include_blacklist ?? false,
            includeMonitor: query.include_monitor ?? false,
            includeConversion: query.include_conversion ?? false,
            includeMainDatabase: query.include_main_database ?? false,
            country: query.country,
            phoneColumn: query.phone_column,
            rejects: query.rejects ?? false,
            annotated: query.annotated ?? false
          })
        )
    },
    stats: {
      path: "/:file_id/stats",
      summary: "Counts of the last cleaning run (400 until the file is processed)",
      description:
        "total_records = final_clean_count + removed_blacklist + removed_monitor + removed_conversion + removed_maindatabase + removed_duplicates + removed_invalid.",
      returns:
        '{"file_id", "total_records", "removed_blacklist", "removed_monitor", "removed_conversion", "removed_maindatabase", "final_clean_count", "created_at", "removed_duplicates", "removed_invalid", "phone_metadata_version"}',
      response: CleaningStats,
      run: (fileId) =>
        Cleaning.use((cleaning) => cleaning.stats(fileId)).pipe(
          Effect.map((s) => ({
            file_id: s.file_id,
            total_records: s.total_records,
            removed_blacklist: s.removed_blacklist,
            removed_monitor: s.removed_monitor,
            removed_conversion: s.removed_conversion,
            removed_maindatabase: s.removed_maindatabase,
            final_clean_count: s.final_clean_count,
            created_at: s.created_at,
            removed_duplicates: s.removed_duplicates,
            removed_invalid: s.removed_invalid,
            phone_metadata_version: s.phone_metadata_version
          }))
        )
    },
    download: {
      path: "/:file_id/download",
      summary: "Download the cleaned list as processed_<original_filename> (one number per line, no header)",
      description:
        "?kind=rejects (row, phone, phone_e164, reason) or ?kind=annotated (original columns + phone_e164, status, reason) when the run wrote them. 400 until processed.",
      query: DownloadQuery,
      run: (fileId, query) => Cleaning.use((cleaning) => cleaning.download(fileId, query.kind ?? "default"))
    },
    archive: {
      path: "/:file_id/archive",
      summary: "Archive a file (409 while it is processing)",
      returns: "null",
      response: Null,
      run: (fileId) => Cleaning.use((cleaning) => cleaning.archive(fileId)).pipe(Effect.as(null))
    },
    delete: {
      path: "/:file_id/delete",
      summary: "Delete a file: its row, its stats and its stored files (409 while it is processing)",
      returns: "null",
      response: Null,
      run: (fileId) => Cleaning.use((cleaning) => cleaning.delete(fileId)).pipe(Effect.as(null))
    }
  })
