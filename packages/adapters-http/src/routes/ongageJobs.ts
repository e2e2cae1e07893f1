/**
 * Ongage CSV jobs over HTTP (`docs/ongage-jobs.md`): the original's six endpoints with its paths,
 * keys and messages, plus `GET /csv-jobs/{job_id}` (one job with its progress and the records Ongage
 * rejected) and `POST /csv-jobs/{job_id}/archive`. List items add `sent`, `failed`, `remaining`,
 * `next_run_at` and the other progress keys to the original's.
 */
import { Effect, Schema } from "effect"
import { AppConfig, CsvJob, CsvJobStatus, OngageJobs, type AppServices } from "@optimizer/core"
import { QueryBoolean, type Routes } from "../http.ts"
import { uploadedFile } from "../upload.ts"
import { Count, Items, Timestamp } from "../responses.ts"

/**
 * A job as listed: core's `CsvJob` (its keys and its status), in its JSON form — timestamps as
 * strings, counts as whole numbers.
 */
const CsvJobItem = Schema.Struct({
  ...CsvJob.fields,
  total_records: Count,
  uploaded_at: Timestamp,
  interval_seconds: Count.annotate({ description: "Seconds between batches (at least 60)" }),
  lower_limit: Count.annotate({ description: "Least records a batch sends" }),
  upper_limit: Count.annotate({ description: "Most records a batch sends" }),
  sent: Count,
  failed: Count.annotate({ description: "Records Ongage rejected" }),
  remaining: Count,
  next_run_at: Schema.NullOr(Timestamp),
  last_run_at: Schema.NullOr(Timestamp),
  completed_at: Schema.NullOr(Timestamp),
  error_message: Schema.NullOr(Schema.String).annotate({
    description: "Why the last batch stopped early; cleared by the next good batch"
  })
}).annotate({ identifier: "CsvJob" })

/** A record Ongage rejected (`CsvJobFailure` in core). */
const CsvJobFailure = Schema.Struct({
  seq: Count.annotate({ description: "The record's position in the file" }),
  email: Schema.NullOr(Schema.String),
  list_id: Schema.NullOr(Schema.String),
  error_message: Schema.NullOr(Schema.String)
}).annotate({ identifier: "CsvJobFailure" })

const CsvJobWithFailures = Schema.Struct({
  ...CsvJobItem.fields,
  failures: Schema.Array(CsvJobFailure).annotate({ description: "The first 100 records Ongage rejected" })
}).annotate({ identifier: "CsvJobWithFailures" })

const CsvJobUploaded = Schema.Struct({
  ok: Schema.Literal(true),
  job_id: Schema.String,
  original_filename: Schema.String,
  total_records: Count,
  status: Schema.Literal("draft")
}).annotate({ identifier: "CsvJobUploaded" })

/** `{"ok": true, "status"}`: a job's new status after start, pause, resume or archive. */
const CsvJobStatusChanged = <S extends typeof CsvJobStatus.Type>(status: S) =>
  Schema.Struct({ ok: Schema.Literal(true), status: Schema.Literal(status) })

const QueryInt = Schema.NumberFromString.pipe(Schema.check(Schema.isInt()))

/** The original's PATCH query: all three required integers; the range checks are the service's (400 with its messages). */
const SettingsQuery = Schema.Struct({
  interval_seconds: QueryInt,
  lower_limit: QueryInt,
  upper_limit: QueryInt
})

const ListQuery = Schema.Struct({ include_archived: Schema.optionalKey(QueryBoolean) })

const ITEM_KEYS =
  '"id", "original_filename", "status", "total_records", "uploaded_at", "interval_seconds", "lower_limit", "upper_limit", "sent", "failed", "remaining", "next_run_at", "last_run_at", "completed_at", "error_message"'

const jobId = (params: Record<string, string>) => params.job_id ?? ""

