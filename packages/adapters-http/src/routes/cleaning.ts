/**
 * CSV list cleaning (ORIGINAL.md §1.4 items 7–13): upload, list, process as a job, stats, download,
 * archive, delete — the original's paths, parameters and response keys, with real status codes
 * (404 unknown file, 400 not processed yet, 409 another file processing, 413 too large, 422 not a
 * CSV) instead of the original's wrapped 500s.
 */
import { Effect, Schema } from "effect"
import { AppConfig, Cleaning, ITEM_KEYS, ValidationError, type AppServices, type CleaningFile } from "@optimizer/core"
import { csvDownload } from "../download.ts"
import { QueryBoolean, type Routes } from "../http.ts"
import { uploadedFile } from "../upload.ts"

const STATUSES = ["uploaded", "processing", "processed", "failed", "archived"]

const StatusQuery = Schema.Struct({ status: Schema.optionalKey(Schema.String) })

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

/** `?status=a,b` → the statuses, or a ValidationError naming the unknown one. */
const statusesOf = (raw: string | undefined): Effect.Effect<ReadonlyArray<string>, ValidationError> => {
  const wanted = (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  const unknown = wanted.find((s) => !STATUSES.includes(s))
  return unknown === undefined
    ? Effect.succeed(wanted)
    : Effect.fail(
        new ValidationError({
          message: `query.status: unknown status "${unknown.slice(0, 40)}" (one of ${STATUSES.join(", ")})`,
          field: "status"
        })
      )
}

/** A `/files` item: exactly the original's keys. */
const item = (file: CleaningFile) => Object.fromEntries(ITEM_KEYS.map((key) => [key, file[key]]))

export const cleaningRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "post",
        path: "/upload",
        role: "operator",
        tag: "cleaning",
        summary: "Upload a list to clean (multipart field `file`; CSV, any delimiter, with or without a header)",
        description:
          "Stored as it is; record_count_total = the number of non-blank lines (header included). 413 above UPLOAD_MAX_BYTES; 422 for a binary, UTF-16 or empty file.",
        upload: true,
        returns: '{"id", "original_filename", "status": "uploaded"}'
      },
      ({ c }) =>
        Effect.gen(function* () {
          const { uploadMaxBytes } = yield* AppConfig
          const file = yield* uploadedFile(c, { maxBytes: uploadMaxBytes })
          return yield* Cleaning.use((cleaning) =>
            cleaning.upload(file.filename, file.stream, { maxBytes: uploadMaxBytes })
          )
        })
    )
    .add(
      {
        method: "get",
        path: "/files",
        role: "viewer",
        tag: "cleaning",
        summary: "Uploaded lists, newest first; ?status=a,b filters",
        description: "Progress of a running file: GET /jobs/{job_id} (processed / total rows).",
        query: StatusQuery,
        returns: `{"items": [{${ITEM_KEYS.map((k) => `"${k}"`).join(", ")}}]}`
      },
      ({ query }) =>
        statusesOf(query.status).pipe(
          Effect.flatMap((statuses) => Cleaning.use((cleaning) => cleaning.list(statuses))),
          Effect.map((files) => ({ items: files.map(item) }))
        )
    )
    .add(
      {
        method: "post",
        path: "/:file_id/process",
        role: "operator",
        tag: "cleaning",
        summary: "Clean a list as a job against the chosen lists",
        description:
          "include_blacklist, include_monitor, include_conversion, include_main_database (filter against main_database and add the kept numbers to it), all false by default; country: ISO2 default for national numbers (a country/country_code column wins per row); phone_column: header name or 1-based position (default: found by name or content); rejects, annotated: also write those files (GET /{file_id}/download?kind=…). 409 while another file is processing; 400 when the file is not uploaded/failed.",
        query: ProcessQuery,
        returns: '{"ok": true, "file_id", "status": "processing", "job_id"}'
      },
      ({ params, query }) =>
        Cleaning.use((cleaning) =>
          cleaning.process(params.file_id!, {
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
    )
    .add(
      {
        method: "get",
        path: "/:file_id/stats",
        role: "viewer",
        tag: "cleaning",
        summary: "Counts of the last cleaning run (400 until the file is processed)",
        description:
          "total_records = final_clean_count + removed_blacklist + removed_monitor + removed_conversion + removed_maindatabase + removed_duplicates + removed_invalid.",
        returns:
          '{"file_id", "total_records", "removed_blacklist", "removed_monitor", "removed_conversion", "removed_maindatabase", "final_clean_count", "created_at", "removed_duplicates", "removed_invalid", "phone_metadata_version"}'
      },
      ({ params }) =>
        Cleaning.use((cleaning) => cleaning.stats(params.file_id!)).pipe(
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
    )
    .add(
      {
        method: "get",
        path: "/:file_id/download",
        role: "viewer",
        tag: "cleaning",
        summary: "Download the cleaned list as processed_<original_filename> (one number per line, no header)",
        description:
          "?kind=rejects (row, phone, phone_e164, reason) or ?kind=annotated (original columns + phone_e164, status, reason) when the run wrote them. 400 until processed.",
        query: DownloadQuery
      },
      ({ params, query }) =>
        Cleaning.use((cleaning) => cleaning.download(params.file_id!, query.kind ?? "default")).pipe(
          Effect.map((file) => csvDownload(file.body, file.filename))
        )
    )
    .add(
      {
        method: "post",
        path: "/:file_id/archive",
        role: "operator",
        tag: "cleaning",
        summary: "Archive a file (409 while it is processing)",
        returns: "null"
      },
      ({ params }) => Cleaning.use((cleaning) => cleaning.archive(params.file_id!)).pipe(Effect.as(null))
    )
    .add(
      {
        method: "post",
        path: "/:file_id/delete",
        role: "operator",
        tag: "cleaning",
        summary: "Delete a file: its row, its stats and its stored files (409 while it is processing)",
        returns: "null"
      },
      ({ params }) => Cleaning.use((cleaning) => cleaning.delete(params.file_id!)).pipe(Effect.as(null))
    )
