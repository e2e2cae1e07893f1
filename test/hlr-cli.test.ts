/**
 * `optimizer hlr start|status|download` as a user runs it: the CLI binary in a scratch folder, a
 * worker beside it on the same database and files, the fake hlrlookup batch API.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Env } from "@optimizer/core"
import { startFakeHlr, type FakeHlr } from "./fakes/hlrlookup.ts"
import { runCli, runCliInTerminal } from "./support/cli.ts"
import { createTestDatabase, type TestDatabase } from "./support/database.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let dir: string
let db: TestDatabase
let fake: FakeHlr
let worker: TestWorker

const hlrEnv = (): Env => ({
  HLRLOOKUP_APIKEY: fake.state.credentials.apiKey,
  HLRLOOKUP_SECRET: fake.state.credentials.secret,
  HLR_API_URL: fake.url,
  HLR_POLL_EVERY_SECONDS: "1"
})

const optimizer = (args: ReadonlyArray<string>, env: Env = hlrEnv()) =>
  runCli(args, { cwd: dir, env: { DATABASE_URL: db.url, STORAGE_DIR: dir, ...(env as Record<string, string>) } })

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "optimizer-hlr-cli-"))
  db = await createTestDatabase()
  fake = await startFakeHlr({ pollsToComplete: 2 })
  worker = await startTestWorker({ DATABASE_URL: db.url, STORAGE_DIR: dir, ...hlrEnv() })
})
afterAll(async () => {
  await worker?.close()
  await fake?.close()
  await db?.drop()
  rmSync(dir, { recursive: true, force: true })
})

describe("optimizer hlr", () => {
  it("start --wait, status and download (clean and --raw) of a processed file", async () => {
    fake.state.outcomes.set("447700900302", { live_status: "DEAD" })
    writeFileSync(path.join(dir, "list.csv"), "phone\n447700900301\n447700900302\n")
    const uploaded = JSON.parse((await optimizer(["files", "upload", "list.csv", "--json"])).stdout) as { id: string }
    const processed = await optimizer(["files", "process", uploaded.id, "--wait"])
    expect(processed.code).toBe(0)

    const started = await optimizer(["hlr", "start", uploaded.id, "--wait", "--json"])
    expect(started.code).toBe(0)
    expect(JSON.parse(started.stdout)).toMatchObject({
      file_id: uploaded.id,
      hlr_status: "complete",
      hlr_num_items: 2,
      result: { sent: 2, counts: { categories: { live: 1, dead: 1 } } }
    })
    // On a pipe the progress is not drawn: stdout holds the one JSON answer, stderr nothing.
    expect(started.stderr).toBe("")

    const status = await optimizer(["hlr", "status", uploaded.id])
    expect(status.stdout).toMatch(/hlr status\s+complete/)
    expect(status.stdout).toMatch(/progress\s+2 \/ 2/)

    expect((await optimizer(["hlr", "download", uploaded.id, "--out", "clean.csv"])).code).toBe(0)
    expect(readFileSync(path.join(dir, "clean.csv"), "utf8")).toBe("phone_number\n447700900301\n")
    const raw = await optimizer(["hlr", "download", uploaded.id, "--raw"])
    expect(raw.stdout.split("\n")[0]).toContain("live_status")
  })

  it("start --wait on a terminal: the batch's progress drawn on one line, then the run's status", async () => {
    writeFileSync(path.join(dir, "terminal.csv"), "phone\n447700900311\n447700900312\n447700900313\n")
    const uploaded = JSON.parse((await optimizer(["files", "upload", "terminal.csv", "--json"])).stdout) as {
      id: string
    }
    expect((await optimizer(["files", "process", uploaded.id, "--wait"])).code).toBe(0)
    const run = await runCliInTerminal(["hlr", "start", uploaded.id, "--wait"], {
      cwd: dir,
      env: { DATABASE_URL: db.url, STORAGE_DIR: dir, ...(hlrEnv() as Record<string, string>) }
    })
    expect(run.code, run.output).toBe(0)
    expect(run.output).toMatch(/\rhlr .*numbers/)
    expect(run.output).toMatch(/hlr status\s+complete/)
    expect(run.output).toMatch(/progress\s+3 \/ 3/)
  })

  it("without the HLR settings: exit 1 naming the variables", async () => {
    const run = await optimizer(["hlr", "status", "00000000-0000-4000-8000-000000000000"], {})
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/HLRLOOKUP_APIKEY, HLRLOOKUP_SECRET/)
  })
})
