/**
 * List cleaning as the frontend and operators use it, on a real PostgreSQL: over HTTP with API keys
 * and a worker running the jobs (upload, list, process, stats, download, archive, delete, with the
 * original's paths and keys and real status codes), and `optimizer clean` / `optimizer files` as
 * child processes.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

const BIN = fileURLToPath(new URL("../packages/adapters-cli/bin/optimizer.js", import.meta.url))
const UPLOAD_LIMIT = 200_000

let app: TestApp
let worker: TestWorker
let storageDir: string
let scratch: string
let client: pg.Client
let operator: string
let viewer: string

// On the lists (GB drama range 07700 900xxx: valid, never allocated).
const BLACKLISTED = "447700900010"
const MONITORED = "447700900011"
const CONVERTED = "447700900012"
const SENT = "447700900013"

beforeAll(async () => {
  storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-cleaning-store-"))
  scratch = mkdtempSync(path.join(tmpdir(), "optimizer-cleaning-cli-"))
  const env = { STORAGE_DIR: storageDir, UPLOAD_MAX_BYTES: String(UPLOAD_LIMIT) }
  app = await startTestApp(env)
  worker = await startTestWorker({ ...env, DATABASE_URL: app.db.url })
  operator = await app.createKey("operator")
  viewer = await app.createKey("viewer")
  client = new pg.Client({ connectionString: app.db.url })
  await client.connect()
  await client.query(
    `INSERT INTO blacklist (custom_variable_1, reason, source) VALUES ('${BLACKLISTED}', 'OS_VERSION', 'VOLUUM');
     INSERT INTO monitor (custom_variable_1, reason, source) VALUES ('${MONITORED}', 'OS_VERSION', 'VOLUUM');
     INSERT INTO api_voluum_conversions (click_id, transaction_id, conversion_type, custom_variable_1)
       VALUES ('c1', 't1', 'REG', '${CONVERTED}');
     INSERT INTO main_database (custom_variable_1) VALUES ('${SENT}');`
  )
})

afterAll(async () => {
  await worker?.close()
  await client?.end()
  await app?.close()
  rmSync(storageDir, { recursive: true, force: true })
  rmSync(scratch, { recursive: true, force: true })
})

const upload = (apiKey: string, content: string | Uint8Array, filename = "list.csv") => {
  const form = new FormData()
  form.append("file", new Blob([content]), filename)
  return call(app.url, apiKey, "/upload", { body: form })
}

const uploaded = async (content: string | Uint8Array, filename = "list.csv"): Promise<string> => {
  const res = await upload(operator, content, filename)
  expect(res.status, await res.clone().text()).toBe(200)
  return ((await res.json()) as { id: string }).id
}

interface Item {
  readonly id: string
  readonly status: string
  readonly error_message: string | null
  readonly record_count_total: number | null
  readonly record_count_clean: number | null
}

const itemOf = async (id: string): Promise<Item> => {
  const res = await call(app.url, viewer, "/files")
  expect(res.status).toBe(200)
  const item = ((await res.json()) as { items: Array<Item> }).items.find((i) => i.id === id)
  if (item === undefined) throw new Error(`file ${id} is not listed`)
  return item
}

const waitFor = async (id: string, statuses: ReadonlyArray<string>, timeoutMs = 30_000): Promise<Item> => {
  const until = Date.now() + timeoutMs
  let last: Item | undefined
  while (Date.now() < until) {
    last = await itemOf(id)
    if (statuses.includes(last.status)) return last
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`file ${id} did not become ${statuses.join("|")}; last seen ${JSON.stringify(last)}`)
}

/** Waits until no file is processing (one file at a time). */
const idle = async () => {
  const until = Date.now() + 30_000
  while (Date.now() < until) {
    const res = await call(app.url, viewer, "/files?status=processing")
    if (((await res.json()) as { items: Array<unknown> }).items.length === 0) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error("a file stayed processing")
}

const process = (id: string, query = "") => call(app.url, operator, `/${id}/process${query}`, { method: "POST" })

interface Stats {
  readonly total_records: number
  readonly removed_blacklist: number
  readonly removed_monitor: number
  readonly removed_conversion: number
  readonly removed_maindatabase: number
  readonly removed_duplicates: number
  readonly removed_invalid: number
  readonly final_clean_count: number
}

const addsUp = (s: Stats) =>
  s.total_records ===
  s.final_clean_count +
    s.removed_blacklist +
    s.removed_monitor +
    s.removed_conversion +
    s.removed_maindatabase +
    s.removed_duplicates +
    s.removed_invalid

/** Uploads, processes and waits: the stats and the cleaned lines. */
const cleaned = async (content: string, query = "", filename = "list.csv") => {
  await idle()
  const id = await uploaded(content, filename)
  const res = await process(id, query)
  expect(res.status, await res.clone().text()).toBe(200)
  const done = await waitFor(id, ["processed", "failed"])
  expect(done.status, done.error_message ?? "").toBe("processed")
  const stats = (await (await call(app.url, viewer, `/${id}/stats`)).json()) as Stats & Record<string, unknown>
  const download = await call(app.url, viewer, `/${id}/download`)
  expect(download.status).toBe(200)
  const text = await download.text()
  return { id, stats, lines: text === "" ? [] : text.replace(/\n$/, "").split("\n"), download }
}

const detail = async (res: Response) => ((await res.json()) as { detail: string }).detail

describe("upload", () => {
  it("answers the original's keys; the file is listed with exactly the original's item keys", async () => {
    const res = await upload(operator, "phone\n447700900001\n\n  \n447700900002\n", "mine.csv")
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(["id", "original_filename", "status"])
    expect(body).toMatchObject({ original_filename: "mine.csv", status: "uploaded" })
    const list = (await (await call(app.url, viewer, "/files")).json()) as { items: Array<Record<string, unknown>> }
    const item = list.items.find((i) => i.id === body.id)!
    expect(Object.keys(item)).toEqual([
      "id",
      "original_filename",
      "status",
      "record_count_total",
      "record_count_clean",
      "uploaded_at",
      "processing_started_at",
      "processed_at",
      "error_message",
      "hlr_status",
      "hlr_batch_id",
      "hlr_started_at",
      "hlr_completed_at",
      "hlr_num_items",
      "hlr_num_complete",
      "hlr_error_message",
      "hlr_raw_file_path"
    ])
    // Non-blank lines, header included, as the original counted.
    expect(item).toMatchObject({ status: "uploaded", record_count_total: 3, processed_at: null })
  })

  it("refuses an empty file, a blank one, a binary one and a UTF-16 one with 422", async () => {
    for (const content of [
      "",
      "\n \r\n\t\n",
      new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00]),
      Buffer.from("\ufeffphone\n447700900001\n", "utf16le")
    ]) {
      const res = await upload(operator, content)
      expect(res.status).toBe(422)
      expect((await res.json()) as Record<string, unknown>).toMatchObject({ code: "UNREADABLE_FILE" })
    }
  })

  it("refuses a file over UPLOAD_MAX_BYTES with 413 and keeps nothing of it", async () => {
    const before = readdirSync(storageDir, { recursive: true }).length
    const res = await upload(operator, "447700900001\n".repeat(Math.ceil((UPLOAD_LIMIT * 1.5) / 13)))
    expect(res.status).toBe(413)
    expect(readdirSync(storageDir, { recursive: true }).length).toBe(before)
  })

  it("needs the operator role to upload (403 for a viewer, 401 without a key)", async () => {
    expect((await upload(viewer, "447700900001\n")).status).toBe(403)
    expect((await call(app.url, undefined, "/files")).status).toBe(401)
  })
})

