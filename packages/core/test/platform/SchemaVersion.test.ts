/**
 * A service started on an unmigrated or older database fails with `SchemaVersionMismatch` naming
 * both versions; `SCHEMA_VERSION` is the highest migration the repository ships; the migrations are
 * found from the package's own root (never a host project's `sql/`).
 */
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Effect, Layer, ManagedRuntime, References } from "effect"
import pg from "pg"
import { afterAll, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { adminUrl, dropDatabase, withDatabase } from "../../../../test/support/pgUrls.ts"
import { inject } from "vitest"
import { AppConfig } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"
import { defaultMigrationsDir, migrate } from "../../src/platform/Migrations.ts"
import { optimizerSettings } from "../../src/platform/Options.ts"
import { SCHEMA_VERSION, SchemaVersionMismatch } from "../../src/platform/SchemaVersion.ts"

const repoSql = fileURLToPath(new URL("../../../../sql", import.meta.url))

const startOn = async (url: string) => {
  const runtime = ManagedRuntime.make(
    DatabaseLayer.pipe(
      Layer.provide(Layer.succeed(AppConfig, optimizerSettings({ database: url }))),
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "None"))
    )
  )
  try {
    return await runtime.runPromise(Effect.void).then(
      () => undefined,
      (error: unknown) => error
    )
  } finally {
    await runtime.dispose()
  }
}

const emptyDatabase = async (): Promise<{ url: string; drop: () => Promise<void> }> => {
  const serverUrl = inject("pgServerUrl")
  const name = `optimizer_empty_${process.pid}_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: adminUrl(serverUrl) })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  return { url: withDatabase(serverUrl, name), drop: () => dropDatabase(serverUrl, name) }
}

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup()
})

describe("schema version", () => {
  it("SCHEMA_VERSION is the highest migration file, and the migrations are the repository's sql/", () => {
    const versions = readdirSync(repoSql)
      .map((f) => /^(\d+)_.*\.sql$/.exec(f)?.[1])
      .filter((v) => v !== undefined)
      .map(Number)
    expect(SCHEMA_VERSION).toBe(Math.max(...versions))
    expect(defaultMigrationsDir()).toBe(repoSql)
  })

  it("an unmigrated database fails start-up with SchemaVersionMismatch (applied 0); after migrate() it starts", async () => {
    const db = await emptyDatabase()
    cleanups.push(db.drop)
    const error = await startOn(db.url)
    expect(error).toBeInstanceOf(SchemaVersionMismatch)
    expect(error).toMatchObject({ _tag: "SchemaVersionMismatch", applied: 0, expected: SCHEMA_VERSION })
    expect((error as SchemaVersionMismatch).message).toMatch(/migrat/)

    await migrate(db.url)
    expect(await startOn(db.url)).toBeUndefined()
  })

  it("an older database names the applied and the expected version", async () => {
    const db: TestDatabase = await createTestDatabase()
    cleanups.push(db.drop)
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    await client.query("DELETE FROM schema_migrations WHERE version = $1", [SCHEMA_VERSION])
    await client.end()
    const error = await startOn(db.url)
    expect(error).toMatchObject({
      _tag: "SchemaVersionMismatch",
      applied: SCHEMA_VERSION - 1,
      expected: SCHEMA_VERSION
    })
    expect((error as SchemaVersionMismatch).message).toContain(`version ${SCHEMA_VERSION - 1}`)
  })
})
