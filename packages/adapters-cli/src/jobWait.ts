/**
 * Following a durable job to its end from the CLI (`jobs wait`, and the `--wait` of the commands
 * that queue one): polls its `job_status` row, shows its progress (`progress.ts`) and returns the
 * job as it ended. A worker runs it (`npx optimizer worker`, or the quick start).
 */
import { Effect, Option } from "effect"
import { Jobs, NotFound, type JobInfo } from "@optimizer/core"
import type { Progress } from "./progress.ts"

const POLL = "500 millis"
const TERMINAL = new Set(["completed", "failed", "cancelled"])

export const isFinished = (job: JobInfo): boolean => TERMINAL.has(job.state)

/** Polls job `id` until completed, failed or cancelled, updating `progress` with its processed / total. */
export const followJob = (id: string, progress: Progress) =>
  Effect.gen(function* () {
    const jobs = yield* Jobs
    let noted = false
    while (true) {
      const found = yield* jobs.get(id)
      if (Option.isNone(found)) return yield* new NotFound({ message: `no job with id ${id}` })
      const job = found.value
      if (job.state === "queued" && !noted) {
        noted = true
        progress.note(`job ${id} is queued: a worker runs it (npx optimizer worker, or npx optimizer start)`)
      }
      if (job.processed !== null) progress.update(job.processed, job.total)
      if (isFinished(job)) return job
      yield* Effect.sleep(POLL)
    }
  })
