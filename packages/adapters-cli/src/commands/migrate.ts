import { Effect, Redacted } from "effect"
import { Command, Flag } from "effect/cli"
import { migrate } from "@optimizer/core"
import { printJson, printLines } from "../output.ts"
import { settingsWithDatabase } from "../runtime.ts"

export const runMigrations = Effect.fn("runMigrations")(function* (url: string) {
  return yield* Effect.tryPromise({
    try: () => migrate(url),
    catch: (cause) => new Error((cause as Error)?.message ?? String(cause))
  })
})

export const migrateCommand = Command.make(
  "migrate",
  { json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON")) },
  ({ json }) =>
    Effect.scoped(
      Effect.gen(function* () {
        const settings = yield* settingsWithDatabase
        const result = yield* runMigrations(Redacted.value(settings.database!.url))
        if (json) return yield* printJson(result)
        yield* printLines(
          result.applied.length === 0
            ? `schema is up to date (${result.alreadyApplied} migrations already applied)`
            : `applied ${result.applied.length} migration(s): ${result.applied.join(", ")}`
        )
      })
    )
).pipe(Command.withDescription("Apply the database migrations in sql/ (idempotent)"))
