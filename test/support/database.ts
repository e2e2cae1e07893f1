/**
 * A migrated PostgreSQL database of its own for a test file (or a test): cloned from the template
 * that `globalSetup.ts` migrated, so test files run in parallel without seeing each other's rows.
 *
 *   const db = await createTestDatabase()   // db.url: postgres://…/optimizer_t_…
 *   afterAll(() => db.drop())
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { afterAll, beforeAll, inject } from "vitest"
import { adminUrl, dropDatabase, withDatabase } from "./pgUrls.ts"

export interface TestDatabase {
  readonly url: string
  readonly name: string
  readonly drop: () => Promise<void>
}

export const createTestDatabase = async (): Promise<TestDatabase> => {
  const serverUrl = inject("pgServerUrl")
  const template = inject("pgTemplateDatabase")
  const name = `optimizer_t_${randomBytes(6).toString("hex")}`
  const admin = new pg.Client({ connectionString: adminUrl(serverUrl) })
  await admin.connect()
  try {
    // Two clones of one template at the same instant can collide ("source database is being accessed").
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`)
        break
      } catch (e) {
        if (attempt >= 20) throw e
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100))
      }
    }
  } finally {
    await admin.end()
  }
  return { url: withDatabase(serverUrl, name), name, drop: () => dropDatabase(serverUrl, name) }
}

/** A database of the file's own and a plain client on it: made before the file's tests, dropped after. */
export class DatabaseWithClient {
  db!: TestDatabase
  client!: pg.Client
}

export const useDatabaseWithClient = (): DatabaseWithClient => {
  const handle = new DatabaseWithClient()
  beforeAll(async () => {
    handle.db = await createTestDatabase()
    handle.client = new pg.Client({ connectionString: handle.db.url })
    await handle.client.connect()
  })
  afterAll(async () => {
    await handle.client?.end()
    await handle.db?.drop()
  })
  return handle
}
