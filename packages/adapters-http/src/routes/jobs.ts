/** Durable jobs: what the background work started by other endpoints is doing. */
import { Effect, Option, Schema } from "effect"
import { Jobs, NotFound, type AppServices } from "@optimizer/core"
import type { Routes } from "../http.ts"
import { Count, Items, Timestamp } from "../responses.ts"

const JobState = Schema.Literals(["queued", "running", "completed", "failed", "cancelled"])

/** A job's `job_status` row (`JobInfo` in core's `platform/jobs/JobStatusRows.ts`). */
const JobInfo = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  state: JobState,
  processed: Schema.NullOr(Count).annotate({ description: "Progress: units done (rows, records), when reported" }),
  total: Schema.NullOr(Count).annotate({ description: "Progress: units in all, when known" }),
  attempts: Count.annotate({ description: "Attempts started so far: 0 while first queued, 2 during the first retry" }),
  // Free-form: each queue's handler returns its own JSON (a cleaning run's counts, a sync's body, …).
  result: Schema.Unknown.annotate({ description: "The handler's success value (JSON), null until completed" }),
  error: Schema.NullOr(Schema.String).annotate({ description: "The last failure's message" }),
  createdAt: Timestamp,
  startedAt: Schema.NullOr(Timestamp),
  completedAt: Schema.NullOr(Timestamp),
  updatedAt: Timestamp
}).annotate({ identifier: "JobInfo" })

const JobsQuery = Schema.Struct({
  queue: Schema.optionalKey(Schema.String),
  state: Schema.optionalKey(JobState),
  limit: Schema.optionalKey(
    Schema.NumberFromString.pipe(Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 })))
  )
})

const found =
  <A>(id: string) =>
  (o: Option.Option<A>) =>
    Option.isSome(o) ? Effect.succeed(o.value) : Effect.fail(new NotFound({ message: `Job not found: ${id}` }))

export const jobRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "get",
        path: "/jobs",
        role: "viewer",
        tag: "jobs",
        summary: "Durable jobs, newest first",
        query: JobsQuery,
        response: Items(JobInfo)
      },
      ({ query }) => Jobs.use((j) => j.list(query)).pipe(Effect.map((items) => ({ items })))
    )
    .add(
      {
        method: "get",
        path: "/jobs/:job_id",
        role: "viewer",
        tag: "jobs",
        summary: "One job: state, progress (processed/total), result or error",
        response: JobInfo
      },
      ({ params }) => Jobs.use((j) => j.get(params.job_id!)).pipe(Effect.flatMap(found(params.job_id!)))
    )
    .add(
      {
        method: "post",
        path: "/jobs/:job_id/cancel",
        role: "operator",
        tag: "jobs",
        summary: "Cancel a queued or running job",
        response: JobInfo
      },
      ({ params }) => Jobs.use((j) => j.cancel(params.job_id!))
    )
