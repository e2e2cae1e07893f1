/**
 * `/get-metrics`' counts against a real database: exact, and computed at most once per
 * `METRICS_MAX_AGE` however many callers poll (a dashboard polling every second must not hold the
 * database with full scans); a test clock moves time past the maximum age.
 */
import { Duration, Effect, Layer, ManagedRuntime, References, Result } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import { useDatabaseWithClient } from "../../../../test/support/database.ts"
import { METRICS_MAX_AGE, Metrics } from "../../src/metrics/Metrics.ts"
import { AppConfig, parseSettings } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"

const database = useDatabaseWithClient()

const addToBlacklist = (phone: string) =>
  database.client.query("INSERT INTO blacklist (custom_variable_1, reason, source) VALUES ($1, 'MANUAL', 'test')", [
    phone
  ])

describe("Metrics.tableCounts", () => {
  it("counts exactly, answers callers within METRICS_MAX_AGE from one count, and counts again after it", async () => {
    const parsed = parseSettings({ DATABASE_URL: database.db.url })
    if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
    const runtime = ManagedRuntime.make(
      Metrics.layer.pipe(
        Layer.provideMerge(DatabaseLayer),
        Layer.provide(Layer.succeed(AppConfig, parsed.success)),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
      )
    )
    try {
      await addToBlacklist("447700900001")
      const result = await runtime.runPromise(
        Effect.gen(function* () {
          const metrics = yield* Metrics
          const first = yield* metrics.tableCounts
          yield* Effect.promise(() => addToBlacklist("447700900002"))
          // Twenty dashboards at once, within the maximum age: the answer computed first, not the new row.
          const polled = yield* Effect.all(
            Array.from({ length: 20 }, () => metrics.tableCounts),
            {
              concurrency: "unbounded"
            }
          )
          yield* TestClock.adjust(Duration.sum(METRICS_MAX_AGE, Duration.seconds(1)))
          const later = yield* metrics.tableCounts
          return { first, polled, later }
        }).pipe(Effect.provide(TestClock.layer()))
      )
      expect(result.first.blacklist).toEqual([1, 1, 1])
      expect(result.first.whitelist).toEqual([0, 0, 0])
      for (const answer of result.polled) expect(answer.blacklist).toEqual([1, 1, 1])
      expect(result.later.blacklist).toEqual([2, 2, 2])
    } finally {
      await runtime.dispose()
    }
  })
})
