/**
 * The cleaning benchmark's worker: a process of its own, as a real worker is, so that its peak
 * RSS is the job's and not the benchmark's (which generated the files). Runs the job handler of one
 * queued file (env DATABASE_URL, STORAGE_DIR, FILE_ID, JOB_ID, RUN) and prints one JSON line: the
 * handler's wall time (the runtime is built first, not timed), the process's peak RSS, the stats.
 */
import { Effect, Result } from "effect"
import { Cleaning, makeRuntime, parseSettings } from "@optimizer/core"

const parsed = parseSettings(process.env)
if (Result.isFailure(parsed)) throw parsed.failure
const runtime = makeRuntime(parsed.success, { role: "worker" })
await runtime.runPromise(Effect.void)
const started = performance.now()
const result = await runtime.runPromise(
  Cleaning.use((cleaning) =>
    cleaning.runJob({
      id: process.env.JOB_ID!,
      queue: "cleaning.process",
      data: { file_id: process.env.FILE_ID!, run: process.env.RUN! },
      attempt: 1,
      progress: () => Effect.void
    })
  )
)
const ms = performance.now() - started
await runtime.dispose()
process.stdout.write(
  JSON.stringify({ ms, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024), status: result.status }) + "\n"
)
