/**
 * Settings and services for a command. Commands that need the database use DATABASE_URL / DB_HOST
 * when set; otherwise the quick start's embedded PostgreSQL (./.optimizer/pg), which is started —
 * or reused when the quick start is already running — so `npx optimizer keys create` works next
 * to `npx optimizer start` with nothing configured.
 */
import { Effect, Result } from "effect"
import { appLayer, DEFAULT_DATABASE_TIMEOUTS, parseSettings, type AppServices, type AppSettings } from "@optimizer/core"
import { EmbeddedPostgres } from "@optimizer/embedded-postgres"

export const EMBEDDED_DATA_DIR = process.env.OPTIMIZER_EMBEDDED_DIR ?? ".optimizer/pg"
export const EMBEDDED_PORT = Number(process.env.OPTIMIZER_EMBEDDED_PORT ?? 54320)

export const loadSettings = Effect.suspend(() => {
  const parsed = parseSettings(process.env)
  return Result.isSuccess(parsed) ? Effect.succeed(parsed.success) : Effect.fail(parsed.failure)
})

/** The settings with a database: the configured one, or the embedded server (started for the scope). */
export const settingsWithDatabase = Effect.gen(function* () {
  const settings = yield* loadSettings
  if (settings.database !== undefined) return settings
  const server = yield* EmbeddedPostgres.start({
    dataDir: EMBEDDED_DATA_DIR,
    port: EMBEDDED_PORT,
    log: (l) => process.stderr.write(`${l}\n`)
  }).pipe(Effect.mapError((e) => new Error(`could not start the embedded PostgreSQL: ${e.message}`)))
  return {
    ...settings,
    database: { url: server.url, poolMax: 10, timeouts: DEFAULT_DATABASE_TIMEOUTS }
  } satisfies AppSettings
})

/** Runs `effect` with every core service, on the configured or embedded database. */
export const withServices = <A, E>(effect: Effect.Effect<A, E, AppServices>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const settings = yield* settingsWithDatabase
      return yield* effect.pipe(Effect.provide(appLayer(settings)))
    })
  )
