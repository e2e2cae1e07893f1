/**
 * A busy MessageWhiz day end to end: 2,000 broadcasts (1 in 10 unsent) over 200 campaigns (chunks over 2 hours each)
 * snapshotted with at most one Voluum call per (campaign, window), and their costs pushed with one
 * call per campaign. `npm run bench -- mmd` measures the same at Voluum's documented rate.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { TEST_AES_KEY } from "./fakes/seed.ts"
import { seedBusyDay, startFakeMessageWhiz, type FakeMessageWhiz } from "./fakes/messagewhiz.ts"
import { startFakeVoluum, type FakeVoluum } from "./fakes/voluum.ts"
import { call, startTestApp, type TestApp } from "./support/app.ts"

let voluum: FakeVoluum
let mw: FakeMessageWhiz
let app: TestApp
let operator: string
let storageDir: string
let expected: { sent: number; windows: number }

beforeAll(async () => {
  voluum = await startFakeVoluum()
  mw = await startFakeMessageWhiz()
  storageDir = await mkdtemp(join(tmpdir(), "optimizer-mmd-scale-"))
  expected = seedBusyDay(mw.state, { day: "2025-06-01", campaigns: 200, perCampaign: 10, hoursPerCampaign: 2 })
  app = await startTestApp({
    STORAGE_DIR: storageDir,
    AES_KEY: TEST_AES_KEY,
    VOLUUM_ACCESS_ID: voluum.state.credentials.accessId,
    VOLUUM_ACCESS_KEY: voluum.state.credentials.accessKey,
    VOLUUM_API_URL: voluum.url,
    VOLUUM_REQUESTS_PER_SECOND: "1000",
    MMD_API_KEY: mw.state.apiKey,
    MMD_API_URL: mw.url,
    MMD_REQUESTS_PER_SECOND: "1000"
  })
  operator = await app.createKey("operator")
}, 60_000)

afterAll(async () => {
  await app?.close()
  await mw?.close()
  await voluum?.close()
  await rm(storageDir, { recursive: true, force: true })
})

describe("a day of 2,000 broadcasts over 200 campaigns", () => {
  it("is snapshotted with one Voluum call per (campaign, window)", async () => {
    expect(mw.state.broadcasts).toHaveLength(2000)
    const started = Date.now()
    const res = await call(app.url, operator, "/save-data-for-specific-date?previous_date=2025-06-01")
    const ms = Date.now() - started
    expect(res.status).toBe(200)
    expect((await res.json()) as Record<string, unknown>).toMatchObject({ broadcast_count: expected.sent, skipped: [] })
    const calls = voluum.state.requests.filter((r) => r.path === "/report" && r.query.get("filter1") === "campaign")
    const keys = calls.map((r) => `${r.query.get("filter1Value")}|${r.query.get("from")}|${r.query.get("to")}`)
    expect(new Set(keys).size).toBe(keys.length)
    expect(keys.length).toBe(expected.windows)
    const db = new pg.Client({ connectionString: app.db.url })
    await db.connect()
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM broadcast_campaign_stats")
    await db.end()
    expect(Number(rows[0]!.n)).toBe(expected.sent)
    console.info(`snapshot: ${expected.sent} rows, ${keys.length} Voluum calls, ${ms} ms`)
  }, 60_000)

  it("has its costs pushed with one call per campaign", async () => {
    const res = await call(app.url, operator, "/update-costs-for-mmd?date=2025-06-01")
    expect(res.status).toBe(200)
    const body = (await res.json()) as { total_rows: number; failed: number }
    expect(body).toMatchObject({ total_rows: 200, failed: 0 })
    expect(voluum.state.count("/report/cost")).toBe(200)
  }, 60_000)
})
