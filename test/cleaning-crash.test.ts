/**
 * A worker killed in the middle of a list (SIGKILL, as an OOM kill or a lost host would): the file
 * stays `processing`, the job comes back to another worker, and the file ends `processed` with the
 * same counts as an uninterrupted run — every number in `main_database` once, nothing counted twice.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, expect, it } from "vitest"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { spawnWorker } from "./support/spawnWorker.ts"

const ROWS = 250_000

let app: TestApp
let storageDir: string
let operator: string
const children: Array<ChildProcess> = []

beforeAll(async () => {
  storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-cleaning-crash-"))
  app = await startTestApp({ STORAGE_DIR: storageDir })
  operator = await app.createKey("operator")
})

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await app?.close()
  rmSync(storageDir, { recursive: true, force: true })
})

const startWorker = (): Promise<ChildProcess> =>
  spawnWorker({ DATABASE_URL: app.db.url, STORAGE_DIR: storageDir, LOG_LEVEL: "Error" }, children)

const getJson = async <A>(url: string): Promise<A> => (await (await call(app.url, operator, url)).json()) as A

it("resumes a list whose worker was SIGKILLed mid-file and counts every row once", async () => {
  // 250,000 rows in mixed formats: every 20th repeats an earlier number, every 50th is invalid,
  // numbers ending in 03 are on the blacklist.
  const lines: Array<string> = ["phone"]
  const kept: Array<string> = []
  const seen = new Set<string>()
  const blacklisted: Array<string> = []
  let duplicates = 0
  let invalid = 0
  let removedBlacklist = 0
  for (let i = 0; i < ROWS; i++) {
    if (i % 50 === 49) {
      lines.push("n/a")
      invalid++
      continue
    }
    const n = i % 20 === 19 ? i - 10 : i
    const key = `447400${String(n).padStart(6, "0")}`
    lines.push(i % 3 === 0 ? `+44 ${key.slice(2, 6)} ${key.slice(6)}` : i % 3 === 1 ? `0${key.slice(2)}` : key)
    if (seen.has(key)) {
      duplicates++
      continue
    }
    seen.add(key)
    if (n % 100 === 3) {
      blacklisted.push(key)
      removedBlacklist++
    } else {
      kept.push(key)
    }
  }
  const db = new pg.Client({ connectionString: app.db.url })
  await db.connect()
  try {
    await db.query("INSERT INTO blacklist (custom_variable_1, reason, source) SELECT unnest($1::text[]), 'X', 'test'", [
      blacklisted
    ])

    const form = new FormData()
    form.append("file", new Blob([lines.join("\n")]), "big.csv")
    const { id } = (await (await call(app.url, operator, "/upload", { body: form })).json()) as { id: string }

    const first = await startWorker()
    const started = await call(
      app.url,
      operator,
      `/${id}/process?country=GB&include_blacklist=true&include_main_database=true`,
      {
        method: "POST"
      }
    )
    expect(started.status).toBe(200)
    const { job_id: jobId } = (await started.json()) as { job_id: string }

    // Progress is visible while it runs; kill the worker as soon as it is part-way through.
    let progress: { state: string; processed: number | null; total: number | null } | undefined
    const until = Date.now() + 60_000
    while (Date.now() < until) {
      progress = await getJson(`/jobs/${jobId}`)
      if (progress!.state === "running" && (progress!.processed ?? 0) > 0) break
      await new Promise((r) => setTimeout(r, 25))
    }
    expect(progress).toMatchObject({ state: "running" })
    expect(progress!.processed).toBeGreaterThan(0)
    expect(progress!.processed).toBeLessThan(ROWS)
    expect(progress!.total).toBe(ROWS + 1)
    first.kill("SIGKILL")
    await new Promise((r) => first.once("exit", r))

    const row = await db.query<{ status: string }>("SELECT status FROM uploaded_csv_files WHERE id = $1", [id])
    expect(row.rows[0]!.status).toBe("processing")

    await startWorker()
    let status = "processing"
    const deadline = Date.now() + 90_000
    while (status === "processing" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250))
      const files = await getJson<{ items: Array<{ id: string; status: string; error_message: string | null }> }>(
        "/files"
      )
      const item = files.items.find((f) => f.id === id)!
      status = item.status
      if (status === "failed") throw new Error(item.error_message ?? "failed")
    }
    expect(status).toBe("processed")

    const stats = await getJson<Record<string, number>>(`/${id}/stats`)
    expect(stats).toMatchObject({
      total_records: ROWS,
      removed_invalid: invalid,
      removed_duplicates: duplicates,
      removed_blacklist: removedBlacklist,
      removed_maindatabase: 0,
      final_clean_count: kept.length
    })
    const download = await (await call(app.url, operator, `/${id}/download`)).text()
    expect(download).toBe(kept.join("\n") + "\n")
    const inMain = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM main_database")
    expect(inMain.rows[0]!.n).toBe(kept.length)
    const job = await getJson<{ state: string; attempts: number; processed: number | null; total: number | null }>(
      `/jobs/${jobId}`
    )
    expect(job).toMatchObject({ state: "completed", attempts: 2 })
    // Done, not the killed attempt's part-way figure.
    expect(job.total).not.toBeNull()
    expect(job.processed).toBe(job.total)
  } finally {
    await db.end()
  }
}, 180_000)
