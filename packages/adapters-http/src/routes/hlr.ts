/**
 * HLR on processed cleaning files (`docs/hlr.md`): start a run as a job, its status, the clean result
 * and the provider's raw results — the original's paths and keys, with real status codes (404 unknown
 * file, 400 not eligible / not complete, 409 another run active, 503 when HLR is not configured).
 */
import { Effect, Schema } from "effect"
import { Hlr, type AppServices } from "@optimizer/core"
import { csvDownload } from "../download.ts"
import type { Routes } from "../http.ts"
import { ApplyCounts, Count, HlrRunStatus, Timestamp } from "../responses.ts"

const HlrStarted = Schema.Struct({
  ok: Schema.Literal(true),
  file_id: Schema.String,
  hlr_status: Schema.Literal("processing"),
  job_id: Schema.String.annotate({ description: "Follow it at GET /jobs/{job_id}" })
}).annotate({ identifier: "HlrStarted" })

/** A completed run's counts (`HlrApplyResult` in core's `hlr/HlrResults.ts`). */
const HlrCounts = Schema.Struct({
  results: Count.annotate({ description: "Result rows in the provider's file" }),
  reused: Count.annotate({ description: "Numbers answered from the cache instead of being sent" }),
  skipped: Count.annotate({ description: "Result rows without a usable number" }),
  missing: Count.annotate({ description: "Numbers of the file with neither a result nor a cached one" }),
  categories: Schema.Struct({ live: Count, risky: Count, dead: Count, monitor: Count, unknown: Count }),
  statuses: Schema.Record(Schema.String, Count).annotate({
    description: 'Per live_status (upper-cased; blank as ""), results and reused together'
  }),
  liveRowsAdded: Count,
  clean: Count.annotate({ description: "Numbers in the clean result (GET /{file_id}/hlr/download)" }),
  blacklist: ApplyCounts,
  monitor: ApplyCounts
}).annotate({ identifier: "HlrCounts" })

/** A run's job result (`HlrJobResult` in core's `hlr/Hlr.ts`). */
const HlrJobResult = Schema.Struct({
  file_id: Schema.String,
  status: Schema.Literals(["complete", "skipped"]),
  reason: Schema.optionalKey(Schema.String).annotate({ description: "Why the run was skipped" }),
  batch_id: Schema.optionalKey(Schema.NullOr(Schema.String)),
  sent: Schema.optionalKey(Count).annotate({
    description: "Numbers sent to the provider (0 when every number came from the cache)"
  }),
  counts: Schema.optionalKey(HlrCounts)
}).annotate({ identifier: "HlrJobResult" })

const HlrStatus = Schema.Struct({
  file_id: Schema.String,
  hlr_status: HlrRunStatus,
  hlr_batch_id: Schema.NullOr(Schema.String),
  hlr_result_file_path: Schema.NullOr(Schema.String),
  hlr_started_at: Schema.NullOr(Timestamp),
  hlr_completed_at: Schema.NullOr(Timestamp),
  hlr_num_items: Schema.NullOr(Count),
  hlr_num_complete: Schema.NullOr(Count),
  hlr_error_message: Schema.NullOr(Schema.String),
  hlr_raw_file_path: Schema.NullOr(Schema.String),
  job_id: Schema.NullOr(Schema.String),
  result: Schema.NullOr(HlrJobResult).annotate({ description: "The completed run's counts, null before" })
}).annotate({ identifier: "HlrStatus" })

const STATUS_KEYS =
  '{"file_id", "hlr_status", "hlr_batch_id", "hlr_result_file_path", "hlr_started_at", "hlr_completed_at", "hlr_num_items", "hlr_num_complete", "hlr_error_message", "hlr_raw_file_path", "job_id", "result"}'

export const hlrRoutes = (routes: Routes<AppServices>) => {
  routes.add(
    {
      method: "post",
      path: "/:file_id/hlr",
      role: "operator",
      tag: "hlr",
      summary: "Check a processed file's numbers with hlrlookup.com as a job; the results feed the lists",
      description:
        "Allowed when the file is processed and its hlr_status is null, failed or complete. Numbers with a cached result younger than HLR_CACHE_DAYS are not sent. 409 while another file runs HLR; 400 when not eligible; 503 naming the variables when HLRLOOKUP_APIKEY / HLRLOOKUP_SECRET are not set. Progress: GET /{file_id}/hlr or GET /jobs/{job_id}.",
      returns: '{"ok": true, "file_id", "hlr_status": "processing", "job_id"}',
      response: HlrStarted
    },
    ({ params }) => Hlr.use((hlr) => hlr.start(params.file_id!))
  )
  routes.add(
    {
      method: "get",
      path: "/:file_id/hlr",
      role: "viewer",
      tag: "hlr",
      summary:
        "The file's HLR run: status, batch, progress (hlr_num_complete of hlr_num_items) and, once complete, its counts",
      description:
        "result: the completed run's counts (sent, counts.reused, counts.categories, counts.statuses per live_status, list changes), null before.",
      returns: STATUS_KEYS,
      response: HlrStatus
    },
    ({ params }) => Hlr.use((hlr) => hlr.status(params.file_id!))
  )
  routes.add(
    {
      method: "get",
      path: "/:file_id/hlr/download",
      role: "viewer",
      tag: "hlr",
      summary: "The live, non-risky numbers as hlr_<original_filename> (header phone_number)",
      description: "400 HLR not complete yet; 404 HLR result file missing on disk.",
      produces: "text/csv"
    },
    ({ params }) =>
      Hlr.use((hlr) => hlr.download(params.file_id!, "clean")).pipe(
        Effect.map((file) => csvDownload(file.body, file.filename))
      )
  )
  routes.add(
    {
      method: "get",
      path: "/:file_id/hlr/raw",
      role: "viewer",
      tag: "hlr",
      summary: "The provider's raw results CSV as hlr_raw_<original_filename>",
      description: "400 Raw HLR file not available; 404 Raw HLR file missing.",
      produces: "text/csv"
    },
    ({ params }) =>
      Hlr.use((hlr) => hlr.download(params.file_id!, "raw")).pipe(
        Effect.map((file) => csvDownload(file.body, file.filename))
      )
  )
  return routes
}
