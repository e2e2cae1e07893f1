/**
 * The Effect API (the primary one): settings from an options object, the services as layers,
 * typed errors in the error channel.
 *
 *   DATABASE_URL=postgres://… node examples/effect.ts
 */
import { Effect, Layer } from "effect"
import { AppConfig, optimizerSettings } from "@optimizer/core/config"
import { Lists, ListsRepository } from "@optimizer/core/lists"
import { migrate } from "@optimizer/core/migrations"
import { DatabaseLayer } from "@optimizer/core/platform"

const database = process.env["DATABASE_URL"]
if (database === undefined) throw new Error("set DATABASE_URL")
await migrate(database)

const settings = optimizerSettings({ database })
const services = Lists.layerNoDeps.pipe(
  Layer.provide(ListsRepository.layer),
  Layer.provideMerge(DatabaseLayer),
  Layer.provide(AppConfig.layerSettings(settings))
)

const program = Effect.gen(function* () {
  const lists = yield* Lists
  const explained = yield* lists.explain("+44 7700 900111")
  const counts = yield* lists.counts
  return { list: explained.list, counts }
}).pipe(
  Effect.catchTag("ValidationError", (e) => Effect.succeed({ invalid: e.message })),
  Effect.provide(services),
  // Start-up errors are typed too: an unmigrated database names both schema versions.
  Effect.catchTag("SchemaVersionMismatch", (e) => Effect.fail(`migrate first: ${e.applied} < ${e.expected}`))
)

console.log(await Effect.runPromise(program))
