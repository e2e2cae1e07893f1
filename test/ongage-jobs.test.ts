/**
 * Ongage CSV jobs over HTTP with API keys, a worker process and the fake Ongage: the original's
 * paths, keys and messages (upload's 400 naming missing columns, PATCH's 400s, start/pause/resume),
 * 404 for an unknown job, 409 for a PATCH of a running one, archive, and a job the worker drips to
 * Ongage until it is `completed`.
 */
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CSV_JOB_HEADERS } from "@optimizer/core"
import { startFakeOngage, type FakeOngage } from "./fakes/ongage.ts"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let app: TestApp
let worker: TestWorker | undefined
let fake: FakeOngage
let operator: string
let viewer: string
let client: pg.Client

beforeAll(async () => {
  fake = await startFakeOngage()
  const env = {
    LIST_ID: fake.state.credentials.listId,
    X_USERNAME: fake.state.credentials.username,
    X_PASSWORD: fake.state.credentials.password,
    X_ACCOUNT_CODE: fake.state.credentials.accountCode,
    ONGAGE_API_URL: fake.url
  }
  app = await startTestApp(env)
  operator = await app.createKey("operator")
  viewer = await app.createKey("viewer")
  client = new pg.Client({ connectionString: app.db.url })
  await client.connect()
  worker = await startTestWorker({ ...env, DATABASE_URL: app.db.url })
})

afterAll(async () => {
  await worker?.close()
  await client?.end()
  await app?.close()
  await fake?.close()
})

const csvOf = (n: number, prefix: string) =>
  [
    CSV_JOB_HEADERS.join(","),
    ...Array.from({ length: n }, (_, i) => `112233,${prefix}${i + 1}@example.com,UK,GB_FTD,4477,FTD,web,live,u${i}`)
  ].join("\n")

const upload = (content: string, filename = "contacts.csv", key = operator) => {
  const form = new FormData()
  form.append("file", new Blob([content]), filename)
  return call(app.url, key, "/csv-jobs/upload", { body: form })
}
const post = (path: string, key = operator) => call(app.url, key, path, { method: "POST" })
const patch = (id: string, query: string) => call(app.url, operator, `/csv-jobs/${id}?${query}`, { method: "PATCH" })
const detail = async (res: Response) => ((await res.json()) as { detail: string }).detail

