/**
 * `npx optimizer runs`: the scheduler's runs (start, end, outcome, window, counts, error), newest
 * first (GET /scheduler/runs: `{"items": [...]}` with `--json`).
 *
 * `npx optimizer runs now <schedule> [--queue-only] [--json]`: a tick now (POST
 * /scheduler/{schedule}/run-now). The tick is queued on the schedule's queue under a cron tick's key
 * — it never overlaps a tick of that schedule — and then run in this process (or by a scheduler
 * process, whichever takes it first) and recorded in `scheduler_runs` exactly like a cron tick;
 * the command waits for it and prints the run. `--queue-only` only queues it, as the HTTP route does.
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Jobs, Scheduler, SCHEDULE_NAMES, scheduleQueue } from "@optimizer/core"
import { followJob } from "../jobWait.ts"
import { printJson, printLines, printTable } from "../output.ts"
import { makeProgress } from "../progress.ts"
import { withServices } from "../runtime.ts"

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))

const now = Command.make(
  "now",
  {
    schedule: Argument.Literals("schedule", SCHEDULE_NAMES).pipe(Argument.withDescription("the schedule to run")),
    queueOnly: Flag.Boolean("queue-only").pipe(
      Flag.withDefault(false),
      Flag.withDescription("only queue the tick for a scheduler process (as the HTTP route); do not wait")
    ),
    json
  },
  ({ schedule, queueOnly, json }) =>
    withServices(
      Effect.scoped(
        Effect.gen(function* () {
          const scheduler = yield* Scheduler
          const queued = yield* scheduler.enqueueNow(schedule)
          if (queueOnly) {
            if (json) return yield* printJson(queued)
            return yield* printLines(`${schedule}: tick queued as job ${queued.job_id} (a scheduler process runs it)`)
          }
          // Run it here too, as a scheduler process would (the same handler; one of them takes it).
          yield* Jobs.use((jobs) =>
            jobs.work(scheduleQueue(schedule), () => scheduler.runNow(schedule), { concurrency: 1 })
          )
          const job = yield* followJob(queued.job_id, makeProgress({ label: schedule, mode: "none" }))
          const answer = { schedule, job_id: job.id, status: job.state, run: job.result, error: job.error }
          if (json) yield* printJson(answer)
          else {
            const run = job.result as { runId?: number; windowFrom?: string; windowTo?: string } | null
            yield* printLines(
              `${schedule}: ${job.state}${run?.runId === undefined ? "" : ` (run ${run.runId}, ${run.windowFrom} → ${run.windowTo})`}` +
                `${job.error === null ? "" : `: ${job.error}`}`
            )
          }
          if (job.state !== "completed") return yield* Effect.fail(new Error(`the ${schedule} run ${job.state}`))
        })
      )
    )
).pipe(
  Command.withDescription(
    "Run a schedule now, recorded like a cron tick (as POST /scheduler/{schedule}/run-now); waits and prints the run"
  )
)

export const runsCommand = Command.make(
  "runs",
  {
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the runs as JSON")),
    schedule: Flag.Literals("schedule", SCHEDULE_NAMES).pipe(Flag.optional, Flag.withDescription("only this schedule")),
    outcome: Flag.Literals("outcome", ["running", "success", "failed"]).pipe(Flag.optional),
    limit: Flag.Int("limit").pipe(Flag.withDefault(50))
  },
  ({ json, schedule, outcome, limit }) =>
    withServices(
      Effect.gen(function* () {
        const runs = yield* Scheduler.use((s) =>
          s.runs({ limit, schedule: Option.getOrUndefined(schedule), outcome: Option.getOrUndefined(outcome) })
        )
        if (json) return yield* printJson({ items: runs })
        yield* printTable(runs, [
          "id",
          "schedule",
          "outcome",
          "startedAt",
          "finishedAt",
          "windowFrom",
          "windowTo",
          "error"
        ])
      })
    )
).pipe(
  Command.withDescription(
    "Scheduler runs, newest first: outcome, window, counts, error; `runs now <schedule>` runs one now"
  ),
  Command.withSubcommands([now])
)
