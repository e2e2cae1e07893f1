/**
 * MessageWhiz end to end as the frontend and the cron call it: HTTP → core → the fake MessageWhiz and
 * the fake Voluum over real HTTP → PostgreSQL. The cost push (sums per campaign over all of a day's
 * broadcasts, one request per campaign, idempotent, dry run, a refused campaign, broadcasts without a
 * known link reported and skipped), the day snapshot (file, file record, stats, re-run replaces, at most
 * one Voluum call per campaign and window), its files and downloads, the scheduler's `mmd-daily` run,
 * the live SSE stream (events, heartbeats during a slow upstream, work stopped on disconnect), and
 * `npx optimizer mmd …` over the same database and fakes.
 */
import { execFile } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Scheduler, type Env } from "@optimizer/core"
import { TEST_AES_KEY } from "./fakes/seed.ts"
import { broadcast, startFakeMessageWhiz, type FakeMessageWhiz } from "./fakes/messagewhiz.ts"
import { startFakeVoluum, type FakeVoluum } from "./fakes/voluum.ts"
import { call, startTestApp, type TestApp } from "./support/app.ts"

let voluum: FakeVoluum
let mw: FakeMessageWhiz
let app: TestApp
let operator: string
let viewer: string
let storageDir: string
let db: pg.Client
let env: Env

const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T

const CAMPAIGN_A = "2213facf-7ebb-42b1-b1c5-eea60c5f9076"
const CAMPAIGN_B = "8c1e0d6a-1b2c-4d3e-8f90-0a1b2c3d4e5f"
const CAMPAIGN_C = "0f0e0d0c-0b0a-4909-8807-060504030201"
const DAY = "2025-05-01"

interface CostBody {
  total_rows: number
  updates: Array<{
    index: string
    rows: number
    campaign_id: string
    total_cost: number
    chunk: string
    response: number | null
    error?: string
    request: Record<string, unknown>
  }>
  date: string
  dry_run: boolean
  currency: string
  broadcasts: number
  skipped: Array<{ broadcast_id: string; name: string; reason: string }>
  failed: number
}

beforeAll(async () => {
  voluum = await startFakeVoluum()
  mw = await startFakeMessageWhiz()
  storageDir = await mkdtemp(join(tmpdir(), "optimizer-mmd-"))
  mw.state.links.push(
    { id: 1, url: `https://trk.example.com/${CAMPAIGN_A}?Phone={recipients.id}` },
    // Not a `.com` host and a path with "m/": the original's cut after the first "m/" got both wrong.
    { id: 2, url: `https://t.example.org/m/${CAMPAIGN_B}?Phone={recipients.id}` },
    { id: 3, url: `https://go.example.co.uk/${CAMPAIGN_C}` }
  )
  const DLR = { sent: 1000, delivered: 900, undelivered: 60, rejected: 40 }
  const b = (
    id: number,
    time: string,
    linkId: number | undefined,
    realPrice: number,
    extra: { state?: number; noDlr?: boolean } = {}
  ) =>
    broadcast({
      id,
      name: `DE_60k_LV_chunk#${id}.csv`,
      sendDate: `${DAY}T${time}:00.000Z`,
      ...(linkId === undefined ? {} : { linkId }),
      realPrice,
      ...(extra.state === undefined ? {} : { state: extra.state }),
      ...(extra.noDlr === true ? {} : { dlr: DLR })
    })
  mw.state.broadcasts.push(
    b(101, "09:05", 1, 12_345),
    b(102, "10:05", 1, 1_000, { state: 0 }), // unsent states still cost what they cost
    b(103, "11:05", 1, 55),
    b(104, "09:35", 1, 0), // same campaign and hour as 101: one Voluum totals call for both
    b(201, "12:05", 2, 20_000),
    b(202, "13:05", 2, 333, { noDlr: true }),
    b(301, "14:05", 3, 7_77),
    b(401, "15:05", undefined, 9_999), // no link: skipped
    b(402, "16:05", 99, 9_999), // unknown link: skipped
    broadcast({ id: 900, sendDate: "2025-05-02T00:30:00.000Z", linkId: 1, realPrice: 50_000 }),
    broadcast({ id: 800, sendDate: "2025-04-30T23:30:00.000Z", linkId: 1, realPrice: 50_000 })
  )
  env = {
    STORAGE_DIR: storageDir,
    AES_KEY: TEST_AES_KEY,
    VOLUUM_ACCESS_ID: voluum.state.credentials.accessId,
    VOLUUM_ACCESS_KEY: voluum.state.credentials.accessKey,
    VOLUUM_API_URL: voluum.url,
    VOLUUM_REQUESTS_PER_SECOND: "1000",
    MMD_API_KEY: mw.state.apiKey,
    MMD_API_URL: mw.url,
    MMD_REQUESTS_PER_SECOND: "1000",
    MMD_COST_CURRENCY: "eur",
    MMD_STREAM_HEARTBEAT_SECONDS: "1"
  }
  app = await startTestApp(env)
  operator = await app.createKey("operator")
  viewer = await app.createKey("viewer")
  db = new pg.Client({ connectionString: app.db.url })
  await db.connect()
  voluum.state.campaignTotals.set(CAMPAIGN_A, { visits: 500, uniqueVisits: 450, Click2Reg: 3.14159, Reg2FTD: 12.5 })
  voluum.state.campaignTotals.set(CAMPAIGN_B, { visits: "70", uniqueVisits: 60, Click2Reg: 1, Reg2FTD: 0 })
}, 60_000)

