/**
 * Using the SDK from an Effect program: build the layer once from the environment, then call
 * services. Errors are typed: the compiler lists what can fail.
 */
import { Effect, Result } from "effect"
import { appLayer, Metrics, parseSettings } from "@optimizer/core"

const settings = parseSettings(process.env)
if (Result.isFailure(settings)) {
  console.error(settings.failure.message)
  process.exit(1)
}

const program = Effect.gen(function* () {
  const metrics = yield* Metrics
  const counts = yield* metrics.tableCounts
  console.log("blacklist [total, 24 h, 7 d]:", counts.blacklist)
}).pipe(Effect.catchTag("DatabaseError", (e) => Effect.sync(() => console.error("database:", e.message))))

await Effect.runPromise(program.pipe(Effect.provide(appLayer(settings.success))))
