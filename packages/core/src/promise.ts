/**
 * A Promise facade over the SDK for services that do not use Effect: `createOptimizer(env)` builds
 * the services once; each method returns a Promise and rejects with the same tagged errors
 * (`error._tag`, `error.message`) the Effect API fails with.
 *
 *   const optimizer = await createOptimizer({ DATABASE_URL: "postgres://…" })
 *   const metrics = await optimizer.metrics()
 *   await optimizer.close()
 */
import { Effect, Result } from "effect"
import type { AppServices } from "./AppLayer.ts"
import { ApiKeys } from "./auth/ApiKeys.ts"
import { Metrics, type TableMetrics } from "./metrics/Metrics.ts"
import { parseSettings, type Env } from "./platform/Config.ts"
import { makeRuntime } from "./Runtime.ts"

export interface Optimizer {
  /** Runs any Effect of the SDK on this instance's services (the escape hatch to the full API). */
  readonly run: <A, E>(effect: Effect.Effect<A, E, AppServices>) => Promise<A>
  readonly metrics: () => Promise<TableMetrics>
  readonly authenticate: (apiKey: string) => Promise<{ keyId: string; name: string; role: string } | undefined>
  readonly close: () => Promise<void>
}

export const createOptimizer = async (env: Env = process.env): Promise<Optimizer> => {
  const parsed = parseSettings(env)
  if (Result.isFailure(parsed)) throw parsed.failure
  const runtime = makeRuntime(parsed.success)
  await runtime.runPromise(Effect.void)
  const run = <A, E>(effect: Effect.Effect<A, E, AppServices>) => runtime.runPromise(effect)
  return {
    run,
    metrics: () => run(Metrics.use((m) => m.tableCounts)),
    authenticate: (apiKey) =>
      run(ApiKeys.use((k) => k.authenticate(apiKey))).then((o) => (o._tag === "Some" ? o.value : undefined)),
    close: () => runtime.dispose()
  }
}
