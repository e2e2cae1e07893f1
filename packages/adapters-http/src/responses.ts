/**
 * The pieces the routes' response schemas (`response` in `http.ts`) share. A response schema
 * describes a body as the client reads it, in JSON: a timestamp is its ISO string, a number is
 * finite. The tests check every JSON body they receive against its route's schema
 * (`validateResponses` in `app.ts`).
 */
import { Schema } from "effect"
import { FILE_JOB_STATUSES, HLR_STATUSES } from "@optimizer/core"

/** A point in time as JSON gives a `Date`: ISO 8601 in UTC (`2025-12-12T00:00:00.000Z`). */
export const Timestamp = Schema.String.annotate({ description: "ISO 8601 date-time, UTC" })

/** A count or a size: a whole number. */
export const Count = Schema.Int

/** A JSON number (never NaN or Infinity: JSON has none). */
export const Num = Schema.Finite

/** `{"ok": true}`: the original's answer to an archive or a delete. */
export const Ok = Schema.Struct({ ok: Schema.Literal(true) }).annotate({ identifier: "Ok" })

/** A file's processing queued as a job: `{"ok": true, "file_id", "status": "processing", "job_id"}`. */
export const ProcessingStarted = Schema.Struct({
  ok: Schema.Literal(true),
  file_id: Schema.String,
  status: Schema.Literal("processing"),
  job_id: Schema.String.annotate({ description: "Follow it at GET /jobs/{job_id}" })
}).annotate({ identifier: "ProcessingStarted" })

/** A file's status in its processing workflow (`FILE_JOB_STATUSES` in core's `platform/FileJobKind.ts`). */
export const FileStatus = Schema.Literals(FILE_JOB_STATUSES).annotate({ identifier: "FileStatus" })

/** A file's HLR run status (`HLR_STATUSES` in core's `hlr/Hlr.ts`); null before its first run. */
export const HlrRunStatus = Schema.NullOr(
  Schema.Literals(HLR_STATUSES).annotate({
    identifier: "HlrRunStatus",
    description: "uploading (the numbers being sent), processing, complete or failed"
  })
)

/** An upload stored: `{"id", "original_filename", "status": "uploaded"}` (the original's keys). */
export const Uploaded = Schema.Struct({
  id: Schema.String.annotate({ description: "The file's id: the {file_id} of its other operations" }),
  original_filename: Schema.String,
  status: Schema.Literal("uploaded")
}).annotate({ identifier: "Uploaded" })

/** What a list write did (`ApplyCounts` in core's `lists/ListSchemas.ts`). */
export const ApplyCounts = Schema.Struct({
  added: Count.annotate({ description: "Not on any list before" }),
  moved: Count.annotate({ description: "Taken off another list" }),
  updated: Count.annotate({ description: "Already on the list, and changed" }),
  unchanged: Count.annotate({ description: "Already on the list with the same values" }),
  keptSticky: Count.annotate({ description: "Left alone: the number has a sticky entry" })
}).annotate({ identifier: "ApplyCounts" })

/** `{"items": [...]}`: every listing's envelope. */
export const Items = <S extends Schema.Top>(item: S) => Schema.Struct({ items: Schema.Array(item) })

/** The answer of an operation that answers nothing: JSON `null` (the original's). */
export const Null = Schema.Null