describe("Ongage CSV jobs over HTTP", () => {
  it("uploads with the original's answer, and refuses files by name with nothing left behind", async () => {
    const res = await upload(csvOf(3, "u"))
    expect(res.status).toBe(200)
    const body = (await res.json()) as { job_id: string }
    expect(body).toEqual({
      ok: true,
      job_id: body.job_id,
      original_filename: "contacts.csv",
      total_records: 3,
      status: "draft"
    })

    const before = Number((await client.query("SELECT count(*) FROM csv_jobs")).rows[0].count)
    const missing = await upload(csvOf(2, "m").replace("List_ID", "list_id"))
    expect(missing.status).toBe(400)
    expect(await detail(missing)).toContain("Missing required columns: List_ID")
    const empty = await upload("")
    expect(empty.status).toBe(400)
    const txt = await upload(csvOf(1, "t"), "contacts.txt")
    expect(txt.status).toBe(400)
    expect(await detail(txt)).toBe("Only .csv files are allowed")
    expect(Number((await client.query("SELECT count(*) FROM csv_jobs")).rows[0].count)).toBe(before)

    expect((await upload(csvOf(1, "v"), "x.csv", viewer)).status).toBe(403)
  })

  it("PATCH, start, pause, resume and archive answer as the original; unknown jobs are 404", async () => {
    const { job_id } = (await (await upload(csvOf(5, "p"))).json()) as { job_id: string }
    let res = await patch(job_id, "interval_seconds=60&lower_limit=5&upper_limit=4")
    expect(res.status).toBe(400)
    expect(await detail(res)).toBe("upper_limit must be >= lower_limit")
    res = await patch(job_id, "interval_seconds=59&lower_limit=1&upper_limit=1")
    expect(res.status).toBe(400)
    expect(await detail(res)).toBe("Interval Time must be greater than 60 seconds")
    expect((await patch(job_id, "interval_seconds=60&lower_limit=1")).status).toBe(400)
    expect((await patch("no-such-job", "interval_seconds=60&lower_limit=1&upper_limit=1")).status).toBe(404)
    res = await patch(job_id, "interval_seconds=600&lower_limit=2&upper_limit=3")
    expect(await res.json()).toEqual({ ok: true, job_id })

    expect((await post(`/csv-jobs/${job_id}/resume`)).status).toBe(400)
    res = await post(`/csv-jobs/${job_id}/start`)
    expect(await res.json()).toEqual({ ok: true, status: "running" })
    expect((await patch(job_id, "interval_seconds=60&lower_limit=1&upper_limit=1")).status).toBe(409)
    res = await post(`/csv-jobs/${job_id}/start`)
    expect(res.status).toBe(400)
    expect(await detail(res)).toBe("Job not in a startable state")
    res = await post(`/csv-jobs/${job_id}/pause`)
    expect(await res.json()).toEqual({ ok: true, status: "paused" })
    res = await post(`/csv-jobs/${job_id}/pause`)
    expect(await detail(res)).toBe("Job not running")
    res = await post(`/csv-jobs/${job_id}/resume`)
    expect(await res.json()).toEqual({ ok: true, status: "running" })
    expect((await post("/csv-jobs/nope/start")).status).toBe(404)

    res = await post(`/csv-jobs/${job_id}/archive`)
    expect(await res.json()).toEqual({ ok: true, status: "archived" })
    const list = (await (await call(app.url, viewer, "/csv-jobs")).json()) as { items: Array<{ id: string }> }
    expect(list.items.map((j) => j.id)).not.toContain(job_id)
    const all = (await (await call(app.url, viewer, "/csv-jobs?include_archived=true")).json()) as {
      items: Array<{ id: string }>
    }
    expect(all.items.map((j) => j.id)).toContain(job_id)
  })

  it("the worker drips a running job to Ongage until it is completed, a rejected email recorded with its reason", async () => {
    fake.state.failures.set("d3@example.com", "Invalid email")
    const { job_id } = (await (await upload(csvOf(12, "d"))).json()) as { job_id: string }
    // A one-second interval for a quick test (the API's minimum is 60 s).
    await client.query("UPDATE csv_jobs SET interval_seconds = 1, lower_limit = 4, upper_limit = 6 WHERE id = $1", [
      job_id
    ])
    expect((await post(`/csv-jobs/${job_id}/start`)).status).toBe(200)
    const until = Date.now() + 20_000
    let job: Record<string, unknown> = {}
    while (Date.now() < until) {
      job = (await (await call(app.url, viewer, `/csv-jobs/${job_id}`)).json()) as Record<string, unknown>
      if (job.status === "completed") break
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(job).toMatchObject({
      status: "completed",
      total_records: 12,
      sent: 11,
      failed: 1,
      remaining: 0,
      next_run_at: null
    })
    expect(job.failures).toEqual([
      { seq: 3, email: "d3@example.com", list_id: "112233", error_message: "Invalid email" }
    ])
    const items = (
      (await (await call(app.url, viewer, "/csv-jobs")).json()) as { items: Array<Record<string, unknown>> }
    ).items
    expect(Object.keys(items.find((j) => j.id === job_id)!)).toEqual(
      expect.arrayContaining([
        "id",
        "original_filename",
        "status",
        "total_records",
        "uploaded_at",
        "interval_seconds",
        "lower_limit",
        "upper_limit",
        "sent",
        "failed",
        "remaining",
        "next_run_at"
      ])
    )
    const emails = fake.state.received.map((c) => c.email).filter((e) => e.startsWith("d"))
    expect(emails).toEqual(Array.from({ length: 12 }, (_, i) => `d${i + 1}@example.com`))
  }, 40_000)
})