describe("processing", () => {
  it("answers at once with the original's keys and a job id; the output is one canonical number per line, in input order", async () => {
    await idle()
    const id = await uploaded("447700900003\n+44 7700 900001\n0044 7700 900002\n", "targets.csv")
    const res = await process(id)
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ ok: true, file_id: id, status: "processing" })
    expect(Object.keys(body).sort()).toEqual(["file_id", "job_id", "ok", "status"])
    const done = await waitFor(id, ["processed"])
    expect(done).toMatchObject({ record_count_total: 3, record_count_clean: 3 })
    const download = await call(app.url, viewer, `/${id}/download`)
    expect(download.headers.get("content-type")).toMatch(/text\/csv/)
    expect(download.headers.get("content-disposition")).toContain('filename="processed_targets.csv"')
    expect(await download.text()).toBe("447700900003\n447700900001\n447700900002\n")
    // The job shows its progress and result.
    const job = (await (await call(app.url, viewer, `/jobs/${body.job_id}`)).json()) as Record<string, unknown>
    expect(job).toMatchObject({ state: "completed", processed: 3, total: 3 })
  })

  it("stats have the original's keys plus the new ones, and they add up", async () => {
    const { stats } = await cleaned("phone\n+44 7700 900001\n07700 900001\nnonsense\n", "?country=GB")
    expect(Object.keys(stats).sort()).toEqual(
      [
        "file_id",
        "total_records",
        "removed_blacklist",
        "removed_monitor",
        "removed_conversion",
        "removed_maindatabase",
        "final_clean_count",
        "created_at",
        "removed_duplicates",
        "removed_invalid",
        "phone_metadata_version"
      ].sort()
    )
    expect(stats).toMatchObject({ total_records: 3, removed_duplicates: 1, removed_invalid: 1, final_clean_count: 1 })
    expect(stats.phone_metadata_version).toMatch(/^\d+\.\d+\.\d+\+max$/)
    expect(addsUp(stats)).toBe(true)
  })

  const LISTED = ["+44 7700 900001", BLACKLISTED, MONITORED, CONVERTED, SENT, "+44 7700 900002"].join("\n")

  it.each([
    ["include_blacklist", { removed_blacklist: 1 }, BLACKLISTED],
    ["include_monitor", { removed_monitor: 1 }, MONITORED],
    ["include_conversion", { removed_conversion: 1 }, CONVERTED],
    ["include_main_database", { removed_maindatabase: 1 }, SENT]
  ] as const)("%s=true alone removes its list's numbers", async (flag, counts, removed) => {
    const { stats, lines } = await cleaned(LISTED, `?${flag}=true`)
    expect(stats).toMatchObject({ total_records: 6, final_clean_count: 5, ...counts })
    expect(addsUp(stats)).toBe(true)
    expect(lines).not.toContain(removed)
    expect(lines[0]).toBe("447700900001")
    if (flag === "include_main_database") {
      await client.query("DELETE FROM main_database WHERE custom_variable_1 <> $1", [SENT])
    }
  })

  it("all flags together: every list applied, kept numbers added to main_database, counts add up", async () => {
    const { stats, lines } = await cleaned(
      `${LISTED}\n0044 7700 900002\nnot a phone`,
      "?include_blacklist=true&include_monitor=true&include_conversion=1&include_main_database=yes"
    )
    expect(stats).toMatchObject({
      total_records: 8,
      removed_blacklist: 1,
      removed_monitor: 1,
      removed_conversion: 1,
      removed_maindatabase: 1,
      removed_duplicates: 1,
      removed_invalid: 1,
      final_clean_count: 2
    })
    expect(addsUp(stats)).toBe(true)
    expect(lines).toEqual(["447700900001", "447700900002"])
    const added = await client.query("SELECT 1 FROM main_database WHERE custom_variable_1 = ANY($1)", [lines])
    expect(added.rowCount).toBe(2)
    await client.query("DELETE FROM main_database WHERE custom_variable_1 <> $1", [SENT])
  })

  it("reads what operators upload: header or not, ';' and tab, BOM, CRLF, quoted fields, national numbers", async () => {
    const semicolon = await cleaned(
      '\ufeffName;Mobile\r\n"Smith; John";07700 900001\r\nDoe;+44 7700 900002\r\n',
      "?country=gb",
      "crm-export.csv"
    )
    expect(semicolon.lines).toEqual(["447700900001", "447700900002"])
    const tabs = await cleaned("Ann\tLondon\t+44 7700 900003\nBob\tLeeds\t07700 900004\n", "?country=GB")
    expect(tabs.lines).toEqual(["447700900003", "447700900004"])
    // Without a country the national number is invalid, not a guess.
    const noCountry = await cleaned("Ann\tLondon\t+44 7700 900003\nBob\tLeeds\t07700 900004\n")
    expect(noCountry.lines).toEqual(["447700900003"])
    expect(noCountry.stats.removed_invalid).toBe(1)
  })

  it("a 0-row result is an empty file with counts that add up", async () => {
    const { stats, lines, download } = await cleaned(`${BLACKLISTED}\n${BLACKLISTED}\n`, "?include_blacklist=true")
    expect(lines).toEqual([])
    expect(download.status).toBe(200)
    expect(stats).toMatchObject({ total_records: 2, removed_blacklist: 1, removed_duplicates: 1, final_clean_count: 0 })
  })

  it("writes the rejects and annotated files when asked, downloadable by kind", async () => {
    const { id } = await cleaned(
      `phone,name\n+44 7700 900001,Ann\n${BLACKLISTED},Bob\n447700900001,Cy\nxyz,Di\n`,
      "?include_blacklist=true&rejects=true&annotated=true",
      "people.csv"
    )
    const rejects = await call(app.url, viewer, `/${id}/download?kind=rejects`)
    expect(rejects.headers.get("content-disposition")).toContain('filename="rejects_people.csv"')
    expect(await rejects.text()).toBe(
      [
        "row,phone,phone_e164,reason",
        `2,${BLACKLISTED},${BLACKLISTED},BLACKLIST`,
        "3,447700900001,447700900001,DUPLICATE",
        "4,xyz,,INVALID_PHONE_NUMBER",
        ""
      ].join("\n")
    )
    const annotated = await call(app.url, viewer, `/${id}/download?kind=annotated`)
    expect((await annotated.text()).split("\n").slice(0, 3)).toEqual([
      "phone,name,phone_e164,status,reason",
      "+44 7700 900001,Ann,447700900001,kept,",
      `${BLACKLISTED},Bob,${BLACKLISTED},removed,BLACKLIST`
    ])
  })

  it("a file processed without them has no rejects file (404 naming the parameter)", async () => {
    const { id } = await cleaned("447700900001\n")
    const res = await call(app.url, viewer, `/${id}/download?kind=rejects`)
    expect(res.status).toBe(404)
    expect(await detail(res)).toMatch(/rejects=true/)
  })

  it("one file at a time: a second one gets 409 while the first is processing, and a processed file cannot be processed again", async () => {
    await idle()
    const first = await uploaded("447700900001\n447700900002\n")
    const second = await uploaded("447700900003\n")
    expect((await process(first)).status).toBe(200)
    const blocked = await process(second)
    expect(blocked.status).toBe(409)
    expect(await detail(blocked)).toBe("Another file is already processing")
    expect((await process(first)).status).toBe(409)
    expect((await call(app.url, operator, `/${first}/delete`, { method: "POST" })).status).toBe(409)
    await waitFor(first, ["processed"])
    const again = await process(first)
    expect(again.status).toBe(400)
    expect(await detail(again)).toMatch(/^File not found or not eligible for processing/)
    expect((await process(second)).status).toBe(200)
    await waitFor(second, ["processed"])
  })

  it("a failed file shows why and can be processed again", async () => {
    await idle()
    const id = await uploaded("home,work\n+44 7700 900001,+44 7700 900002\n")
    expect((await process(id, "?phone_column=fax")).status).toBe(200)
    const failed = await waitFor(id, ["failed", "processed"])
    expect(failed.status).toBe("failed")
    expect(failed.error_message).toMatch(/phone column "fax" not found/)
    expect((await call(app.url, viewer, `/${id}/stats`)).status).toBe(400)
    expect((await process(id, "?phone_column=work")).status).toBe(200)
    await waitFor(id, ["processed"])
    expect(await (await call(app.url, viewer, `/${id}/download`)).text()).toBe("447700900002\n")
  })

  it("a file whose job is cancelled ends failed, never processing forever", async () => {
    await idle()
    await worker.close()
    try {
      const id = await uploaded("447700900001\n")
      const started = (await (await process(id)).json()) as { job_id: string }
      expect((await call(app.url, operator, `/jobs/${started.job_id}/cancel`, { method: "POST" })).status).toBe(200)
      const item = await itemOf(id)
      expect(item.status).toBe("failed")
      expect(item.error_message).toMatch(/cancelled/)
    } finally {
      worker = await startTestWorker({
        STORAGE_DIR: storageDir,
        UPLOAD_MAX_BYTES: String(UPLOAD_LIMIT),
        DATABASE_URL: app.db.url
      })
    }
  })
})