export const ongageJobRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "post",
        path: "/csv-jobs/upload",
        role: "operator",
        tag: "ongage-jobs",
        summary: "Upload a CSV of contacts to drip to Ongage: a draft job (interval 60 s, limits 1–1)",
        description:
          "The header must name List_ID, Email, Country, Source, Mobile, conversion_type, Original_source, HLR_Status and Uuid (case-sensitive); a 400 names the missing ones. The rows are stored in one transaction: a refused file leaves no job.",
        upload: true,
        returns: '{"ok": true, "job_id", "original_filename", "total_records", "status": "draft"}',
        response: CsvJobUploaded
      },
      ({ c }) =>
        Effect.gen(function* () {
          const { uploadMaxBytes } = yield* AppConfig
          const file = yield* uploadedFile(c, { maxBytes: uploadMaxBytes })
          return yield* OngageJobs.use((jobs) =>
            jobs.upload({ filename: file.filename, body: file.stream, maxBytes: uploadMaxBytes })
          )
        })
    )
    .add(
      {
        method: "get",
        path: "/csv-jobs",
        role: "viewer",
        tag: "ongage-jobs",
        summary: "CSV jobs, newest first, with their progress; archived ones only with include_archived=true",
        query: ListQuery,
        returns: `{"items": [{${ITEM_KEYS}}]}`,
        response: Items(CsvJobItem)
      },
      ({ query }) =>
        OngageJobs.use((jobs) => jobs.list({ includeArchived: query.include_archived === true })).pipe(
          Effect.map((items) => ({ items }))
        )
    )
    .add(
      {
        method: "get",
        path: "/csv-jobs/:job_id",
        role: "viewer",
        tag: "ongage-jobs",
        summary: "One CSV job with its progress and the first 100 records Ongage rejected (with its reason)",
        returns: `{${ITEM_KEYS}, "failures": [{"seq", "email", "list_id", "error_message"}]}`,
        response: CsvJobWithFailures
      },
      ({ params }) =>
        OngageJobs.use((jobs) =>
          Effect.gen(function* () {
            const job = yield* jobs.get(jobId(params))
            const failures = yield* jobs.failures(job.id)
            return { ...job, failures }
          })
        )
    )
    .add(
      {
        method: "patch",
        path: "/csv-jobs/:job_id",
        role: "operator",
        tag: "ongage-jobs",
        summary: "Set a draft or paused job's interval (≥ 60 s) and limits (1 ≤ lower_limit ≤ upper_limit)",
        description:
          'All three query parameters are required integers. 400 "upper_limit must be >= lower_limit", 400 "Interval Time must be greater than 60 seconds" (60 is accepted), 409 for a running, completed or archived job, 404 for an unknown one.',
        query: SettingsQuery,
        returns: '{"ok": true, "job_id"}',
        response: Schema.Struct({ ok: Schema.Literal(true), job_id: Schema.String })
      },
      ({ params, query }) => OngageJobs.use((jobs) => jobs.update(jobId(params), query))
    )
    .add(
      {
        method: "post",
        path: "/csv-jobs/:job_id/start",
        role: "operator",
        tag: "ongage-jobs",
        summary: "Start a draft or paused job: its first batch goes now",
        description: '400 "Job not in a startable state" otherwise.',
        returns: '{"ok": true, "status": "running"}',
        response: CsvJobStatusChanged("running")
      },
      ({ params }) => OngageJobs.use((jobs) => jobs.start(jobId(params)))
    )
    .add(
      {
        method: "post",
        path: "/csv-jobs/:job_id/pause",
        role: "operator",
        tag: "ongage-jobs",
        summary: "Pause a running job: a batch already at Ongage finishes, no other starts",
        description: '400 "Job not running" otherwise.',
        returns: '{"ok": true, "status": "paused"}',
        response: CsvJobStatusChanged("paused")
      },
      ({ params }) => OngageJobs.use((jobs) => jobs.pause(jobId(params)))
    )
    .add(
      {
        method: "post",
        path: "/csv-jobs/:job_id/resume",
        role: "operator",
        tag: "ongage-jobs",
        summary: "Resume a paused job from its next unsent record: its next batch goes now",
        description: '400 "Job not paused" otherwise.',
        returns: '{"ok": true, "status": "running"}',
        response: CsvJobStatusChanged("running")
      },
      ({ params }) => OngageJobs.use((jobs) => jobs.resume(jobId(params)))
    )
    .add(
      {
        method: "post",
        path: "/csv-jobs/:job_id/archive",
        role: "operator",
        tag: "ongage-jobs",
        summary: "Archive a job (any status): it stops sending and leaves the list",
        description: '400 "Job already archived" for an archived one.',
        returns: '{"ok": true, "status": "archived"}',
        response: CsvJobStatusChanged("archived")
      },
      ({ params }) => OngageJobs.use((jobs) => jobs.archive(jobId(params)))
    )
