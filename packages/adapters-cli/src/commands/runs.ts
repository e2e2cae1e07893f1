/** `npx optimizer runs`: the scheduler's runs (start, end, outcome, window, counts, error), newest first. */
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { Scheduler } from "@optimizer/core"
import { printJson, printTable } from "../output.ts"
import { withServices } from "../runtime.ts"

export const runsCommand = Command.make(
  "runs",
  {
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the runs as JSON")),
    schedule: Flag.Literals("schedule", ["conversions", "reports", "mmd-daily"]).pipe(
      Flag.optional,
      Flag.withDescription("only this schedule")
    ),
    outcome: Flag.Literals("outcome", ["running", "success", "failed"]).pipe(Flag.optional),
    limit: Flag.Int("limit").pipe(Flag.withDefault(50))
  },
  ({ json, schedule, outcome, limit }) =>
    withServices(
      Effect.gen(function* () {
        const runs = yield* Scheduler.use((s) =>
          s.runs({ limit, schedule: Option.getOrUndefined(schedule), outcome: Option.getOrUndefined(outcome) })
        )
        if (json) return yield* printJson(runs)
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
).pipe(Command.withDescription("Scheduler runs, newest first: outcome, window, counts, error"))
