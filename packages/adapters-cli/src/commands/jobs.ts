/**
 * `npx optimizer jobs …`: durable jobs, as `/jobs`:
 *
 *   jobs list [--queue q] [--state s] [--limit n] [--json]   (GET /jobs: {"items": [...]})
 *   jobs show <id> [--json]                                   (GET /jobs/{job_id})
 *   jobs cancel <id> [--json]                                 (POST /jobs/{job_id}/cancel)
 *   jobs wait <id> [--json] [--progress …]                    follows any job to its end; exit 1 unless it completed
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Jobs, NotFound, type JobInfo } from "@optimizer/core"
import { followJob } from "../jobWait.ts"
import { printJson, printLines, printTable } from "../output.ts"
import { progressFlag, withProgress } from "../progress.ts"
import { withServices } from "../runtime.ts"

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))
const jobId = Argument.String("job-id").pipe(Argument.withDescription("the job's id"))

const showJob = (job: JobInfo) =>
  Effect.gen(function* () {
    yield* printTable(
      [job],
      ["id", "queue", "state", "processed", "total", "attempts", "createdAt", "startedAt", "completedAt", "error"]
    )
    if (job.result !== null) yield* printJson(job.result)
  })

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
        if (json) return yield* printJson({ items: jobs })
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

const show = Command.make("show", { id: jobId, json }, ({ id, json }) =>
  withServices(
    Effect.gen(function* () {
      const job = yield* Jobs.use((j) => j.get(id))
      if (Option.isNone(job)) return yield* new NotFound({ message: `no job with id ${id}` })
      if (json) return yield* printJson(job.value)
      yield* showJob(job.value)
    })
  )
).pipe(Command.withDescription("Show one job: state, progress, result or error"))

const cancel = Command.make("cancel", { id: jobId, json }, ({ id, json }) =>
  withServices(
    Effect.gen(function* () {
      const job = yield* Jobs.use((j) => j.cancel(id))
      if (json) return yield* printJson(job)
      yield* printLines(`cancelled job ${job.id} (${job.queue})`)
    })
  )
).pipe(Command.withDescription("Cancel a queued or running job (as POST /jobs/{job_id}/cancel)"))

const wait = Command.make("wait", { id: jobId, json, progress: progressFlag }, ({ id, json, progress }) =>
  withServices(
    Effect.gen(function* () {
      const job = yield* withProgress({ label: `job ${id.slice(0, 8)}`, mode: progress, json }, (p) => followJob(id, p))
      if (json) yield* printJson(job)
      else yield* showJob(job)
      if (job.state !== "completed") {
        return yield* Effect.fail(new Error(`job ${job.id} ended ${job.state}${job.error ? `: ${job.error}` : ""}`))
      }
    })
  )
).pipe(
  Command.withDescription(
    "Follow any durable job to its end, with its progress; prints the job, exit 1 unless it completed"
  )
)

export const jobsCommand = Command.make("jobs").pipe(
  Command.withDescription("Durable jobs: list, show, cancel, wait"),
  Command.withSubcommands([list, show, cancel, wait])
)
