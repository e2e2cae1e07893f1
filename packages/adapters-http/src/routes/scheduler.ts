/** The scheduler's runs: what the cron schedules did, when, over which window, and why a run failed. */
import { Effect, Schema } from "effect"
import { Scheduler, type AppServices } from "@optimizer/core"
import type { Routes } from "../http.ts"

const RunsQuery = Schema.Struct({
  schedule: Schema.optionalKey(Schema.Literals(["conversions", "reports", "mmd-daily"])),
  outcome: Schema.optionalKey(Schema.Literals(["running", "success", "failed"])),
  limit: Schema.optionalKey(
    Schema.NumberFromString.pipe(Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 })))
  )
})

export const schedulerRoutes = (routes: Routes<AppServices>) =>
  routes.add(
    {
      method: "get",
      path: "/scheduler/runs",
      role: "viewer",
      tag: "scheduler",
      summary: "Scheduler runs, newest first: start, end, outcome, window, counts, error",
      query: RunsQuery
    },
    ({ query }) => Scheduler.use((s) => s.runs(query)).pipe(Effect.map((items) => ({ items })))
  )
