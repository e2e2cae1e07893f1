/**
 * The 13 smart-cleaning and REG-search endpoints as the frontend calls them (`docs/original-api.md`
 * "Smart cleaning", "REG search"): the original's response keys, its files (no header, `\r\n` lines, 2 columns for a country
 * entry), jobs instead of background tasks, dates compared as dates, normalised numbers.
 */
import { readdirSync } from "node:fs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Env } from "@optimizer/core"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let app: TestApp
let worker: TestWorker
let operator: string
let viewer: string
let db: pg.Client
let storageDir: string

const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T
const today = () => new Date().toISOString().slice(0, 10)

/** The UTC dates while `request` ran (two when it crossed midnight): a name the server dated is one of them. */
const datedAround = async <T>(request: () => Promise<T>) => {
  const before = today()
  const result = await request()
  return { result, days: [...new Set([before, today()])] }
}

const waitForJob = async (jobId: string) => {
  const deadline = Date.now() + 30_000
  for (;;) {
    const job = await json<{ state: string; result: Record<string, unknown> | null; error: string | null }>(
      await call(app.url, viewer, `/jobs/${jobId}`)
    )
    if (["completed", "failed", "cancelled"].includes(job.state)) return job
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.state}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

const conversion = (
  phone: string,
  type: "FTD" | "REG",
  offer: string,
  country: string,
  at: string,
  n: number
): Promise<unknown> =>
  db.query(
    `INSERT INTO api_voluum_conversions
       (click_id, transaction_id, conversion_type, custom_variable_1, offer_name, country_code, postback_timestamp, generated_email)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [`SC${n}`, `TX${n}`, type, phone, offer, country, at, `+${phone}@yourmobile.com`]
  )

beforeAll(async () => {
  storageDir = await mkdtemp(join(tmpdir(), "optimizer-smart-"))
  const env: Env = { STORAGE_DIR: storageDir }
  app = await startTestApp(env)
  worker = await startTestWorker({ ...env, DATABASE_URL: app.db.url })
  operator = await app.createKey("operator")
  viewer = await app.createKey("viewer")
  db = new pg.Client({ connectionString: app.db.url })
  await db.connect()

  // Whitelisted clickers: three in GB (one first listed with microseconds), one in FR.
  await db.query(`INSERT INTO whitelist (custom_variable_1, country_code, timestamp_created) VALUES
    ('447700900001', 'GB', '2025-05-01 10:00:00+00'),
    ('447700900002', 'GB', '2025-05-02 11:00:00.123456+00'),
    ('447700900003', 'GB', '2025-05-03 12:00:00+00'),
    ('33612345678', 'FR', '2025-05-01 09:00:00+00')`)
  let n = 0
  await conversion("447700900001", "FTD", "Offer A", "GB", "2025-05-05T10:00:00Z", ++n)
  await conversion("447700900002", "REG", "Offer A", "GB", "2025-05-05T11:00:00Z", ++n)
  await conversion("447700900003", "FTD", "Offer B", "GB", "2025-05-05T12:00:00Z", ++n)
  await conversion("447700900010", "REG", "Offer A", "GB", "2025-05-10T10:00:00Z", ++n)
  await conversion("447700900011", "REG", "Offer A", "GB", "2025-05-10T11:00:00Z", ++n)
  await conversion("447700900011", "FTD", "Offer A", "GB", "2025-05-11T11:00:00Z", ++n)
  await conversion("447700900012", "REG", "Offer B", "GB", "2025-05-10T12:00:00Z", ++n)
  await conversion("33612345678", "REG", "Offer F", "FR", "2025-05-10T12:00:00Z", ++n)
  // An un-substituted phone the original stored: never in a REG-only file.
  await conversion("{{phoneNumber}}", "REG", "Offer A", "GB", "2025-05-10T13:00:00Z", ++n)
  // A live click on Offer B in the last hour.
  await db.query(`INSERT INTO voluum_live_events (custom_variable_1, offer_name, "timestamp")
    VALUES ('447700900002', 'Offer B', now() - interval '1 hour')`)
}, 60_000)

afterAll(async () => {
  await db?.end()
  await worker?.close()
  await app?.close()
  await rm(storageDir, { recursive: true, force: true })
})

const SMART_KEYS = [
  "id",
  "original_filename",
  "status",
  "uploaded_at",
  "processing_started_at",
  "processed_at",
  "error_message",
  "record_count_total",
  "record_count_clean",
  "offer_count",
  "offers",
  "selected_offer"
].sort()

/** The stored files (relative paths) whose names hold `id`: its upload and each run's output. */
const storedFilesOf = (id: string): Array<string> =>
  readdirSync(storageDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.includes(id))
    .map((e) => relative(storageDir, join(e.parentPath, e.name)))

const smartItems = async (status?: string) =>
  (
    await json<{ items: Array<Record<string, unknown>> }>(
      await call(app.url, viewer, `/smart-cleaning-files-voluum${status === undefined ? "" : `?status=${status}`}`)
    )
  ).items

const processSmart = async (id: string, offers: Array<string>, query = "") => {
  const res = await call(app.url, operator, `/${id}/process-smart-cleaning-files-voluum${query}`, { json: { offers } })
  expect(res.status).toBe(200)
  const body = await json<{ ok: boolean; file_id: string; status: string; job_id: string }>(res)
  expect(body).toMatchObject({ ok: true, file_id: id, status: "processing" })
  const job = await waitForJob(body.job_id)
  expect(job.state).toBe("completed")
  return job
}

const download = async (path: string) => {
  const res = await call(app.url, viewer, path)
  expect(res.status).toBe(200)
  return { text: await res.text(), disposition: res.headers.get("content-disposition") ?? "" }
}

describe("smart cleaning from a country", () => {
  let id: string
  let createdName: string

  it("POST /find-smart-cleaning-voluum creates an entry from the whitelist and returns it", async () => {
    const { result: res, days } = await datedAround(() =>
      call(app.url, operator, "/find-smart-cleaning-voluum?country_code=gb", { method: "POST" })
    )
    expect(res.status).toBe(200)
    const body = await json<Record<string, unknown>>(res)
    createdName = String(body.original_filename)
    expect(days.map((day) => `GB_${day}.csv`)).toContain(createdName)
    expect(body).toMatchObject({
      status: "uploaded",
      record_count_total: 3,
      offer_count: 2,
      offers: "Offer A^Offer B",
      from_date: null,
      to_date: null
    })
    id = body.id as string
    // The original's raw file: phone,timestamp per line, no header, csv.writer's \r\n.
    expect(await readFile(join(storageDir, "raw_smart_cleaning_voluum", `${id}.csv`), "utf8")).toBe(
      "447700900001,2025-05-01 10:00:00\r\n447700900002,2025-05-02 11:00:00.123456\r\n447700900003,2025-05-03 12:00:00\r\n"
    )
  })

  it("compares dates as dates, both ends inclusive", async () => {
    const res = await call(
      app.url,
      operator,
      "/find-smart-cleaning-voluum?country_code=GB&from_date=2025-05-02&to_date=2025-05-02",
      { method: "POST" }
    )
    expect(await json(res)).toMatchObject({ record_count_total: 1, from_date: "2025-05-02", to_date: "2025-05-02" })
    const bad = await call(app.url, operator, "/find-smart-cleaning-voluum?country_code=GB&from_date=2025-13-01", {
      method: "POST"
    })
    expect(bad.status).toBe(400)
  })

  it("answers 404 with the original's message when the country has no numbers, 400 without a country", async () => {
    const none = await call(app.url, operator, "/find-smart-cleaning-voluum?country_code=ZZ", { method: "POST" })
    expect(none.status).toBe(404)
    expect((await json<{ detail: string }>(none)).detail).toBe("No offers found for the country code: ZZ")
    expect((await call(app.url, operator, "/find-smart-cleaning-voluum", { method: "POST" })).status).toBe(400)
  })

  it("GET /smart-cleaning-files-voluum lists entries with the original's keys, filtered by status", async () => {
    const items = await smartItems()
    expect(items.length).toBeGreaterThanOrEqual(2)
    for (const item of items) expect(Object.keys(item).sort()).toEqual(SMART_KEYS)
    expect((await smartItems("processed")).length).toBe(0)
    expect((await call(app.url, viewer, "/smart-cleaning-files-voluum?status=bogus")).status).toBe(400)
  })

  it("refuses to download before processing, and unknown entries", async () => {
    const early = await call(app.url, viewer, `/${id}/download-smart-cleaning-files-voluum`)
    expect(early.status).toBe(400)
    expect((await json<{ detail: string }>(early)).detail).toBe("File not processed yet")
    const unknown = await call(
      app.url,
      viewer,
      `/00000000-0000-4000-8000-000000000000/download-smart-cleaning-files-voluum`
    )
    expect(unknown.status).toBe(404)
    expect((await json<{ detail: string }>(unknown)).detail).toBe("File not found")
  })

  it("processes as a job: removes the FTD converters of the chosen offer, keeps file order and timestamps", async () => {
    await processSmart(id, ["Offer A"])
    const [entry] = (await smartItems("processed")).filter((i) => i.id === id)
    expect(entry).toMatchObject({
      status: "processed",
      record_count_clean: 2,
      selected_offer: "Offer A",
      error_message: null
    })
    const file = await download(`/${id}/download-smart-cleaning-files-voluum`)
    expect(file.text).toBe("447700900002,2025-05-02 11:00:00.123456\r\n447700900003,2025-05-03 12:00:00\r\n")
    expect(file.disposition).toContain(`filename="processed_voluum_click_${createdName}"`)
  })

  it("filter_regs also removes REG converters; a processed entry may be processed again; empty results are empty files", async () => {
    await processSmart(id, ["Offer A", "Offer B"], "?filter_regs=true")
    expect((await download(`/${id}/download-smart-cleaning-files-voluum`)).text).toBe("")
    const [entry] = (await smartItems()).filter((i) => i.id === id)
    expect(entry).toMatchObject({ record_count_clean: 0, selected_offer: "Offer A^Offer B" })
  })

  it("filter_last_24h removes numbers with a live click on the offers in the last 24 hours", async () => {
    await processSmart(id, ["Offer B"], "?filter_last_24h=true")
    expect((await download(`/${id}/download-smart-cleaning-files-voluum`)).text).toBe(
      "447700900001,2025-05-01 10:00:00\r\n"
    )
    await processSmart(id, ["Offer B"])
    expect((await download(`/${id}/download-smart-cleaning-files-voluum`)).text).toBe(
      "447700900001,2025-05-01 10:00:00\r\n447700900002,2025-05-02 11:00:00.123456\r\n"
    )
  })

  it("refuses empty offers, unknown entries and a second processing at a time", async () => {
    const empty = await call(app.url, operator, `/${id}/process-smart-cleaning-files-voluum`, { json: { offers: [] } })
    expect(empty.status).toBe(400)
    expect((await json<{ detail: string }>(empty)).detail).toBe("At least one offer is required")
    const unknown = await call(
      app.url,
      operator,
      `/00000000-0000-4000-8000-000000000000/process-smart-cleaning-files-voluum`,
      {
        json: { offers: ["Offer A"] }
      }
    )
    expect(unknown.status).toBe(400)
    expect((await json<{ detail: string }>(unknown)).detail).toBe("File not found or not eligible for processing")
    // Another entry is processing right now.
    const busy = await db.query<{ id: string }>(
      `INSERT INTO uploaded_smart_cleaning_voluum_files (original_filename, status, processing_started_at)
       VALUES ('busy.csv', 'processing', now()) RETURNING id::text AS id`
    )
    try {
      const conflict = await call(app.url, operator, `/${id}/process-smart-cleaning-files-voluum`, {
        json: { offers: ["Offer A"] }
      })
      expect(conflict.status).toBe(409)
      expect((await json<{ detail: string }>(conflict)).detail).toBe("Another file is already processing")
    } finally {
      await db.query("DELETE FROM uploaded_smart_cleaning_voluum_files WHERE id = $1", [busy.rows[0]!.id])
    }
  })

  it("archive and delete answer {ok: true}; delete removes the files too", async () => {
    const archived = await call(app.url, operator, `/${id}/archive-smart-cleaning-files-voluum`, { method: "POST" })
    expect(await json(archived)).toEqual({ ok: true })
    expect((await smartItems("archived")).map((i) => i.id)).toContain(id)
    const notEligible = await call(app.url, operator, `/${id}/process-smart-cleaning-files-voluum`, {
      json: { offers: ["Offer A"] }
    })
    expect(notEligible.status).toBe(400)
    expect(storedFilesOf(id)).toEqual(
      expect.arrayContaining([
        `raw_smart_cleaning_voluum/${id}.csv`,
        expect.stringMatching(`^processed_smart_cleaning_voluum/${id}\\.\\d+\\.csv$`)
      ])
    )
    const deleted = await call(app.url, operator, `/${id}/delete-smart-cleaning-files-voluum`, { method: "POST" })
    expect(await json(deleted)).toEqual({ ok: true })
    expect((await smartItems()).map((i) => i.id)).not.toContain(id)
    expect(storedFilesOf(id)).toEqual([])
    const again = await call(app.url, operator, `/${id}/delete-smart-cleaning-files-voluum`, { method: "POST" })
    expect(again.status).toBe(404)
  })
})

describe("smart cleaning from an upload", () => {
  const upload = (name: string, content: string) => {
    const form = new FormData()
    form.append("file", new Blob([content], { type: "text/csv" }), name)
    return call(app.url, operator, "/upload-smart-cleaning-voluum", { body: form, method: "POST" })
  }

  it("POST /upload-smart-cleaning-voluum stores the file and answers the original's keys", async () => {
    const res = await upload("clickers.csv", "\ufeffphone\n+44 7700 900001\n447700900004\n447700900004\n\n  \n")
    expect(res.status).toBe(200)
    const body = await json<{ id: string; original_filename: string; status: string }>(res)
    expect(Object.keys(body).sort()).toEqual(["id", "original_filename", "status"])
    expect(body).toMatchObject({ original_filename: "clickers.csv", status: "uploaded" })
    const [entry] = (await smartItems()).filter((i) => i.id === body.id)
    // Non-blank lines, header included (the original's count); offers of every country.
    expect(entry).toMatchObject({ record_count_total: 4, offer_count: 3, offers: "Offer A^Offer B^Offer F" })

    // Normalised numbers: the header is not a number, +44 7700 900001 is 447700900001 (an FTD on Offer A).
    const job = await processSmart(body.id, ["Offer A"])
    expect(job.result).toMatchObject({
      rows: 4,
      invalid: 1,
      duplicates: 1,
      removed_conversions: 1,
      record_count_clean: 1
    })
    const file = await download(`/${body.id}/download-smart-cleaning-files-voluum`)
    expect(file.text).toBe("447700900004\r\n")
    expect(file.disposition).toContain('filename="processed_voluum_click_clickers.csv"')
  })

  it("refuses a file that is not .csv, and an empty one, with the original's messages", async () => {
    const txt = await upload("clickers.txt", "447700900004\n")
    expect(txt.status).toBe(400)
    expect((await json<{ detail: string }>(txt)).detail).toBe("Only CSV files are supported")
    const empty = await upload("empty.csv", "\n \n")
    expect(empty.status).toBe(400)
    expect((await json<{ detail: string }>(empty)).detail).toBe("CSV file is empty")
  })
})

describe("REG search", () => {
  let id: string
  let name: string
  const REG_KEYS = [...SMART_KEYS, "country_code"].sort()

  it("POST /reg-search/search creates an entry with the country's offers", async () => {
    const { result: res, days } = await datedAround(() =>
      call(app.url, operator, "/reg-search/search?country_code=GB", { method: "POST" })
    )
    expect(res.status).toBe(200)
    const body = await json<Record<string, unknown>>(res)
    expect(body).toMatchObject({ country_code: "GB", status: "uploaded", offer_count: 2, offers: "Offer A^Offer B" })
    expect(body.original_filename).toMatch(new RegExp(`^REG_GB_(${days.join("|")})_\\d{6}$`))
    id = body.id as string
    name = body.original_filename as string
  })

  it("limits the offers to the postback window (dates as dates), answers 404 / 400 as the original", async () => {
    const window = await call(
      app.url,
      operator,
      "/reg-search/search?country_code=GB&from_date=2025-05-10&to_date=2025-05-10",
      {
        method: "POST"
      }
    )
    expect(await json(window)).toMatchObject({ offer_count: 2, from_date: "2025-05-10", to_date: "2025-05-10" })
    const early = await call(app.url, operator, "/reg-search/search?country_code=GB&to_date=2025-05-04", {
      method: "POST"
    })
    expect(early.status).toBe(404)
    expect((await json<{ detail: string }>(early)).detail).toBe("No offers found for country code: GB")
    const missing = await call(app.url, operator, "/reg-search/search", { method: "POST" })
    expect(missing.status).toBe(400)
    expect((await json<{ detail: string }>(missing)).detail).toBe("country_code is required")
  })

  it("GET /reg-search/files lists entries with the original's keys", async () => {
    const { items } = await json<{ items: Array<Record<string, unknown>> }>(
      await call(app.url, viewer, "/reg-search/files")
    )
    expect(items.length).toBeGreaterThanOrEqual(2)
    for (const item of items) expect(Object.keys(item).sort()).toEqual(REG_KEYS)
  })

  it("processes as a job: REG without FTD on the chosen offers, one number per line", async () => {
    const early = await call(app.url, viewer, `/reg-search/${id}/download`)
    expect(early.status).toBe(400)
    expect((await json<{ detail: string }>(early)).detail).toBe("Not processed yet")

    const res = await call(app.url, operator, `/reg-search/${id}/process`, { json: { offers: ["Offer A"] } })
    expect(res.status).toBe(200)
    const body = await json<{ ok: boolean; file_id: string; status: string; job_id: string }>(res)
    expect(body).toMatchObject({ ok: true, file_id: id, status: "processing" })
    expect((await waitForJob(body.job_id)).state).toBe("completed")

    const { items } = await json<{ items: Array<Record<string, unknown>> }>(
      await call(app.url, viewer, "/reg-search/files?status=processed")
    )
    expect(items.find((i) => i.id === id)).toMatchObject({
      record_count_total: 2,
      record_count_clean: 2,
      selected_offer: "Offer A"
    })
    const file = await download(`/reg-search/${id}/download`)
    expect(file.text).toBe("447700900002\r\n447700900010\r\n")
    expect(file.disposition).toContain(`filename="reg_only_${name}.csv"`)
  })

  it("a processed search is not processed again; one search processes at a time; offers are required", async () => {
    const again = await call(app.url, operator, `/reg-search/${id}/process`, { json: { offers: ["Offer A"] } })
    expect(again.status).toBe(400)
    expect((await json<{ detail: string }>(again)).detail).toBe("Entry not found or not eligible for processing")
    const empty = await call(app.url, operator, `/reg-search/${id}/process`, { json: { offers: [] } })
    expect(empty.status).toBe(400)
    expect((await json<{ detail: string }>(empty)).detail).toBe("At least one offer is required")

    const fresh = await json<{ id: string }>(
      await call(app.url, operator, "/reg-search/search?country_code=GB", { method: "POST" })
    )
    const busy = await db.query<{ id: string }>(
      `INSERT INTO uploaded_reg_search_files (original_filename, status, processing_started_at)
       VALUES ('REG_busy', 'processing', now()) RETURNING id::text AS id`
    )
    try {
      const conflict = await call(app.url, operator, `/reg-search/${fresh.id}/process`, {
        json: { offers: ["Offer B"] }
      })
      expect(conflict.status).toBe(409)
      expect((await json<{ detail: string }>(conflict)).detail).toBe("Another search is already processing")
    } finally {
      await db.query("DELETE FROM uploaded_reg_search_files WHERE id = $1", [busy.rows[0]!.id])
    }
  })

  it("archive and delete answer {ok: true}", async () => {
    expect(await json(await call(app.url, operator, `/reg-search/${id}/archive`, { method: "POST" }))).toEqual({
      ok: true
    })
    expect(storedFilesOf(id)).toEqual([expect.stringMatching(`^processed_reg_search/${id}\\.\\d+\\.csv$`)])
    expect(await json(await call(app.url, operator, `/reg-search/${id}/delete`, { method: "POST" }))).toEqual({
      ok: true
    })
    expect(storedFilesOf(id)).toEqual([])
    expect((await call(app.url, viewer, `/reg-search/${id}/download`)).status).toBe(404)
  })
})