afterAll(async () => {
  await db?.end()
  await app?.close()
  await mw?.close()
  await voluum?.close()
  await rm(storageDir, { recursive: true, force: true })
})

describe("GET /update-costs-for-mmd", () => {
  const costs = (query: string) => call(app.url, operator, `/update-costs-for-mmd${query}`)

  it("sets each campaign's summed real price for the day, one request per campaign, with the original's keys", async () => {
    const res = await costs(`?date=${DAY}`)
    expect(res.status).toBe(200)
    const body = await json<CostBody>(res)
    expect(body).toMatchObject({ total_rows: 3, date: DAY, dry_run: false, currency: "EUR", broadcasts: 9, failed: 0 })
    // Newest first: C (14:05), then B (13:05), then A (11:05).
    expect(body.updates.map((u) => [u.index, u.campaign_id, u.rows, u.total_cost, u.chunk, u.response])).toEqual([
      ["0", CAMPAIGN_C, 1, 7.77, "DE_60k_LV_chunk#301.csv", 204],
      ["1", CAMPAIGN_B, 2, 203.33, "DE_60k_LV_chunk#202.csv", 204],
      ["2", CAMPAIGN_A, 4, 134, "DE_60k_LV_chunk#103.csv", 204]
    ])
    expect(body.skipped.map((s) => s.broadcast_id).sort()).toEqual(["401", "402"])
    expect(body.skipped.find((s) => s.broadcast_id === "402")!.reason).toContain("link 99")
    expect(voluum.state.count("/report/cost")).toBe(3)
    expect(voluum.state.costUpdates[0]).toEqual({
      campaignId: CAMPAIGN_C,
      from: "2025-05-01T00:00:00Z",
      to: "2025-05-02T00:00:00Z",
      timezone: "Etc/GMT",
      cost: 7.77,
      currency: "EUR"
    })
    expect(mw.state.requests.every((r) => r.headers.get("apikey") === mw.state.apiKey)).toBe(true)
  })

  it("a second run sets the same costs: Voluum's state does not change", async () => {
    const before = new Map(voluum.state.costs)
    expect(before.size).toBe(3)
    const res = await costs(`?date=${DAY}`)
    expect(res.status).toBe(200)
    expect(voluum.state.count("/report/cost")).toBe(6)
    expect(new Map(voluum.state.costs)).toEqual(before)
    expect(before.get(`${CAMPAIGN_A}|2025-05-01T00:00:00Z|2025-05-02T00:00:00Z`)).toEqual({
      cost: 134,
      currency: "EUR"
    })
  })

  it("dry_run shows what would be sent and sends nothing", async () => {
    const sent = voluum.state.count("/report/cost")
    const body = await json<CostBody>(await costs(`?date=${DAY}&dry_run=true`))
    expect(body.dry_run).toBe(true)
    expect(body.updates.map((u) => u.response)).toEqual([null, null, null])
    expect(body.updates[1]!.request).toMatchObject({ campaignId: CAMPAIGN_B, cost: 203.33, currency: "EUR" })
    expect(voluum.state.count("/report/cost")).toBe(sent)
  })

  it("a campaign Voluum refuses is reported with its status; the others are still set", async () => {
    voluum.state.inject({
      path: "/report/cost",
      status: 417,
      count: 1,
      body: { error: { code: "NO_VISITS_PERIOD", description: "no visits in the period" } }
    })
    const body = await json<CostBody>(await costs(`?date=${DAY}`))
    expect(body.failed).toBe(1)
    expect(body.updates[0]).toMatchObject({ campaign_id: CAMPAIGN_C, response: 417 })
    expect(body.updates[0]!.error).toContain("NO_VISITS_PERIOD")
    expect(body.updates.slice(1).map((u) => u.response)).toEqual([204, 204])
  })

  it("defaults to yesterday (UTC); a day without broadcasts pushes nothing", async () => {
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)
    const body = await json<CostBody>(await costs(""))
    expect(body).toMatchObject({ date: yesterday, total_rows: 0, updates: [], broadcasts: 0 })
  })

  it("rejects a malformed date, a viewer key, and rides out MessageWhiz 429s", async () => {
    const bad = await costs("?date=2025-02-30")
    expect(bad.status).toBe(400)
    expect((await call(app.url, viewer, "/update-costs-for-mmd")).status).toBe(403)
    mw.state.inject({ path: "/api/3/Broadcast/List", status: 429, count: 2, retryAfter: "0" })
    const res = await costs(`?date=${DAY}&dry_run=1`)
    expect(res.status).toBe(200)
    expect((await json<CostBody>(res)).total_rows).toBe(3)
  })
})

