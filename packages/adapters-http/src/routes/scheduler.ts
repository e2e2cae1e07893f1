/**
 * The scheduler's runs: what the cron schedules did, when, over which window, and why a run failed;
 * and, for admins, a schedule's tick now (run by a scheduler process, recorded like a cron tick).
 */
import { Effect, Schema } from "effect"
import { Scheduler, SCHEDULE_NAMES, ValidationError, type AppServices, type ScheduleName } from "@optimizer/core"
import type { Routes } from "../http.ts"
import { Items, Timestamp } from "../responses.ts"

const ScheduleNameSchema = Schema.Literals(SCHEDULE_NAMES)

/** A scheduler run (`SchedulerRun` in core's `scheduler/SchedulerRepository.ts`). */
const SchedulerRun = Schema.Struct({
  id: Schema.Int,
  schedule: Schema.String,
  startedAt: Timestamp,
  finishedAt: Schema.NullOr(Timestamp),
  outcome: Schema.Literals(["running", "success", "failed"]),
  windowFrom: Schema.NullOr(Timestamp).annotate({ description: "The window the run covered" }),
  windowTo: Schema.NullOr(Timestamp),
  // Free-form: each schedule's operation reports its own counts (rows fetched, inserted, pushed…).
  counts: Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown)).annotate({
    description: "What the operation counted, as it reported them"
  }),
  error: Schema.NullOr(Schema.String)
}).annotate({ identifier: "SchedulerRun" })

/** A tick queued now (`QueuedTick` in core's `scheduler/Scheduler.ts`). */
const QueuedTick = Schema.Struct({
  schedule: ScheduleNameSchema,
  job_id: Schema.String.annotate({ description: "Follow it at GET /jobs/{job_id}" }),
  status: Schema.Literal("queued")
}).annotate({ identifier: "QueuedTick" })

const RunsQuery = Schema.Struct({
  schedule: Schema.optionalKey(ScheduleNameSchema),
  outcome: Schema.optionalKey(Schema.Literals(["running", "success", "failed"])),
  limit: Schema.optionalKey(
    Schema.NumberFromString.pipe(Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 })))
  )
})

export const schedulerRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "get",
        path: "/scheduler/runs",
        role: "viewer",
        tag: "scheduler",
        summary: "Scheduler runs, newest first: start, end, outcome, window, counts, error",
        query: RunsQuery,
        response: Items(SchedulerRun)
      },
      ({ query }) => Scheduler.use((s) => s.runs(query)).pipe(Effect.map((items) => ({ items })))
    )
    .add(
      {
        method: "post",
        path: "/scheduler/:schedule/run-now",
        role: "admin",
        tag: "scheduler",
        summary: "Run a schedule now: a tick queued for a scheduler process, recorded in the runs like a cron tick",
        description:
          "schedule: conversions, reports or mmd-daily. 409 while a run of that schedule is queued or running; 400 for a schedule that is not active (its integration not configured, or SCHEDULER_ENABLED=false). Follow it at /jobs/{job_id} and /scheduler/runs.",
        returns: '202 {"schedule", "job_id", "status": "queued"}',
        accepted: { description: "The tick is queued for a scheduler process", schema: QueuedTick }
      },
      ({ c, params }) =>
        Effect.gen(function* () {
          const name = params.schedule ?? ""
          if (!(SCHEDULE_NAMES as ReadonlyArray<string>).includes(name)) {
            return yield* new ValidationError({
              message: `path.schedule: one of ${SCHEDULE_NAMES.join(", ")}`,
              field: "schedule"
            })
          }
          const queued = yield* Scheduler.use((s) => s.enqueueNow(name as ScheduleName))
          return c.json(queued, 202)
        })
    )
