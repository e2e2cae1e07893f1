/**
 * HLR on processed cleaning files (`docs/hlr.md`): start a run as a job, its status, the clean result
 * and the provider's raw results — the original's paths and keys, with real status codes (404 unknown
 * file, 400 not eligible / not complete, 409 another run active, 503 when HLR is not configured).
 */
import { Effect } from "effect"
import { Hlr, type AppServices } from "@optimizer/core"
import { csvDownload } from "../download.ts"
import type { Routes } from "../http.ts"

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
      returns: '{"ok": true, "file_id", "hlr_status": "processing", "job_id"}'
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
      returns: STATUS_KEYS
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