/** Voluum campaign-totals calls so far, as `campaign|from|to`. */
const totalsCalls = () =>
  voluum.state.requests
    .filter((r) => r.path === "/report" && r.query.get("filter1") === "campaign")
    .map((r) => `${r.query.get("filter1Value")}|${r.query.get("from")}|${r.query.get("to")}`)

describe("MessageWhiz snapshots", () => {
  const snapshot = (day: string) => call(app.url, operator, `/save-data-for-specific-date?previous_date=${day}`)

  it("writes the day's sent broadcasts with their Voluum totals: file, file record and stats", async () => {
    const before = totalsCalls().length
    const res = await snapshot(DAY)
    expect(res.status).toBe(200)
    const body = await json<{
      broadcast_count: number
      file_id: string
      filename: string
      skipped: Array<{ broadcast_id: string }>
    }>(res)
    // 101, 103, 104 (A), 201, 202 (B), 301 (C); 102 is unsent (state 0); 401 and 402 have no known link.
    expect(body).toMatchObject({ broadcast_count: 6, filename: "MMD_Data_2025-05-01.csv", date: DAY })
    expect(body.skipped.map((s) => s.broadcast_id).sort()).toEqual(["401", "402"])
    // One call per (campaign, window): A at 09:00 (101 and 104) and 11:00, B at 12:00 and 13:00, C at 14:00.
    const calls = totalsCalls().slice(before)
    expect(calls).toHaveLength(5)
    expect(new Set(calls).size).toBe(5)
    expect(calls).toContain(`${CAMPAIGN_A}|2025-05-01T09:00:00Z|2025-05-02T09:00:00Z`)

    const csv = await (await call(app.url, viewer, `/${body.file_id}/download-broadcasts-history`)).text()
    const lines = csv.trim().split("\n")
    expect(lines[0]).toBe(
      ",Campaign ID,Broadcast ID,Name,Send Date,Estimated Price,Recipient Count,BC Unique Clicks,BC Total Clicks,CTR,DLR Delivered Count,DLR Sent Count,DLR Undelivered Count,DLR Rejected Count,Voluum Visits,Voluum Unique Visits,Click 2 REG,Reg 2 FTD,message_body"
    )
    expect(lines).toHaveLength(7)
    const row101 = lines.find((l) => l.includes(",101,"))!
    expect(row101).toMatch(
      new RegExp(
        `^\\d,${CAMPAIGN_A},101,DE_60k_LV_chunk#101.csv,2025-05-01T09:05:00,42,1000,10,12,1%,900,1000,60,40,500,450,3.14%,12.5%,Hi! Your bonus \\{\\{link:1\\}\\} STOP=stop$`
      )
    )
    expect(lines.find((l) => l.includes(",202,"))).toContain(",0,0,0,0,70,60,1%,0%,")

    const stats = await db.query(`SELECT * FROM broadcast_campaign_stats ORDER BY broadcast_id`)
    expect(stats.rows.map((r) => r.broadcast_id)).toEqual(["101", "103", "104", "201", "202", "301"])
    expect(stats.rows[0]).toMatchObject({
      campaign_id: CAMPAIGN_A,
      name: "DE_60k_LV_chunk#101.csv",
      estimated_price: 42,
      ctr: 1,
      dlr_delivered_count: 900,
      voluum_visits: 500,
      click_2_reg: 3.14,
      reg_2_ftd: 12.5
    })
    expect(new Date(stats.rows[0].send_date).toISOString()).toBe("2025-05-01T09:05:00.000Z")
    const files = await db.query(
      `SELECT filename, raw_file_path, data_date, number_of_broadcasts FROM api_mmd_broadcasts_files`
    )
    expect(files.rows).toEqual([
      {
        filename: "MMD_Data_2025-05-01.csv",
        raw_file_path: "broadcasts/MMD_Data_2025-05-01.csv",
        data_date: "2025-05-01/T00:00:00.000Z",
        number_of_broadcasts: 6
      }
    ])
  })

  it("a re-run of the day replaces the file record and updates the stats, never duplicates", async () => {
    voluum.state.campaignTotals.set(CAMPAIGN_C, { visits: 9, uniqueVisits: 8, Click2Reg: 0, Reg2FTD: 0 })
    const res = await snapshot(DAY)
    expect(res.status).toBe(200)
    const { rows: files } = await db.query(`SELECT id::text AS id FROM api_mmd_broadcasts_files`)
    expect(files).toHaveLength(1)
    expect(files[0].id).toBe((await json<{ file_id: string }>(res)).file_id)
    const { rows } = await db.query(`SELECT broadcast_id, voluum_visits FROM broadcast_campaign_stats`)
    expect(rows).toHaveLength(6)
    expect(rows.find((r) => r.broadcast_id === "301")!.voluum_visits).toBe(9)
  })

  it("lists the files newest first and downloads them by id; unknown ids are 404, bad ones 400", async () => {
    const list = await json<{ items: Array<Record<string, unknown>> }>(await call(app.url, viewer, "/files-broadcasts"))
    expect(list.items).toHaveLength(1)
    expect(Object.keys(list.items[0]!).sort()).toEqual([
      "data_date",
      "filename",
      "id",
      "number_of_broadcasts",
      "uploaded_at"
    ])
    expect(list.items[0]).toMatchObject({ filename: "MMD_Data_2025-05-01.csv", number_of_broadcasts: 6 })
    const res = await call(app.url, viewer, `/${String(list.items[0]!.id)}/download-broadcasts-history`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-disposition")).toContain("MMD_Data_2025-05-01.csv")
    expect(
      (await call(app.url, viewer, "/00000000-0000-4000-8000-000000000000/download-broadcasts-history")).status
    ).toBe(404)
    expect((await call(app.url, viewer, "/nope/download-broadcasts-history")).status).toBe(400)
  })

  it("a day without broadcasts is a 404, a missing or bad date a 400, a viewer a 403", async () => {
    const res = await snapshot("2025-03-01")
    expect(res.status).toBe(404)
    expect(JSON.stringify(await res.json())).toContain("no sent broadcasts on 2025-03-01")
    expect((await call(app.url, operator, "/save-data-for-specific-date")).status).toBe(400)
    expect((await snapshot("01-05-2025")).status).toBe(400)
    expect((await call(app.url, viewer, "/save-data-for-previous-date")).status).toBe(403)
  })
})

describe("the scheduler's mmd-daily run", () => {
  it("pushes yesterday's costs and snapshots it, recorded succeeded with its counts", async () => {
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)
    mw.state.broadcasts.push(
      broadcast({ id: 5001, sendDate: `${yesterday}T00:10:00.000Z`, linkId: 1, realPrice: 250 }),
      broadcast({ id: 5002, sendDate: `${yesterday}T00:20:00.000Z`, linkId: 2, realPrice: 150, state: 2 })
    )
    const summary = await app.runtime.runPromise(Scheduler.use((s) => s.runNow("mmd-daily")))
    expect(summary.outcome).toBe("success")
    const runs = await json<{ items: Array<Record<string, unknown>> }>(
      await call(app.url, viewer, "/scheduler/runs?schedule=mmd-daily")
    )
    expect(runs.items[0]).toMatchObject({
      outcome: "success",
      counts: {
        costs: { date: yesterday, campaigns: 2, broadcasts: 2, skipped: 0, totalCost: 4, currency: "EUR" },
        snapshot: { date: yesterday, broadcasts: 1, skipped: 0 }
      }
    })
    expect(
      voluum.state.costs.get(
        `${CAMPAIGN_A}|${yesterday}T00:00:00Z|${new Date(Date.now()).toISOString().slice(0, 10)}T00:00:00Z`
      )
    ).toEqual({
      cost: 2.5,
      currency: "EUR"
    })
  })
})

