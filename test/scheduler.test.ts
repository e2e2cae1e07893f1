/**
 * The scheduler's runs as operators and the frontend see them: `GET /scheduler/runs` (viewer) and
 * `npx optimizer runs --json`, over the same database, after runs recorded by the core scheduler.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Scheduler } from "@optimizer/core"
import { startFakeMessageWhiz, type FakeMessageWhiz } from "./fakes/messagewhiz.ts"
import { call, startTestApp, type TestApp } from "./support/app.ts"

const BIN = fileURLToPath(new URL("../packages/adapters-cli/bin/optimizer.js", import.meta.url))

let app: TestApp
let viewer: string
let mw: FakeMessageWhiz

beforeAll(async () => {
  // MessageWhiz refuses the key: a run of the daily MessageWhiz schedule is recorded failed, saying why.
  mw = await startFakeMessageWhiz({ apiKey: "another-key" })
  app = await startTestApp({ MMD_API_KEY: "mmd-key", MMD_API_URL: mw.url })
  viewer = await app.createKey("viewer")
  await app.runtime.runPromise(Effect.ignore(Scheduler.use((s) => s.runNow("mmd-daily"))))
})
afterAll(async () => {
  await app.close()
  await mw.close()
})

describe("scheduler runs", () => {
  it("GET /scheduler/runs lists them, newest first, for a viewer", async () => {
    const res = await call(app.url, viewer, "/scheduler/runs?schedule=mmd-daily&limit=5")
    expect(res.status).toBe(200)
    const body = (await res.json()) as { items: Array<Record<string, unknown>> }
    expect(body.items).toHaveLength(1)
    expect(body.items[0]).toMatchObject({
      schedule: "mmd-daily",
      outcome: "failed",
      error: "messagewhiz answered 401 to GET /api/3/Broadcast/List: API key missing or invalid",
      counts: null
    })
    expect(typeof body.items[0]!.startedAt).toBe("string")
    expect((await call(app.url, undefined, "/scheduler/runs")).status).toBe(401)
    expect((await call(app.url, viewer, "/scheduler/runs?outcome=maybe")).status).toBe(400)
  })

  it("npx optimizer runs --json prints the same runs", async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [BIN, "runs", "--json", "--limit", "5"],
        { env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "Warn", DATABASE_URL: app.db.url }, timeout: 60_000 },
        (error, out, err) =>
          resolve({
            code: error === null ? 0 : typeof error.code === "number" ? error.code : 1,
            stdout: out,
            stderr: err
          })
      )
    )
    expect(stderr).toBe("")
    expect(code).toBe(0)
    const runs = (JSON.parse(stdout) as { items: Array<Record<string, unknown>> }).items
    expect(runs.map((r) => [r.schedule, r.outcome])).toEqual([["mmd-daily", "failed"]])
  })
})
