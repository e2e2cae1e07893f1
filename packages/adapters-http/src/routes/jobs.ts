/** Durable jobs: what the background work started by other endpoints is doing. */
import { Effect, Option, Schema } from "effect"
import { Jobs, NotFound, type AppServices } from "@optimizer/core"
import type { Routes } from "../http.ts"

const JobsQuery = Schema.Struct({
  queue: Schema.optionalKey(Schema.String),
  state: Schema.optionalKey(Schema.Literals(["queued", "running", "completed", "failed", "cancelled"])),
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
        query: JobsQuery
      },
      ({ query }) => Jobs.use((j) => j.list(query)).pipe(Effect.map((items) => ({ items })))
    )
    .add(
      {
        method: "get",
        path: "/jobs/:job_id",
        role: "viewer",
        tag: "jobs",
        summary: "One job: state, progress (processed/total), result or error"
      },
      ({ params }) => Jobs.use((j) => j.get(params.job_id!)).pipe(Effect.flatMap(found(params.job_id!)))
    )
    .add(
      {
        method: "post",
        path: "/jobs/:job_id/cancel",
        role: "operator",
        tag: "jobs",
        summary: "Cancel a queued or running job"
      },
      ({ params }) => Jobs.use((j) => j.cancel(params.job_id!))
    )
