/**
 * The commands that give the CLI parity with the HTTP API, run as a shell runs them (the real CLI
 * process) against the database of a running test app: each `--json` answer is compared with the
 * same operation's HTTP answer (same keys), and failures exit 1, usage errors 2.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import vectors from "../packages/core/test/encryption/aes-gcm-tokens.json" with { type: "json" }
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { runCli, runCliJson } from "./support/cli.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let app: TestApp
let admin: string
let dir: string
let worker: TestWorker | undefined
let env: Record<string, string>

const cli = (args: ReadonlyArray<string>) => runCli(args, { env, cwd: dir })
const cliJson = <A = any>(args: ReadonlyArray<string>) => runCliJson<A>(args, { env, cwd: dir })
const http = async (route: string, init: Parameters<typeof call>[3] = {}) => {
  const res = await call(app.url, admin, route, init)
  expect(res.status, route).toBeLessThan(300)
  return (await res.json()) as any
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "optimizer-cli-ops-"))
  const storage = path.join(dir, "files")
  app = await startTestApp({ AES_KEY: vectors.aes_key, STORAGE_DIR: storage })
  admin = await app.createKey("admin")
  env = { DATABASE_URL: app.db.url, STORAGE_DIR: storage, AES_KEY: vectors.aes_key }
  worker = await startTestWorker({ ...env })
})
afterAll(async () => {
  await worker?.close()
  worker = undefined
  await app?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe("lists: the manual imports, find-records, metrics", () => {
  it("manual-import, history, result, import-blacklist-csv answer the HTTP keys", async () => {
    writeFileSync(
      path.join(dir, "ops.csv"),
      "phone,reason,source\n+44 7700 900123,FRAUD,ops\n447700900124,FRAUD,ops\nxyz,FRAUD,ops\n"
    )
    const imported = await cliJson(["lists", "manual-import", "blacklist", "ops.csv", "--json"])
    expect(Object.keys(imported).sort()).toEqual([
      "accepted",
      "id",
      "original_filename",
      "rejected",
      "target",
      "uploaded"
    ])
    expect(imported).toMatchObject({
      target: "blacklist",
      original_filename: "ops.csv",
      uploaded: 3,
      accepted: 2,
      rejected: 1
    })

    const [history, httpHistory] = await Promise.all([
      cliJson(["lists", "history", "--json"]),
      http("/db-manual-update/history")
    ])
    expect(history).toEqual(httpHistory)
    expect(history.items[0]).toMatchObject({ id: imported.id, uploaded_count: 3, accepted_count: 2 })

    const result = await cli(["lists", "result", imported.id])
    expect(result.code).toBe(0)
    const httpResult = await call(app.url, admin, `/db-manual-update/${imported.id}/download`)
    expect(result.stdout).toBe(await httpResult.text())
    expect(result.stdout).toContain("rejected_invalid_phone")

    writeFileSync(path.join(dir, "black.csv"), "custom_variable_1,reason,clicks\n447700900125,OS,3\nnope,OS,1\n")
    const black = await cliJson(["lists", "import-blacklist-csv", "black.csv", "--json"])
    expect(black).toEqual({ ok: true, original_filename: "black.csv", rows_imported: 1, rows_rejected: 1 })

    const missing = await cli(["lists", "result", "00000000-0000-0000-0000-000000000000"])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/not found/i)
    expect((await cli(["lists", "manual-import", "whitelist", "ops.csv"])).code).toBe(2)
  })

  it("find-records and metrics print what the routes answer", async () => {
    const [found, httpFound, metrics, httpMetrics] = await Promise.all([
      cliJson(["find-records", "+44 7700 900125", "--json"]),
      http("/find_records", { json: { phone_number: "+44 7700 900125" } }),
      cliJson(["metrics", "--json"]),
      http("/get-metrics")
    ])
    expect(found).toEqual(httpFound)
    expect(found).toMatchObject({ list: "blacklist", reason: "OS" })
    expect(Object.keys(metrics).sort()).toEqual(Object.keys(httpMetrics).sort())
    expect(metrics.blacklist[0]).toBe(3)
  })
})

describe("exports, encryption files and jobs", () => {
  it("export <table>, export latest and export download", async () => {
    const done = await cliJson(["export", "blacklist", "--json"])
    expect(done).toMatchObject({ table_name: "blacklist", status: "completed", row_count: 3 })
    const [latest, httpLatest] = await Promise.all([
      cliJson(["export", "latest", "blacklist", "--json"]),
      http("/fetch-latest-db-export?table_name=blacklist", { method: "POST" })
    ])
    expect(latest).toEqual(httpLatest)
    expect(latest.id).toBe(done.id)
    const downloaded = await cli(["export", "download", "blacklist", "--out", "black-export.csv"])
    expect(downloaded.code, downloaded.stderr).toBe(0)
    expect(readFileSync(path.join(dir, "black-export.csv"), "utf8").split("\n")[0]).toMatch(/^custom_variable_1,/)
    expect(await cliJson(["export", "latest", "whitelist", "--json"])).toBeNull()
    expect((await cli(["export", "latest", "no_such_table"])).code).toBe(1)
  })

  it("encryption-files upload, list, process --wait, download, then jobs show / wait / cancel", async () => {
    writeFileSync(path.join(dir, "values.csv"), "447700900201\n447700900202\n")
    const uploaded = await cliJson(["encryption-files", "upload", "values.csv", "--json"])
    expect(uploaded).toMatchObject({ original_filename: "values.csv", status: "uploaded" })

    const [list, httpList] = await Promise.all([
      cliJson(["encryption-files", "list", "--json"]),
      http("/encrypted-files")
    ])
    expect(list).toEqual(httpList)

    // On a pipe --wait shows no progress: stderr stays empty, stdout is the file's one JSON answer.
    const processed = await cli(["encryption-files", "process", uploaded.id, "--wait", "--json"])
    expect(processed.stderr).toBe("")
    expect(processed.code).toBe(0)
    const file = JSON.parse(processed.stdout)
    expect(file).toMatchObject({ id: uploaded.id, status: "processed", record_count_total: 2 })

    const download = await cli(["encryption-files", "download", uploaded.id])
    expect(
      download.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(",")[0])
    ).toEqual(["447700900201", "447700900202"])

    const [job, httpJob] = await Promise.all([
      cliJson(["jobs", "show", file.job_id, "--json"]),
      http(`/jobs/${file.job_id}`)
    ])
    expect(job).toEqual(httpJob)
    const waited = await cli(["jobs", "wait", file.job_id, "--json"])
    expect(waited.code).toBe(0)
    expect(JSON.parse(waited.stdout)).toMatchObject({ id: file.job_id, state: "completed" })

    // A job no worker takes (the worker is stopped): cancel it; waiting for it then exits 1.
    const exportJob = await http("/process_db?table_name=whitelist", { method: "POST" })
    await worker?.close()
    worker = undefined
    const cancelled = await cliJson(["jobs", "cancel", exportJob.job_id, "--json"])
    expect(cancelled).toMatchObject({ id: exportJob.job_id, state: "cancelled" })
    const waitCancelled = await cli(["jobs", "wait", exportJob.job_id, "--json"])
    expect(waitCancelled.code).toBe(1)
    expect(JSON.parse(waitCancelled.stdout)).toMatchObject({ state: "cancelled" })
    expect(waitCancelled.stderr).toMatch(/cancelled/)
    expect((await cli(["jobs", "cancel", exportJob.job_id])).code).toBe(1)
  })
})
