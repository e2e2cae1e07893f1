/**
 * The HTTP app on a real loopback port over a database of its own, as the frontend would reach it.
 *
 *   const app = await startTestApp({ AES_KEY: "…" })
 *   const admin = await app.createKey("admin")
 *   await fetch(`${app.url}/get-metrics`, { headers: { authorization: `Bearer ${admin}` } })
 *   afterAll(() => app.close())
 */
import { Effect, Result } from "effect"
import { ApiKeys, makeRuntime, parseSettings, type AppRuntime, type Env, type Role } from "@optimizer/core"
import { startHttpServer } from "@optimizer/adapters-http"
import { createTestDatabase, type TestDatabase } from "./database.ts"

export interface TestApp {
  readonly url: string
  readonly db: TestDatabase
  readonly runtime: AppRuntime
  readonly createKey: (role: Role) => Promise<string>
  readonly close: () => Promise<void>
}

export const startTestApp = async (
  env: Env = {},
  options: {
    /** The URL the app reaches its database by, from the test database's (e.g. through a proxy). */
    readonly databaseUrl?: (url: string) => string
  } = {}
): Promise<TestApp> => {
  const db = await createTestDatabase()
  const parsed = parseSettings({ LOG_LEVEL: "Warn", ...env, DATABASE_URL: options.databaseUrl?.(db.url) ?? db.url })
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  const runtime = makeRuntime(parsed.success)
  const server = await startHttpServer(runtime, {
    port: 0,
    hostname: "127.0.0.1",
    corsOrigins: parsed.success.corsOrigins,
    version: "test",
    log: { pretty: false, level: parsed.success.logLevel },
    http: parsed.success.http,
    // Every JSON 200/202 a test receives has been checked against its route's declared schema.
    validateResponses: true
  })
  return {
    url: server.url,
    db,
    runtime,
    createKey: (role) =>
      runtime.runPromise(ApiKeys.use((k) => k.create({ name: `test-${role}`, role })).pipe(Effect.map((k) => k.key))),
    close: async () => {
      await server.close(1000)
      await runtime.dispose()
      await db.drop()
    }
  }
}

/** fetch with an API key; JSON body when `json` is given. */
export const call = (
  base: string,
  key: string | undefined,
  path: string,
  init: {
    method?: string
    json?: unknown
    headers?: Record<string, string>
    body?: string | Uint8Array | FormData | Blob
  } = {}
) => {
  const headers: Record<string, string> = { ...(init.headers ?? {}) }
  if (key !== undefined) headers.authorization = `Bearer ${key}`
  let body = init.body
  if (init.json !== undefined) {
    headers["content-type"] = "application/json"
    body = JSON.stringify(init.json)
  }
  return fetch(`${base}${path}`, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    ...(body === undefined ? {} : { body })
  })
}
