/**
 * The list-import benchmark's worker: a process of its own, as an import job or the CLI is, so
 * that its peak RSS is the import's and not the benchmark's (which loads every benchmark and
 * their tools). Imports the benchmark's 1M typed numbers into the blacklist of DATABASE_URL through
 * the real service and prints one JSON line: wall time (the runtime is built first, not timed),
 * the process's CPU time, its peak RSS and the import's counts.
 */
import { Effect, Layer, ManagedRuntime, Result, Stream } from "effect"
// The three modules the import needs, not the package's index: the index loads every service
// (S3, SQS clients and the rest), ~30 MB more RSS than an import has to carry.
import { Lists } from "@optimizer/core/lists"
import { AppConfig, parseSettings } from "@optimizer/core/config"
import { DatabaseLayer } from "@optimizer/core/platform"
import { typedRows } from "./lists-data.ts"

const parsed = parseSettings({ DATABASE_URL: process.env.DATABASE_URL, LOG_LEVEL: "Warn" })
if (Result.isFailure(parsed)) throw parsed.failure
const runtime = ManagedRuntime.make(
  Lists.layer.pipe(Layer.provide(DatabaseLayer), Layer.provide(Layer.succeed(AppConfig, parsed.success)))
)
await runtime.runPromise(Effect.void)
const cpuBefore = process.cpuUsage()
const started = performance.now()
const counts = await runtime.runPromise(
  Lists.use((lists) =>
    lists.importNumbers("blacklist", Stream.fromIterable(typedRows()), {
      actor: "bench",
      mode: "manual",
      defaultCountry: "GB"
    })
  )
)
const ms = performance.now() - started
const cpu = process.cpuUsage(cpuBefore)
await runtime.dispose()
process.stdout.write(
  JSON.stringify({
    ms,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    counts: { total: counts.total, added: counts.added, moved: counts.moved, invalid: counts.invalid }
  }) + "\n"
)
