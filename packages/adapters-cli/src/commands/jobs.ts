import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Jobs, NotFound } from "@optimizer/core"
import { printJson, printTable } from "../output.ts"
import { withServices } from "../runtime.ts"

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))

const list = Command.make(
  "list",
  {
    json,
    queue: Flag.String("queue").pipe(Flag.optional, Flag.withDescription("only this queue")),
    state: Flag.Literals("state", ["queued", "running", "completed", "failed", "cancelled"]).pipe(Flag.optional),
    limit: Flag.Int("limit").pipe(Flag.withDefault(50))
  },
  ({ json, queue, state, limit }) =>
    withServices(
      Effect.gen(function* () {
        const jobs = yield* Jobs.use((j) =>
          j.list({
            limit,
            ...Option.match(queue, { onNone: () => ({}), onSome: (q) => ({ queue: q }) }),
            ...Option.match(state, { onNone: () => ({}), onSome: (s) => ({ state: s }) })
          })
        )
        if (json) return yield* printJson(jobs)
        yield* printTable(jobs, [
          "id",
          "queue",
          "state",
          "processed",
          "total",
          "attempts",
          "createdAt",
          "completedAt",
          "error"
        ])
      })
    )
).pipe(Command.withDescription("List durable jobs, newest first"))

const show = Command.make("show", { id: Argument.String("job-id"), json }, ({ id, json }) =>
  withServices(
    Effect.gen(function* () {
      const job = yield* Jobs.use((j) => j.get(id))
      if (Option.isNone(job)) return yield* new NotFound({ message: `no job with id ${id}` })
      if (json) return yield* printJson(job.value)
      yield* printTable(
        [job.value],
        ["id", "queue", "state", "processed", "total", "attempts", "createdAt", "startedAt", "completedAt", "error"]
      )
      if (job.value.result !== null) yield* printJson(job.value.result)
    })
  )
).pipe(Command.withDescription("Show one job: state, progress, result or error"))

export const jobsCommand = Command.make("jobs").pipe(
  Command.withDescription("Inspect durable jobs"),
  Command.withSubcommands([list, show])
)