describe("errors and housekeeping", () => {
  it("answers 404 for an unknown or malformed id and 400 before a file is processed", async () => {
    const unknown = "00000000-0000-4000-8000-000000000000"
    for (const id of [unknown, "not-a-uuid"]) {
      expect((await call(app.url, viewer, `/${id}/stats`)).status).toBe(404)
      expect((await call(app.url, viewer, `/${id}/download`)).status).toBe(404)
      expect((await process(id)).status).toBe(404)
      expect((await call(app.url, operator, `/${id}/archive`, { method: "POST" })).status).toBe(404)
      expect((await call(app.url, operator, `/${id}/delete`, { method: "POST" })).status).toBe(404)
    }
    const id = await uploaded("447700900001\n")
    const stats = await call(app.url, viewer, `/${id}/stats`)
    expect(stats.status).toBe(400)
    expect(await detail(stats)).toBe("File not processed yet")
    expect((await call(app.url, viewer, `/${id}/download`)).status).toBe(400)
    expect((await process(id, "?country=XX")).status).toBe(400)
    expect((await process(id, "?include_blacklist=maybe")).status).toBe(400)
    expect((await call(app.url, viewer, "/files?status=done")).status).toBe(400)
  })

  it("archive sets the status; delete removes the row, its stats and its stored files", async () => {
    const { id } = await cleaned("447700900001\nxyz\n", "?rejects=true")
    const stored = () => readdirSync(storageDir, { recursive: true }).filter((f) => String(f).includes(id))
    expect(stored()).toHaveLength(3) // raw, processed, rejects
    const archived = await call(app.url, operator, `/${id}/archive`, { method: "POST" })
    expect(archived.status).toBe(200)
    expect(await archived.json()).toBeNull()
    expect((await itemOf(id)).status).toBe("archived")
    const filtered = (await (await call(app.url, viewer, "/files?status=archived")).json()) as { items: Array<Item> }
    expect(filtered.items.map((i) => i.id)).toContain(id)
    expect((await call(app.url, viewer, `/${id}/archive`, { method: "POST" })).status).toBe(403)
    const deleted = await call(app.url, operator, `/${id}/delete`, { method: "POST" })
    expect(deleted.status).toBe(200)
    expect(await deleted.json()).toBeNull()
    expect(stored()).toEqual([])
    expect((await call(app.url, viewer, `/${id}/stats`)).status).toBe(404)
    const statsRows = await client.query("SELECT 1 FROM csv_processing_stats WHERE file_id = $1", [id])
    expect(statsRows.rowCount).toBe(0)
  })
})

