/**
 * The HLR benchmark's worker: a process of its own, as a job worker is, so that its peak RSS is the
 * run's. Runs the real HLR job (`Hlr.runJob`) on the processed file FILE_ID of DATABASE_URL against
 * the fake provider at HLR_API_URL — numbers read, one batch, results streamed into the store, parsed
 * and applied (lists with moves and audit, live rows, cache, clean file) — then, as the reference,
 * the list import of the same numbers through `Lists` into REFERENCE_DATABASE_URL. Prints one JSON line.
 */
import { Effect, Layer, ManagedRuntime, Result, Stream } from "effect"
import {
  AppConfig,
  DatabaseLayer,
  FileStore,
  Hlr,
  HLR_QUEUE,
  HlrClient,
  Jobs,
  Lists,
  parseSettings,
  RiskyOperators,
  type Env
} from "@optimizer/core"

const env: Env = { ...process.env, LOG_LEVEL: "Warn" }
const parsed = parseSettings(env)
if (Result.isFailure(parsed)) throw parsed.failure
const settings = parsed.success
const platform = Layer.mergeAll(Jobs.layerNoWorkers, FileStore.layer).pipe(
  Layer.provideMerge(DatabaseLayer),
  Layer.provideMerge(Layer.succeed(AppConfig, settings))
)
const runtime = ManagedRuntime.make(
  Hlr.layerNoDeps.pipe(
    Layer.provideMerge(Layer.mergeAll(HlrClient.layer, Lists.layer, RiskyOperators.layer)),
    Layer.provideMerge(platform)
  )
)
await runtime.runPromise(Effect.void)

let peak = process.memoryUsage().rss
const trace = process.env.HLR_MEM_TRACE !== undefined
const t00 = performance.now()
let lastTrace = 0
const sampler = setInterval(() => {
  const m = process.memoryUsage()
  peak = Math.max(peak, m.rss)
  if (trace && performance.now() - lastTrace > 500) {
    lastTrace = performance.now()
    const mb = (n: number) => Math.round(n / 1048576)
    process.stderr.write(
      `mem ${((lastTrace - t00) / 1000).toFixed(1)}s rss=${mb(m.rss)} heapTotal=${mb(m.heapTotal)} heapUsed=${mb(m.heapUsed)} external=${mb(m.external)} arrayBuffers=${mb(m.arrayBuffers)}\n`
    )
  }
}, 50)

const fileId = process.env.FILE_ID!
const started = await runtime.runPromise(Hlr.use((hlr) => hlr.start(fileId)))
const runAt = await runtime.runPromise(Hlr.use((hlr) => hlr.status(fileId)))
const cpuBefore = process.cpuUsage()
const t0 = performance.now()
const result = await runtime.runPromise(
  Hlr.use((hlr) =>
    hlr.runJob({
      id: started.job_id,
      queue: HLR_QUEUE,
      data: { file_id: fileId, run: runAt.hlr_started_at!.toISOString() },
      attempt: 1,
      progress: () => Effect.void
    })
  )
)
const ms = performance.now() - t0
const endedAt = Date.now()
const cpu = process.cpuUsage(cpuBefore)
peak = Math.max(peak, process.memoryUsage().rss)
clearInterval(sampler)
await runtime.dispose()

// The reference: the same numbers written to the blacklist by the list import, on a fresh database.
const referenceSettings = parseSettings({ DATABASE_URL: process.env.REFERENCE_DATABASE_URL, LOG_LEVEL: "Warn" })
if (Result.isFailure(referenceSettings)) throw referenceSettings.failure
const reference = ManagedRuntime.make(
  Lists.layer.pipe(Layer.provide(DatabaseLayer), Layer.provide(Layer.succeed(AppConfig, referenceSettings.success)))
)
await reference.runPromise(Effect.void)
const count = Number(process.env.ROWS)
const prefix = process.env.PREFIX!
function* numbers() {
  for (let i = 0; i < count; i++)
    yield { phone: `${prefix}${String(i).padStart(8, "0")}`, reason: "BENCH", source: "bench" }
}
const r0 = performance.now()
await reference.runPromise(
  Lists.use((lists) =>
    lists.importNumbers("blacklist", Stream.fromIterable(numbers()), { actor: "bench", mode: "manual" })
  )
)
const referenceMs = performance.now() - r0
await reference.dispose()

process.stdout.write(
  JSON.stringify({
    ms,
    endedAt,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMb: Math.round(peak / 1048576),
    referenceMs,
    result
  }) + "\n"
)