/** Reads an SSE response into its blocks (events and comments) as they arrive. */
const sseBlocks = async (
  res: Response,
  until: (blocks: ReadonlyArray<string>) => boolean = () => false
): Promise<Array<string>> => {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  const blocks: Array<string> = []
  let text = ""
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return blocks
    text += decoder.decode(value, { stream: true })
    let end: number
    while ((end = text.indexOf("\n\n")) >= 0) {
      blocks.push(text.slice(0, end))
      text = text.slice(end + 2)
    }
    if (until(blocks)) {
      await reader.cancel()
      return blocks
    }
  }
}

const dataOf = (blocks: ReadonlyArray<string>) =>
  blocks.filter((b) => b.startsWith("data: {")).map((b) => JSON.parse(b.slice(6)) as Record<string, unknown>)

describe("GET /get-live-broadcasts-stream", () => {
  const today = new Date().toISOString().slice(0, 10)
  const at = (second: number) => `${today}T00:00:${String(second).padStart(2, "0")}.000Z`

  it("streams today's sent broadcasts grouped by name before _chunk, errors for unknown links, then done", async () => {
    mw.state.broadcasts.push(
      broadcast({ id: 7001, name: "LIVE_UK_LV_chunk#2.csv", sendDate: at(50), linkId: 1 }),
      broadcast({ id: 7002, name: "live_uk_lv_chunk#9.csv", sendDate: at(49), linkId: 2, state: 2 }),
      broadcast({ id: 7003, name: "LIVE_DE_chunk#1.csv", sendDate: at(48), linkId: 99 }),
      broadcast({ id: 7004, name: "LIVE_UK_LV_chunk#1.csv", sendDate: at(47), linkId: 1 }),
      broadcast({ id: 7005, name: "OTHER_chunk#1.csv", sendDate: at(46), linkId: 1 })
    )
    const res = await call(app.url, viewer, "/get-live-broadcasts-stream?search=live")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toContain("text/event-stream")
    const blocks = await sseBlocks(res)
    const events = dataOf(blocks)
    expect(events.map((e) => [e.type, e.broadcast])).toEqual([
      ["row", "LIVE_UK_LV"],
      ["row", "LIVE_UK_LV"],
      ["broadcast_done", "LIVE_UK_LV"],
      ["error", "LIVE_DE"],
      ["broadcast_done", "LIVE_DE"]
    ])
    expect((events[0]!.row as Record<string, unknown>)["Broadcast ID"]).toBe(7001)
    expect((events[0]!.row as Record<string, unknown>)["Voluum Visits"]).toBe(500)
    expect(events[3]!.error).toContain("link 99")
    expect(blocks.at(-1)).toBe("event: done\ndata: completed")
  })

  it("sends heartbeats while Voluum is slow", async () => {
    mw.state.broadcasts.push(broadcast({ id: 7101, name: "SLOW_chunk#1.csv", sendDate: at(45), linkId: 3 }))
    voluum.state.inject({ path: "/report", count: 1, delayMs: 3_500 })
    const blocks = await sseBlocks(await call(app.url, viewer, "/get-live-broadcasts-stream?search=slow"))
    const firstRow = blocks.findIndex((b) => b.startsWith("data: {"))
    expect(firstRow).toBeGreaterThan(0)
    // Heartbeats every second (MMD_STREAM_HEARTBEAT_SECONDS=1) while the Voluum call waits 3.5 s.
    expect(blocks.slice(0, firstRow).filter((b) => b === ": heartbeat").length).toBeGreaterThanOrEqual(3)
    expect(dataOf(blocks).map((e) => e.type)).toEqual(["row", "broadcast_done"])
    expect(blocks.at(-1)).toBe("event: done\ndata: completed")
  }, 20_000)

  it("stops working when the client disconnects", async () => {
    for (let i = 0; i < 20; i++) {
      const id = 100 + i
      mw.state.links.push({
        id,
        url: `https://trk.example.com/aaaaaaaa-0000-4000-8000-${String(id).padStart(12, "0")}`
      })
      mw.state.broadcasts.push(
        broadcast({ id: 7200 + i, name: `MANY_chunk#${i}.csv`, sendDate: at(40 - i), linkId: id })
      )
    }
    // Every campaign is new: each broadcast needs a Voluum call, each call takes 300 ms.
    voluum.state.inject({ path: "/report", count: 20, delayMs: 300 })
    const before = totalsCalls().length
    const blocks = await sseBlocks(await call(app.url, viewer, "/get-live-broadcasts-stream?search=many"), (b) =>
      b.some((x) => x.startsWith("data: {"))
    )
    expect(dataOf(blocks)).toHaveLength(1)
    await new Promise((r) => setTimeout(r, 1_000))
    const afterDisconnect = totalsCalls().length - before
    await new Promise((r) => setTimeout(r, 1_500))
    const later = totalsCalls().length - before
    expect(later).toBe(afterDisconnect)
    expect(later).toBeLessThan(5)
  }, 20_000)
})