// ---------------------------------------------------------------------------------------------

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const optimizer = (args: ReadonlyArray<string>): Promise<Run> =>
  new Promise((resolve) =>
    execFile(
      globalThis.process.execPath,
      [BIN, ...args],
      {
        cwd: scratch,
        env: {
          PATH: globalThis.process.env.PATH ?? "",
          LOG_LEVEL: "Warn",
          DATABASE_URL: app.db.url,
          STORAGE_DIR: storageDir
        },
        timeout: 60_000
      },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
    )
  )

describe("optimizer clean (CLI)", () => {
  it("cleans a local file synchronously through the same pipeline and prints the stats JSON", async () => {
    const input = path.join(scratch, "targets.tsv")
    writeFileSync(
      input,
      `Name\tMobile\tCountry\r\nAnn\t07700 900001\tGB\r\nBob\t${BLACKLISTED}\t\r\nCy\t06 12 34 56 78\tFR\r\nDi\t+44 7700 900001\t\r\nEd\t??\t\r\n`
    )
    const run = await optimizer([
      "clean",
      input,
      "--include-blacklist",
      "--include-monitor",
      "--include-conversion",
      "--include-main-database",
      "--out",
      "clean.csv",
      "--rejects",
      "rejects.csv",
      "--annotated",
      "annotated.csv",
      "--json"
    ])
    expect(run.code, run.stderr).toBe(0)
    const stats = JSON.parse(run.stdout) as Stats & Record<string, unknown>
    expect(stats).toMatchObject({
      total_records: 5,
      removed_blacklist: 1,
      removed_monitor: 0,
      removed_conversion: 0,
      removed_maindatabase: 0,
      removed_duplicates: 1,
      removed_invalid: 1,
      final_clean_count: 2,
      dialect: { delimiter: "\t", has_header: true, phone_column: "Mobile", country_column: "Country" }
    })
    expect(addsUp(stats)).toBe(true)
    expect(readFileSync(path.join(scratch, "clean.csv"), "utf8")).toBe("447700900001\n33612345678\n")
    expect(readFileSync(path.join(scratch, "rejects.csv"), "utf8").split("\n")).toEqual([
      "row,phone,phone_e164,reason",
      `2,${BLACKLISTED},${BLACKLISTED},BLACKLIST`,
      "4,+44 7700 900001,447700900001,DUPLICATE",
      "5,??,,INVALID_PHONE_NUMBER",
      ""
    ])
    expect(readFileSync(path.join(scratch, "annotated.csv"), "utf8").split("\n")[0]).toBe(
      "Name,Mobile,Country,phone_e164,status,reason"
    )
    const added = await client.query(
      "SELECT 1 FROM main_database WHERE custom_variable_1 IN ('447700900001', '33612345678')"
    )
    expect(added.rowCount).toBe(2)
    await client.query("DELETE FROM main_database WHERE custom_variable_1 <> $1", [SENT])
  })

  it("reads a header-less list with --country and --phone-column", async () => {
    const input = path.join(scratch, "plain.csv")
    writeFileSync(input, "07700 900001,x\n07700 900002,y\n")
    const run = await optimizer([
      "clean",
      input,
      "--country",
      "GB",
      "--phone-column",
      "1",
      "--out",
      "plain.out",
      "--json"
    ])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ total_records: 2, final_clean_count: 2 })
    expect(readFileSync(path.join(scratch, "plain.out"), "utf8")).toBe("447700900001\n447700900002\n")
  })

  it("fails with a message and exit code 1 on a binary file, writing no output", async () => {
    const input = path.join(scratch, "photo.png")
    writeFileSync(input, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00]))
    const run = await optimizer(["clean", input, "--out", "never.csv"])
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/not a CSV text file/)
    expect(readdirSync(scratch)).not.toContain("never.csv")
  })

  it("files list / stats / download drive the stored-file flow", async () => {
    const { id } = await cleaned("447700900005\n447700900006\n")
    const list = await optimizer(["files", "list", "--status", "processed", "--json"])
    expect(list.code, list.stderr).toBe(0)
    expect((JSON.parse(list.stdout) as { items: Array<{ id: string }> }).items.map((f) => f.id)).toContain(id)
    const stats = await optimizer(["files", "stats", id, "--json"])
    expect(JSON.parse(stats.stdout)).toMatchObject({ file_id: id, total_records: 2, final_clean_count: 2 })
    const download = await optimizer(["files", "download", id])
    expect(download).toMatchObject({ code: 0, stdout: "447700900005\n447700900006\n" })
  })
})
