/**
 * `npx optimizer ongage-jobs …`: Ongage CSV jobs from the terminal (`docs/ongage-jobs.md`), the same
 * service the HTTP endpoints call. A worker process (`npx optimizer worker`) sends the batches.
 *
 *   ongage-jobs upload <file.csv> [--json]
 *   ongage-jobs list [--all] [--json]
 *   ongage-jobs show <job-id> [--json]
 *   ongage-jobs set <job-id> --interval 60 --lower 5 --upper 20 [--json]
 *   ongage-jobs start|pause|resume|archive <job-id> [--json]
 */
import { createReadStream } from "node:fs"
import { basename } from "node:path"
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { OngageJobs, type CsvJob, type DatabaseError, type NotFound, type ValidationError } from "@optimizer/core"
import { printJson, printLines, printTable } from "../output.ts"
import { withServices } from "../runtime.ts"

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))
const jobId = Argument.String("job-id").pipe(Argument.withDescription("the job's id (from list or upload)"))

const COLUMNS: ReadonlyArray<keyof CsvJob & string> = [
  "id",
  "original_filename",
  "status",
  "total_records",
  "sent",
  "failed",
  "remaining",
  "interval_seconds",
  "lower_limit",
  "upper_limit",
  "next_run_at"
]

const upload = Command.make(
  "upload",
  { file: Argument.File("file", { mustExist: true }).pipe(Argument.withDescription("the CSV of contacts")), json },
  ({ file, json }) =>
    withServices(
      Effect.gen(function* () {
        const answer = yield* OngageJobs.use((jobs) =>
          jobs.upload({ filename: basename(file), body: createReadStream(file) })
        )
        if (json) return yield* printJson(answer)
        yield* printLines(`job ${answer.job_id}: ${answer.total_records} records, draft`)
      })
    )
).pipe(Command.withDescription("Upload a CSV of contacts as a draft job (interval 60 s, limits 1–1)"))

const list = Command.make(
  "list",
  { all: Flag.Boolean("all").pipe(Flag.withDefault(false), Flag.withDescription("archived jobs too")), json },
  ({ all, json }) =>
    withServices(
      Effect.gen(function* () {
        const items = yield* OngageJobs.use((jobs) => jobs.list({ includeArchived: all }))
        if (json) return yield* printJson({ items })
        yield* printTable(items, COLUMNS)
      })
    )
).pipe(Command.withDescription("CSV jobs, newest first, with their progress"))

const show = Command.make("show", { id: jobId, json }, ({ id, json }) =>
  withServices(
    Effect.gen(function* () {
      const job = yield* OngageJobs.use((jobs) => jobs.get(id))
      const failures = yield* OngageJobs.use((jobs) => jobs.failures(id))
      if (json) return yield* printJson({ ...job, failures })
      yield* printTable([job], [...COLUMNS, "last_run_at", "completed_at", "error_message"])
      if (failures.length > 0) {
        yield* printLines("", `records Ongage rejected (first ${failures.length}):`)
        yield* printTable(failures, ["seq", "email", "list_id", "error_message"])
      }
    })
  )
).pipe(Command.withDescription("One job: progress, schedule and the records Ongage rejected"))

const set = Command.make(
  "set",
  {
    id: jobId,
    interval: Flag.Int("interval").pipe(Flag.withDescription("seconds between batches (at least 60)")),
    lower: Flag.Int("lower").pipe(Flag.withDescription("fewest records per batch (at least 1)")),
    upper: Flag.Int("upper").pipe(Flag.withDescription("most records per batch (at least --lower)")),
    json
  },
  ({ id, interval, lower, upper, json }) =>
    withServices(
      Effect.gen(function* () {
        const answer = yield* OngageJobs.use((jobs) =>
          jobs.update(id, { interval_seconds: interval, lower_limit: lower, upper_limit: upper })
        )
        if (json) return yield* printJson(answer)
        yield* printLines(`job ${id}: every ${interval} s, ${lower}–${upper} records`)
      })
    )
).pipe(Command.withDescription("Set a draft or paused job's interval and limits"))

const transition = (name: "start" | "pause" | "resume" | "archive", description: string) =>
  Command.make(name, { id: jobId, json }, ({ id, json }) =>
    withServices(
      Effect.gen(function* () {
        const answer: { readonly ok: true; readonly status: string } = yield* OngageJobs.use((jobs) => {
          const run: (
            id: string
          ) => Effect.Effect<
            { readonly ok: true; readonly status: string },
            ValidationError | NotFound | DatabaseError
          > = jobs[name]
          return run(id)
        })
        if (json) return yield* printJson(answer)
        yield* printLines(`job ${id}: ${answer.status}`)
      })
    )
  ).pipe(Command.withDescription(description))

export const ongageJobsCommand = Command.make("ongage-jobs").pipe(
  Command.withDescription("Ongage CSV jobs: contacts dripped to Ongage a few records at a time"),
  Command.withSubcommands([
    list,
    upload,
    show,
    set,
    transition("start", "Start a draft or paused job (its first batch goes now)"),
    transition("pause", "Pause a running job before its next batch"),
    transition("resume", "Resume a paused job from its next unsent record"),
    transition("archive", "Archive a job: it stops and leaves the list")
  ])
)