const BIN = fileURLToPath(new URL("../packages/adapters-cli/bin/optimizer.js", import.meta.url))

/** `optimizer …` as a shell runs it, with the test app's settings and database. */
const optimizer = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "Error", ...env, DATABASE_URL: app.db.url },
        timeout: 60_000
      },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
    )
  )

describe("npx optimizer mmd", { timeout: 120_000 }, () => {
  it("costs --dry-run --json shows the day's updates and sends nothing", async () => {
    const sent = voluum.state.count("/report/cost")
    const run = await optimizer(["mmd", "costs", "--date", DAY, "--dry-run", "--json"])
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    const body = JSON.parse(run.stdout) as CostBody
    expect(body).toMatchObject({ total_rows: 3, dry_run: true, date: DAY })
    expect(voluum.state.count("/report/cost")).toBe(sent)
  })

  it("snapshot --date writes the day; files lists it; a day without broadcasts fails with the reason", async () => {
    const run = await optimizer(["mmd", "snapshot", "--date", DAY])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("saved 6 broadcasts of 2025-05-01 to MMD_Data_2025-05-01.csv")
    const files = await optimizer(["mmd", "files", "--json"])
    expect(files.code).toBe(0)
    expect((JSON.parse(files.stdout) as { items: Array<{ filename: string }> }).items.map((f) => f.filename)).toContain(
      "MMD_Data_2025-05-01.csv"
    )
    const none = await optimizer(["mmd", "snapshot", "--date", "2025-03-01"])
    expect(none.code).not.toBe(0)
    expect(none.stderr + none.stdout).toContain("no sent broadcasts on 2025-03-01")
  })

  it("live --search prints the stream's events as they arrive", async () => {
    const run = await optimizer(["mmd", "live", "--search", "live_uk", "--json"])
    expect(run.code).toBe(0)
    const events = run.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; broadcast: string })
    expect(events.map((e) => e.type)).toEqual(["row", "row", "broadcast_done"])
    const plain = await optimizer(["mmd", "live", "--search", "live_de"])
    expect(plain.stdout).toContain("LIVE_DE  error: broadcast 7003: link 99 is not in MessageWhiz's link list")
  })
})
