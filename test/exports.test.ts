/**
 * Table exports over HTTP with API keys: `/process_db` starts a COPY job (admin),
 * `/fetch-latest-db-export` shows its row (viewer), `/db-download` gives the CSV (admin); only
 * allow-listed tables; a failed COPY is recorded as `failed` with its reason.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let app: TestApp
let worker: TestWorker | undefined
let storageDir: string
let admin: string
let viewer: string
let client: pg.Client

interface ExportRow {
  id: string
  file_path: string
  status: string
  created_at: string
  completed_at: string | null
  error_message: string | null
  row_count: number | null
}

beforeAll(async () => {
  storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-exports-"))
  app = await startTestApp({ STORAGE_DIR: storageDir })
  admin = await app.createKey("admin")
  viewer = await app.createKey("viewer")
  client = new pg.Client({ connectionString: app.db.url })
  await client.connect()
  await client.query(`
    INSERT INTO blacklist (custom_variable_1, reason, source) VALUES
      ('447700900123', 'HLR_FAILED', 'CSV_CLEAN_UPLOAD'),
      ('447700900124', 'needs "quotes", and commas', 'MANUAL')`)
})
afterAll(async () => {
  await worker?.close()
  await client?.end()
  await app?.close()
  rmSync(storageDir, { recursive: true, force: true })
})

const latest = async (table: string, apiKey = viewer): Promise<ExportRow | null> => {
  const res = await call(app.url, apiKey, `/fetch-latest-db-export?table_name=${table}`, { method: "POST" })
  expect(res.status).toBe(200)
  return (await res.json()) as ExportRow | null
}

const waitForExport = async (table: string, statuses: ReadonlyArray<string>, timeoutMs = 20_000) => {
  const until = Date.now() + timeoutMs
  let last: ExportRow | null = null
  while (Date.now() < until) {
    last = await latest(table)
    if (last !== null && statuses.includes(last.status)) return last
    await new Promise((r) => setTimeout(r, 150))
  }
  throw new Error(`the export of ${table} did not become ${statuses.join("|")}; last seen ${JSON.stringify(last)}`)
}

const detailOf = async (res: Response) => ((await res.json()) as { detail: string }).detail

describe("before any worker runs", () => {
  it("a table never exported: latest is null, download is 404", async () => {
    expect(await latest("monitor")).toBeNull()
    const res = await call(app.url, admin, "/db-download?table_name=monitor")
    expect(res.status).toBe(404)
    expect(await detailOf(res)).toMatch(/File not found/)
  })

  it("process_db answers the original's keys plus the job; the row is pending and cannot be downloaded yet", async () => {
    const res = await call(app.url, admin, "/process_db?table_name=blacklist", { method: "POST" })
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(["file_id", "job_id", "status", "table_name"])
    expect(body).toMatchObject({ table_name: "blacklist", status: "processing" })
    const row = await latest("blacklist")
    expect(row).not.toBeNull()
    expect(Object.keys(row!).slice(0, 5)).toEqual(["id", "file_path", "status", "created_at", "completed_at"])
    expect(row).toMatchObject({ id: body.file_id, status: "pending", completed_at: null })
    expect(row!.file_path).toMatch(/^exports\/blacklist_\d{8}_\d{6}\.csv$/)
    const early = await call(app.url, admin, "/db-download?table_name=blacklist")
    expect(early.status).toBe(400)
    expect(await detailOf(early)).toMatch(/not processed yet.*pending/)
  })

  it("only admins export and download; viewers may read the status", async () => {
    expect((await call(app.url, viewer, "/process_db?table_name=blacklist", { method: "POST" })).status).toBe(403)
    expect((await call(app.url, viewer, "/db-download?table_name=blacklist")).status).toBe(403)
    expect(
      (await call(app.url, undefined, "/fetch-latest-db-export?table_name=blacklist", { method: "POST" })).status
    ).toBe(401)
  })

  it("unknown, secret or missing table names are 400s naming the allowed tables", async () => {
    for (const table of [
      "api_keys",
      "schema_migrations",
      "job_status",
      "nope",
      'blacklist"; DROP TABLE blacklist; --'
    ]) {
      for (const [method, route] of [
        ["POST", "/process_db"],
        ["POST", "/fetch-latest-db-export"],
        ["GET", "/db-download"]
      ] as const) {
        const res = await call(app.url, admin, `${route}?table_name=${encodeURIComponent(table)}`, { method })
        expect(res.status).toBe(400)
        const detail = await detailOf(res)
        expect(detail).toMatch(/cannot be exported; the allowed tables are: blacklist, whitelist/)
        expect(detail).not.toMatch(/api_keys,/)
      }
    }
    const missing = await call(app.url, admin, "/process_db", { method: "POST" })
    expect(missing.status).toBe(400)
    expect(await detailOf(missing)).toMatch(/table_name is required/)
    const rows = await client.query("SELECT count(*)::int AS n FROM db_exports WHERE table_name <> 'blacklist'")
    expect(rows.rows[0].n).toBe(0)
  })
})

describe("with a worker", () => {
  beforeAll(async () => {
    worker = await startTestWorker({ DATABASE_URL: app.db.url, STORAGE_DIR: storageDir })
  })

  it("the export completes; the download is the table as CSV with a header, named as the file", async () => {
    const row = await waitForExport("blacklist", ["completed", "failed"])
    expect(row).toMatchObject({ status: "completed", row_count: 2, error_message: null })
    expect(row.completed_at).not.toBeNull()
    const res = await call(app.url, admin, "/db-download?table_name=blacklist")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/text\/csv/)
    expect(res.headers.get("content-disposition")).toContain(`filename="${path.basename(row.file_path)}"`)
    const lines = (await res.text()).trimEnd().split("\n")
    expect(lines[0]).toMatch(/^custom_variable_1,ip,os_version,browser_version,timestamp_created,reason,source,/)
    expect(lines).toHaveLength(3)
    expect(lines.some((l) => l.startsWith("447700900123,") && l.includes(",HLR_FAILED,CSV_CLEAN_UPLOAD,"))).toBe(true)
    expect(lines.some((l) => l.includes(`,"needs ""quotes"", and commas",MANUAL,`))).toBe(true)
  })

  it("a new export replaces the latest one; list_audit can be exported", async () => {
    const res = await call(app.url, admin, "/process_db?table_name=list_audit", { method: "POST" })
    expect(res.status).toBe(200)
    const row = await waitForExport("list_audit", ["completed", "failed"])
    expect(row).toMatchObject({ status: "completed", row_count: 0 })
    const csv = await (await call(app.url, admin, "/db-download?table_name=list_audit")).text()
    expect(csv.trimEnd()).toBe("id,custom_variable_1,action,from_list,to_list,reason,source,actor,created_at")
  })

  it("a COPY that fails is recorded as failed (the driver's text only in the log), and the download says so", async () => {
    // A table that no other test uses, briefly renamed so that COPY fails.
    await client.query("ALTER TABLE uploaded_reg_search_files RENAME TO uploaded_reg_search_files_away")
    try {
      const res = await call(app.url, admin, "/process_db?table_name=uploaded_reg_search_files", { method: "POST" })
      expect(res.status).toBe(200)
      const row = await waitForExport("uploaded_reg_search_files", ["failed"])
      expect(row.error_message).toMatch(/the database failed/)
      expect(row.error_message).not.toMatch(/relation|does not exist/)
      const download = await call(app.url, admin, "/db-download?table_name=uploaded_reg_search_files")
      expect(download.status).toBe(400)
      expect(await detailOf(download)).toMatch(/failed/)
    } finally {
      await client.query("ALTER TABLE uploaded_reg_search_files_away RENAME TO uploaded_reg_search_files")
    }
  })

  it("a stored file that disappeared is a 404 naming it", async () => {
    const row = await latest("blacklist")
    rmSync(path.join(storageDir, row!.file_path))
    const res = await call(app.url, admin, "/db-download?table_name=blacklist")
    expect(res.status).toBe(404)
    expect(await detailOf(res)).toMatch(/missing on storage/)
  })
})
