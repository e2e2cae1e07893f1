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
import { runCli, runCliJson } from "./support/cli.ts"

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

  it("runs now <schedule> runs a tick recorded like a cron one; the admin route queues one, never two", async () => {
    const env = { DATABASE_URL: app.db.url, MMD_API_KEY: "mmd-key", MMD_API_URL: mw.url }
    // The CLI queues the tick and runs it here (no scheduler process in this test): it fails as
    // MessageWhiz refuses the key, and is recorded in the runs as a tick would be.
    const now = await runCli(["runs", "now", "mmd-daily", "--json"], { env })
    expect(now.code).toBe(1)
    const answer = JSON.parse(now.stdout)
    expect(answer).toMatchObject({ schedule: "mmd-daily", status: "failed" })
    expect(answer.error).toMatch(/messagewhiz answered 401/)
    const runs = await runCliJson(["runs", "--json", "--schedule", "mmd-daily"], { env })
    expect(runs.items).toHaveLength(2)
    expect(runs.items[0]).toMatchObject({ schedule: "mmd-daily", outcome: "failed" })

    const admin = await app.createKey("admin")
    const queued = await call(app.url, admin, "/scheduler/mmd-daily/run-now", { method: "POST" })
    expect(queued.status).toBe(202)
    const tick = (await queued.json()) as { schedule: string; job_id: string; status: string }
    expect(tick).toMatchObject({ schedule: "mmd-daily", status: "queued" })
    // One run of a schedule at a time: a second one while the first is queued is refused.
    const again = await call(app.url, admin, "/scheduler/mmd-daily/run-now", { method: "POST" })
    expect(again.status).toBe(409)
    expect((await call(app.url, viewer, "/scheduler/mmd-daily/run-now", { method: "POST" })).status).toBe(403)
    expect((await call(app.url, admin, "/scheduler/weekly/run-now", { method: "POST" })).status).toBe(400)
    // Voluum is not configured here: its schedules are not active, and the answer says what to set.
    const inactive = await call(app.url, admin, "/scheduler/reports/run-now", { method: "POST" })
    expect(inactive.status).toBe(400)
    expect(((await inactive.json()) as { detail: string }).detail).toMatch(/VOLUUM_ACCESS_ID/)
    const cli = await runCli(["runs", "now", "mmd-daily", "--queue-only"], { env })
    expect(cli.code).toBe(1)
    expect(cli.stderr).toMatch(/already queued or running/)
    expect((await runCli(["runs", "now", "weekly"], { env })).code).toBe(2)
    // The queued tick is a job like any other: the CLI cancels it.
    const cancelled = await runCliJson(["jobs", "cancel", tick.job_id, "--json"], { env })
    expect(cancelled).toMatchObject({ id: tick.job_id, queue: "scheduler.mmd-daily", state: "cancelled" })
  })
})
