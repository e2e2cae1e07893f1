/**
 * API keys against a real database: a flood of made-up keys (well-formed, unknown) does not push the
 * real keys out of the authentication cache, and an unknown key stays unknown.
 */
import { Effect, Layer, ManagedRuntime, Option, References, Result } from "effect"
import { randomBytes } from "node:crypto"
import { describe, expect, it } from "vitest"
import { useDatabaseWithClient } from "../../../../test/support/database.ts"
import { ApiKeys } from "../../src/auth/ApiKeys.ts"
import { AppConfig, parseSettings } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"

const database = useDatabaseWithClient()

const madeUpKey = () => `opt_${randomBytes(6).toString("hex").slice(0, 8)}_${randomBytes(32).toString("base64url")}`

describe("ApiKeys.authenticate", () => {
  it("keeps known keys cached through a flood of 12,000 unknown ones", async () => {
    const parsed = parseSettings({ DATABASE_URL: database.db.url })
    if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
    const runtime = ManagedRuntime.make(
      ApiKeys.layerWith({ cacheTtlMs: 3_600_000 }).pipe(
        Layer.provideMerge(DatabaseLayer),
        Layer.provide(Layer.succeed(AppConfig, parsed.success)),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
      )
    )
    try {
      const outcome = await runtime.runPromise(
        Effect.gen(function* () {
          const keys = yield* ApiKeys
          const real = yield* keys.create({ name: "dashboard", role: "viewer" })
          const first = yield* keys.authenticate(real.key)
          for (let i = 0; i < 12_000; i++) {
            const principal = yield* keys.authenticate(madeUpKey())
            if (Option.isSome(principal)) return yield* Effect.die("a made-up key was accepted")
          }
          // Revoked behind this process's back: the cached answer shows the cache survived the flood.
          yield* Effect.promise(() =>
            database.client.query("UPDATE api_keys SET revoked_at = now() WHERE id = $1", [real.id])
          )
          return { first, afterFlood: keys.authenticateCached(real.key) }
        })
      )
      expect(Option.getOrUndefined(outcome.first)?.role).toBe("viewer")
      expect(outcome.afterFlood).toBeDefined()
      expect(Option.getOrUndefined(outcome.afterFlood!)?.name).toBe("dashboard")
    } finally {
      await runtime.dispose()
    }
  })
})
