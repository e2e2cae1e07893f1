/**
 * The Voluum syncs as the frontend and the cron call them, end to end: HTTP → job → worker → the fake
 * Voluum and Ongage over real HTTP → PostgreSQL. Classification into the lists, idempotency, 429
 * storms and 5xx bursts, token renewal, Ongage 412s, month-end ranges, and the not-configured 503.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Env } from "@optimizer/core"
import { startFakeOngage, type FakeOngage } from "./fakes/ongage.ts"
import {
  classificationScenario,
  conversionRow,
  conversionScenario,
  reportRow,
  TEST_AES_KEY,
  TRAFFIC_SOURCE_A,
  TRAFFIC_SOURCE_B,
  type Category
} from "./fakes/seed.ts"
import { startFakeVoluum, type FakeVoluum } from "./fakes/voluum.ts"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let voluum: FakeVoluum
let ongage: FakeOngage
let app: TestApp
let worker: TestWorker
let operator: string
let viewer: string
let db: pg.Client
let storageDir: string

const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T

const post = (path: string, body: unknown, key = operator) => call(app.url, key, path, { json: body })

const listOf = async (phone: string) => {
  const { rows } = await db.query<{ list: string }>(
    `SELECT 'blacklist' AS list FROM blacklist WHERE custom_variable_1 = $1
     UNION ALL SELECT 'whitelist' FROM whitelist WHERE custom_variable_1 = $1
     UNION ALL SELECT 'monitor' FROM monitor WHERE custom_variable_1 = $1`,
    [phone]
  )
  return rows.map((r) => r.list)
}

const waitForJob = async (jobId: string, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const job = await json<{ state: string; result: unknown; error: string | null }>(
      await call(app.url, viewer, `/jobs/${jobId}`)
    )
    if (["completed", "failed", "cancelled"].includes(job.state)) return job
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.state}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

beforeAll(async () => {
  voluum = await startFakeVoluum()
  ongage = await startFakeOngage()
  storageDir = await mkdtemp(join(tmpdir(), "optimizer-voluum-"))
  const env: Env = {
    STORAGE_DIR: storageDir,
    AES_KEY: TEST_AES_KEY,
    VOLUUM_ACCESS_ID: voluum.state.credentials.accessId,
    VOLUUM_ACCESS_KEY: voluum.state.credentials.accessKey,
    VOLUUM_API_URL: voluum.url,
    VOLUUM_TRAFFIC_SOURCE_IDS: `${TRAFFIC_SOURCE_A},${TRAFFIC_SOURCE_B}`,
    VOLUUM_REQUESTS_PER_SECOND: "1000",
    LIST_ID: ongage.state.credentials.listId,
    X_USERNAME: ongage.state.credentials.username,
    X_PASSWORD: ongage.state.credentials.password,
    X_ACCOUNT_CODE: ongage.state.credentials.accountCode,
    ONGAGE_API_URL: ongage.url
  }
  app = await startTestApp(env)
  worker = await startTestWorker({ ...env, DATABASE_URL: app.db.url })
  operator = await app.createKey("operator")
  viewer = await app.createKey("viewer")
  db = new pg.Client({ connectionString: app.db.url })
  await db.connect()
}, 60_000)

afterAll(async () => {
  await db?.end()
  await worker?.close()
  await app?.close()
  await ongage?.close()
  await voluum?.close()
  await rm(storageDir, { recursive: true, force: true })
})

describe("POST /sync-voluum-reports", () => {
  const scenario = classificationScenario()
  const expected = new Map<string, Category>([...scenario.expected, ["447700900203", "BLACKLIST"]])
  const DAY = { from_date: "2025-05-01T00:00:00.000Z", to_date: "2025-05-02T00:00:00.000Z" }

  it("classifies and moves every number exactly as the rule table says, answering the original's keys", async () => {
    voluum.state.reportRows.push(...scenario.rows)
    const res = await post("/sync-voluum-reports", DAY)
    expect(res.status).toBe(200)
    const body = await json<{
      row_counts: Record<string, number>
      job_id: string
      unknown_rows: number
      invalid_phones: number
      undecryptable_tokens: number
      kept_sticky: number
    }>(res)
    const n = (c: Category) => [...expected.values()].filter((v) => v === c).length
    expect(body.row_counts).toEqual({
      blacklist_rows: n("BLACKLIST"),
      monitor_rows: n("MONITOR"),
      whitelist_rows: n("WHITELIST")
    })
    expect(body).toMatchObject({
      unknown_rows: n("UNKNOWN"),
      invalid_phones: 2,
      undecryptable_tokens: 0,
      kept_sticky: 0
    })
    expect(body.job_id).toMatch(/^[0-9a-f-]{36}$/)
    for (const [phone, category] of expected) {
      const want = category === "UNKNOWN" ? [] : [category.toLowerCase()]
      expect({ phone, lists: await listOf(phone) }).toEqual({ phone, lists: want })
    }
  })

  it("a second identical sync changes nothing", async () => {
    const audit = Number((await db.query("SELECT count(*) AS n FROM list_audit")).rows[0].n)
    const res = await post("/sync-voluum-reports", DAY)
    expect(res.status).toBe(200)
    const body = await json<{ lists: Record<string, Record<string, number>> }>(res)
    for (const list of ["blacklist", "whitelist", "monitor"]) {
      expect(body.lists[list]).toMatchObject({ added: 0, moved: 0, updated: 0 })
    }
    expect(Number((await db.query("SELECT count(*) AS n FROM list_audit")).rows[0].n)).toBe(audit)
  })

  it("rides out a 429 storm and a 5xx burst within the retry budget", async () => {
    voluum.state.reportRows.push({
      trafficSourceId: TRAFFIC_SOURCE_A,
      at: new Date("2025-05-06T10:00:00Z"),
      fields: reportRow({ customVariable1: "447700900801", osVersion: "Android 13" })
    })
    const before = voluum.state.requests.length
    // One request meets 2 throttles and 2 server errors: the client's 4 retries absorb them, the job runs once.
    voluum.state.inject({ path: "/report", status: 429, count: 2, retryAfter: "0" })
    voluum.state.inject({ path: "/report", status: 503, count: 2 })
    const res = await post("/sync-voluum-reports", {
      from_date: "2025-05-06T00:00:00Z",
      to_date: "2025-05-07T00:00:00Z"
    })
    expect(res.status).toBe(200)
    const body = await json<{ row_counts: Record<string, number>; job_id: string }>(res)
    expect(body.row_counts.whitelist_rows).toBe(1)
    const statuses = voluum.state.requests.slice(before).map((r) => r.status)
    expect(statuses.filter((s) => s === 429)).toHaveLength(2)
    expect(statuses.filter((s) => s === 503)).toHaveLength(2)
    expect(await listOf("447700900801")).toEqual(["whitelist"])
    expect((await json<{ attempts: number }>(await call(app.url, viewer, `/jobs/${body.job_id}`))).attempts).toBe(1)
  })

  it("a longer 429 storm (Retry-After honoured) on the conversions report also ends in success", async () => {
    const at = new Date("2025-10-07T10:00:00Z")
    voluum.state.conversions.push({
      at,
      fields: conversionRow({ at, clickId: "STORM1", transactionId: "TXS1", customVariable1: "447700900905" })
    })
    voluum.state.inject({ path: "/report/conversions", status: 429, count: 4, retryAfter: "0" })
    const res = await post("/sync-voluum-conversions", {
      from_date: "2025-10-07T00:00:00Z",
      to_date: "2025-10-08T00:00:00Z"
    })
    expect(res.status).toBe(200)
    const body = await json<{ inserted: number; job_id: string }>(res)
    expect(body.inserted).toBe(1)
    expect((await json<{ attempts: number }>(await call(app.url, viewer, `/jobs/${body.job_id}`))).attempts).toBe(1)
  })

  it("renews an expired token once", async () => {
    voluum.state.reportRows.push({
      trafficSourceId: TRAFFIC_SOURCE_B,
      at: new Date("2025-05-07T10:00:00Z"),
      fields: reportRow({ customVariable1: "447700900802", osVersion: "Windows 10" })
    })
    voluum.state.revokeTokens()
    const auths = voluum.state.authCalls
    const res = await post("/sync-voluum-reports", {
      from_date: "2025-05-07T00:00:00Z",
      to_date: "2025-05-08T00:00:00Z"
    })
    expect(res.status).toBe(200)
    expect(voluum.state.authCalls).toBe(auths + 1)
    expect(await listOf("447700900802")).toEqual(["monitor"])
  })

  it("answers 400 for a window off the hour, and 202 with the job when asked not to wait", async () => {
    const bad = await post("/sync-voluum-reports", {
      from_date: "2025-05-01T00:30:00Z",
      to_date: "2025-05-02T00:00:00Z"
    })
    expect(bad.status).toBe(400)
    expect((await json<{ detail: string }>(bad)).detail).toMatch(/whole hour/)
    const queued = await call(app.url, operator, "/sync-voluum-reports?wait_seconds=0", { json: DAY })
    expect(queued.status).toBe(202)
    const body = await json<{ job_id: string; status: string }>(queued)
    expect(body.status).toBe("queued")
    expect((await waitForJob(body.job_id)).state).toBe("completed")
  })

  it("a viewer may not sync", async () => {
    expect((await post("/sync-voluum-reports", DAY, viewer)).status).toBe(403)
  })
})

describe("POST /sync-voluum-reports_for_range", () => {
  it("queues one job per day and rolls over the month's end", async () => {
    voluum.state.reportRows.push(
      {
        trafficSourceId: TRAFFIC_SOURCE_A,
        at: new Date("2025-04-29T12:00:00Z"),
        fields: reportRow({ customVariable1: "447700900811", osVersion: "IOS 9" })
      },
      {
        trafficSourceId: TRAFFIC_SOURCE_A,
        at: new Date("2025-04-30T23:00:00Z"),
        fields: reportRow({ customVariable1: "447700900812", osVersion: "Android 8.0" })
      }
    )
    const res = await post("/sync-voluum-reports_for_range", { year: 2025, month: 4, start_day: 29, end_day: 31 })
    expect(res.status).toBe(200)
    const body = await json<{ status: string; job_ids: Array<string>; windows: Array<{ from: string; to: string }> }>(
      res
    )
    expect(body.status).toBe("success")
    expect(body.windows).toEqual([
      { from: "2025-04-29T00:00:00Z", to: "2025-04-30T00:00:00Z" },
      { from: "2025-04-30T00:00:00Z", to: "2025-05-01T00:00:00Z" }
    ])
    for (const id of body.job_ids) expect((await waitForJob(id)).state).toBe("completed")
    expect(await listOf("447700900811")).toEqual(["blacklist"])
    expect(await listOf("447700900812")).toEqual(["monitor"])
  })

  it("refuses a day the month does not have", async () => {
    const res = await post("/sync-voluum-reports_for_range", { year: 2025, month: 4, start_day: 1, end_day: 32 })
    expect(res.status).toBe(400)
    expect((await json<{ detail: string }>(res)).detail).toMatch(/end_day/)
  })
})

describe("POST /sync-voluum-conversions", () => {
  const OCT_1 = { from_date: "2025-10-01T00:00:00.000Z", to_date: "2025-10-02T00:00:00.000Z" }
  let sentBefore = 0

  it("stores the conversions, pushes the GB converters and answers the original's keys", async () => {
    voluum.state.conversions.push(...conversionScenario().conversions)
    sentBefore = ongage.state.received.length
    const res = await post("/sync-voluum-conversions", OCT_1)
    expect(res.status).toBe(200)
    const body = await json<Record<string, unknown>>(res)
    expect(body.row_counts).toEqual({ successful_rows: 4, unsuccessful_rows: 2 })
    expect(body).toMatchObject({ fetched: 7, inserted: 7, other_countries: 1, ongage: "pushed" })
    expect(ongage.state.received.length - sentBefore).toBe(4)
  })

  it("a second identical sync sends nothing again", async () => {
    const res = await post("/sync-voluum-conversions", OCT_1)
    expect(res.status).toBe(200)
    expect((await json<{ row_counts: unknown }>(res)).row_counts).toEqual({ successful_rows: 0, unsuccessful_rows: 0 })
    expect(ongage.state.received.length - sentBefore).toBe(4)
  })

  it("an Ongage 412 marks only the failed emails; a 429 from Ongage is waited out", async () => {
    const at = new Date("2025-10-05T10:00:00Z")
    for (const [i, phone] of ["447700900901", "447700900902", "447700900903"].entries()) {
      const when = new Date(at.getTime() + i * 60_000)
      voluum.state.conversions.push({
        at: when,
        fields: conversionRow({ at: when, clickId: `CLK9${i}`, transactionId: `TX9${i}`, customVariable1: phone })
      })
    }
    ongage.state.failures.set("+447700900902@yourmobile.com", "Invalid email")
    ongage.state.inject({ status: 429, count: 2, retryAfter: "0" })
    const res = await post("/sync-voluum-conversions", {
      from_date: "2025-10-05T00:00:00Z",
      to_date: "2025-10-06T00:00:00Z"
    })
    expect(res.status).toBe(200)
    expect((await json<{ row_counts: unknown }>(res)).row_counts).toEqual({ successful_rows: 2, unsuccessful_rows: 1 })
    const rows = await db.query<{
      click_id: string
      processed: boolean
      error_message: string | null
      retry_count: number
    }>(
      "SELECT click_id, processed, error_message, retry_count FROM api_voluum_conversions WHERE click_id LIKE 'CLK9%' ORDER BY click_id"
    )
    expect(rows.rows).toEqual([
      { click_id: "CLK90", processed: true, error_message: null, retry_count: 0 },
      { click_id: "CLK91", processed: false, error_message: "ONGAGE_REJECTED: Invalid email", retry_count: 1 },
      { click_id: "CLK92", processed: true, error_message: null, retry_count: 0 }
    ])
    ongage.state.failures.clear()
  })

  it("queues one conversions job per day of a range", async () => {
    const res = await post("/sync-voluum-conversions-for-range", { year: 2025, month: 9, start_day: 30, end_day: 31 })
    expect(res.status).toBe(200)
    const body = await json<{ status: string; job_ids: Array<string>; windows: Array<{ from: string; to: string }> }>(
      res
    )
    expect(body.windows).toEqual([{ from: "2025-09-30T00:00:00Z", to: "2025-10-01T00:00:00Z" }])
    expect((await waitForJob(body.job_ids[0]!)).state).toBe("completed")
  })
})

describe("Voluum not configured", () => {
  let bare: TestApp
  let key: string
  beforeAll(async () => {
    bare = await startTestApp({ STORAGE_DIR: storageDir })
    key = await bare.createKey("operator")
  }, 60_000)
  afterAll(() => bare?.close())

  it("the sync endpoints answer 503 naming the missing variables; everything else keeps working", async () => {
    for (const [path, body] of [
      ["/sync-voluum-reports", {}],
      ["/sync-voluum-conversions", {}],
      ["/sync-voluum-reports_for_range", { year: 2025, month: 5, start_day: 1, end_day: 2 }],
      ["/sync-voluum-conversions-for-range", { year: 2025, month: 5, start_day: 1, end_day: 2 }]
    ] as const) {
      const res = await call(bare.url, key, path, { json: body })
      expect({ path, status: res.status }).toEqual({ path, status: 503 })
      const error = await json<{ detail: string; code: string }>(res)
      expect(error.code).toBe("NOT_CONFIGURED")
      expect(error.detail).toMatch(/VOLUUM_ACCESS_ID, VOLUUM_ACCESS_KEY/)
    }
    expect((await call(bare.url, key, "/get-metrics")).status).toBe(200)
    expect((await call(bare.url, key, "/smart-cleaning-files-voluum")).status).toBe(200)
    expect((await call(bare.url, key, "/reg-search/files")).status).toBe(200)
  })
})
