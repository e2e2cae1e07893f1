/**
 * The main pool's limits against a real PostgreSQL: an API process's statements end at
 * `DB_STATEMENT_TIMEOUT_SECONDS` as a `DatabaseError` marked unavailable (HTTP 503), a process that
 * runs jobs gets the job limit, idle transactions are bounded; a wrong statement is a plain
 * `DatabaseError` (HTTP 500) whose message never reaches a client.
 */
import { Effect, Layer, ManagedRuntime, References, Result } from "effect"
import { SqlClient } from "effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { platformLayer } from "../../src/AppLayer.ts"
import { parseSettings, type Env } from "../../src/platform/Config.ts"
import { toDatabaseError } from "../../src/platform/Database.ts"

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(() => db?.drop())

const runtimeFor = (env: Env, role: "api" | "worker") => {
  const parsed = parseSettings({ LOG_LEVEL: "Error", ...env, DATABASE_URL: db.url })
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  return ManagedRuntime.make(
    platformLayer(parsed.success, { role, jobs: { supervise: false, schedule: false } }).pipe(
      Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Error"))
    )
  )
}

const show = (setting: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ value: string }>(`SELECT current_setting('${setting}') AS value`)
    return rows[0]!.value
  })

describe("the main pool's limits", () => {
  it("an API process: a statement past DB_STATEMENT_TIMEOUT_SECONDS is a DatabaseError marked unavailable", async () => {
    const runtime = runtimeFor(
      { DB_STATEMENT_TIMEOUT_SECONDS: "1", DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: "30" },
      "api"
    )
    try {
      const outcome = await runtime.runPromise(
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const statement = yield* show("statement_timeout")
          const idle = yield* show("idle_in_transaction_session_timeout")
          const slow = yield* sql`SELECT pg_sleep(3)`.pipe(
            Effect.mapError((e) => toDatabaseError(e)),
            Effect.flip
          )
          return { statement, idle, slow }
        })
      )
      expect(outcome.statement).toBe("1s")
      expect(outcome.idle).toBe("30s")
      expect(outcome.slow._tag).toBe("DatabaseError")
      expect(outcome.slow.unavailable).toBe(true)
    } finally {
      await runtime.dispose()
    }
  })

  it("a worker process: the job limit (none by default), no idle-transaction limit; a wrong statement is not 'unavailable'", async () => {
    const runtime = runtimeFor({ DB_STATEMENT_TIMEOUT_SECONDS: "1" }, "worker")
    try {
      const outcome = await runtime.runPromise(
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const statement = yield* show("statement_timeout")
          const idle = yield* show("idle_in_transaction_session_timeout")
          yield* sql`SELECT pg_sleep(1.5)`
          const wrong = yield* sql`SELECT * FROM no_such_table`.pipe(
            Effect.mapError((e) => toDatabaseError(e)),
            Effect.flip
          )
          return { statement, idle, wrong }
        })
      )
      expect(outcome.statement).toBe("0")
      expect(outcome.idle).toBe("0")
      expect(outcome.wrong.unavailable).toBeUndefined()
      expect(outcome.wrong.message).toMatch(/no_such_table/)
    } finally {
      await runtime.dispose()
    }
  })
})
