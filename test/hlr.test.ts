/**
 * HLR end to end: HTTP → job → a worker → the fake hlrlookup batch API over real HTTP → PostgreSQL.
 * A cleaned file goes through HLR to the original's files and list changes; a second run while one is
 * active is a 409; cached numbers are not submitted again; a worker SIGKILLed while polling is
 * replaced by another that resumes the same batch (the fake counts one batch); and without the HLR
 * settings the four endpoints answer 503 naming the variables.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Env } from "@optimizer/core"
import { startFakeHlr, type FakeHlr } from "./fakes/hlrlookup.ts"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { spawnWorker } from "./support/spawnWorker.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let fake: FakeHlr
let app: TestApp
let bare: TestApp
let worker: TestWorker | undefined
let operator: string
let db: pg.Client
let storageDir: string
const children: Array<ChildProcess> = []

const hlrEnv = (): Env => ({
  HLRLOOKUP_APIKEY: fake.state.credentials.apiKey,
  HLRLOOKUP_SECRET: fake.state.credentials.secret,
  HLR_API_URL: fake.url,
  HLR_POLL_EVERY_SECONDS: "1"
})

const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T

beforeAll(async () => {
  fake = await startFakeHlr({ pollsToComplete: 2 })
  storageDir = await mkdtemp(join(tmpdir(), "optimizer-hlr-e2e-"))
  app = await startTestApp({ STORAGE_DIR: storageDir, ...hlrEnv() })
  operator = await app.createKey("operator")
  worker = await startTestWorker({ DATABASE_URL: app.db.url, STORAGE_DIR: storageDir, ...hlrEnv() })
  db = new pg.Client({ connectionString: app.db.url })
  await db.connect()
  bare = await startTestApp({ STORAGE_DIR: storageDir })
})

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await worker?.close()
  await db?.end()
  await bare?.close()
  await app?.close()
  await fake?.close()
  await rm(storageDir, { recursive: true, force: true })
})

const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** Uploads and cleans `numbers`; the processed file's id. */
const cleanedFile = async (numbers: ReadonlyArray<string>, filename: string): Promise<string> => {
  const form = new FormData()
  form.append("file", new Blob([`phone\n${numbers.join("\n")}\n`]), filename)
  const { id } = await json<{ id: string }>(await call(app.url, operator, "/upload", { body: form }))
  expect((await call(app.url, operator, `/${id}/process`, { method: "POST" })).status).toBe(200)
  await waitFor("the cleaning", async () => {
    const { items } = await json<{ items: Array<{ id: string; status: string }> }>(
      await call(app.url, operator, "/files")
    )
    return items.find((f) => f.id === id && f.status === "processed")
  })
  return id
}

const hlrStatus = (id: string) => call(app.url, operator, `/${id}/hlr`).then((r) => json(r))
const waitComplete = (id: string, timeoutMs?: number) =>
  waitFor(
    "the HLR run",
    async () => {
      const s = await hlrStatus(id)
      if (s.hlr_status === "failed") throw new Error(`HLR failed: ${String(s.hlr_error_message)}`)
      return s.hlr_status === "complete" ? s : undefined
    },
    timeoutMs
  )

const listOf = async (phone: string) =>
  (
    await db.query<{ list: string; reason: string }>(
      `SELECT 'blacklist' AS list, reason FROM blacklist WHERE custom_variable_1 = $1
       UNION ALL SELECT 'monitor', reason FROM monitor WHERE custom_variable_1 = $1`,
      [phone]
    )
  ).rows

const N = (i: number) => `4477009002${String(i).padStart(2, "0")}`

describe("HLR over HTTP", () => {
  it("a cleaned file goes through HLR to the original's files and list changes; a second run is a 409", async () => {
    fake.state.outcomes.set(N(2), { live_status: "DEAD" })
    fake.state.outcomes.set(N(3), { live_status: "LIVE", network: "Aero2" })
    fake.state.outcomes.set(N(4), { live_status: "INCONCLUSIVE" })
    const id = await cleanedFile([N(1), N(2), N(3), N(4), N(5)], "broadcast.csv")
    const other = await cleanedFile([N(9)], "other.csv")

    fake.state.pollsToComplete = 4
    const started = await call(app.url, operator, `/${id}/hlr`, { method: "POST" })
    expect(started.status).toBe(200)
    expect(await json(started)).toMatchObject({ ok: true, file_id: id, hlr_status: "processing" })
    const second = await call(app.url, operator, `/${other}/hlr`, { method: "POST" })
    expect(second.status).toBe(409)
    expect((await json<{ detail: string }>(second)).detail).toBe("Another file is already running HLR")
    expect((await call(app.url, operator, `/${id}/hlr/download`)).status).toBe(400)
    const refused = await call(app.url, operator, `/${id}/delete`, { method: "POST" })
    expect(refused.status).toBe(409)
    const notArchived = await call(app.url, operator, `/${id}/archive`, { method: "POST" })
    expect(notArchived.status).toBe(409)

    const done = await waitComplete(id)
    expect(Object.keys(done)).toEqual(
      expect.arrayContaining([
        "file_id",
        "hlr_status",
        "hlr_batch_id",
        "hlr_result_file_path",
        "hlr_started_at",
        "hlr_completed_at",
        "hlr_num_items",
        "hlr_num_complete",
        "hlr_error_message",
        "hlr_raw_file_path"
      ])
    )
    expect(done).toMatchObject({ hlr_num_items: 5, hlr_num_complete: 5 })
    expect(done.result).toMatchObject({ sent: 5, counts: { reused: 0, categories: { live: 2, risky: 1, dead: 1 } } })

    const clean = await call(app.url, operator, `/${id}/hlr/download`)
    expect(clean.status).toBe(200)
    expect(clean.headers.get("content-disposition")).toContain("hlr_broadcast.csv")
    expect(await clean.text()).toBe(`phone_number\n${N(1)}\n${N(5)}\n`)
    const raw = await call(app.url, operator, `/${id}/hlr/raw`)
    expect(raw.headers.get("content-disposition")).toContain("hlr_raw_broadcast.csv")
    expect((await raw.text()).split("\n")[0]).toContain("current_network_details.name")
    expect(await listOf(N(2))).toEqual([{ list: "blacklist", reason: "HLR_FAILED" }])
    expect(await listOf(N(3))).toEqual([{ list: "blacklist", reason: "HLR_RISKY_NETWORK" }])
    expect(await listOf(N(4))).toEqual([{ list: "monitor", reason: "HLR_MONITORED" }])
    const live = await db.query("SELECT custom_variable_1 FROM api_hlr_live_numbers ORDER BY 1")
    expect(live.rows.map((r) => r.custom_variable_1)).toEqual(expect.arrayContaining([N(1), N(5)]))

    // Cached numbers are not submitted again.
    fake.state.pollsToComplete = 1
    const before = fake.state.submitted.length
    const again = await cleanedFile([N(1), N(2), N(6)], "again.csv")
    expect((await call(app.url, operator, `/${again}/hlr`, { method: "POST" })).status).toBe(200)
    const reran = await waitComplete(again)
    expect(fake.state.submitted.slice(before)).toEqual([N(6)])
    expect(reran.result).toMatchObject({ sent: 1, counts: { reused: 2 } })

    // HLR again on the first file, every number cached now (no batch, so no new raw results): the new
    // clean file replaces the old one in the store; the raw results stay the last batch's.
    const hlrFilesOf = async (fileId: string) =>
      (await readdir(join(storageDir, "hlr"))).filter((name) => name.startsWith(fileId)).map((name) => `hlr/${name}`)
    const first = await hlrStatus(id)
    expect((await hlrFilesOf(id)).sort()).toEqual([first.hlr_raw_file_path, first.hlr_result_file_path].sort())
    expect((await call(app.url, operator, `/${id}/hlr`, { method: "POST" })).status).toBe(200)
    const third = await waitComplete(id)
    expect(third.result).toMatchObject({ sent: 0 })
    expect(third.hlr_result_file_path).not.toBe(first.hlr_result_file_path)
    expect(third.hlr_raw_file_path).toBe(first.hlr_raw_file_path)
    expect((await hlrFilesOf(id)).sort()).toEqual([third.hlr_raw_file_path, third.hlr_result_file_path].sort())
    expect(await (await call(app.url, operator, `/${id}/hlr/download`)).text()).toBe(`phone_number\n${N(1)}\n${N(5)}\n`)
  })

  it("a worker SIGKILLed while polling: another resumes the same batch (one batch created)", async () => {
    await worker?.close()
    worker = undefined
    const startWorker = () =>
      spawnWorker({ DATABASE_URL: app.db.url, STORAGE_DIR: storageDir, LOG_LEVEL: "Error", ...hlrEnv() }, children)
    const form = new FormData()
    form.append("file", new Blob([`${N(30)}\n${N(31)}\n`]), "kill.csv")
    const { id } = await json<{ id: string }>(await call(app.url, operator, "/upload", { body: form }))
    const first = await startWorker()
    await call(app.url, operator, `/${id}/process`, { method: "POST" })
    await waitFor("the cleaning", async () =>
      (
        (await json(await call(app.url, operator, "/files"))) as {
          items: Array<{ id: string; status: string }>
        }
      ).items.find((f) => f.id === id && f.status === "processed")
    )

    fake.state.pollsToComplete = 1_000_000
    const created = fake.state.batchesCreated
    expect((await call(app.url, operator, `/${id}/hlr`, { method: "POST" })).status).toBe(200)
    const polling = await waitFor("polling", async () => {
      const s = await hlrStatus(id)
      return s.hlr_status === "processing" && s.hlr_batch_id !== null ? s : undefined
    })
    first.kill("SIGKILL")
    await new Promise((r) => first.once("exit", r))
    fake.state.pollsToComplete = 1
    await startWorker()
    const done = await waitComplete(id, 90_000)
    expect(done.hlr_batch_id).toBe(polling.hlr_batch_id)
    expect(fake.state.batchesCreated).toBe(created + 1)
    expect(fake.state.count("POST", `/batches/${String(polling.hlr_batch_id)}/source`)).toBe(1)
  }, 120_000)

  it("without the HLR settings the four endpoints answer 503 naming the variables", async () => {
    const key = await bare.createKey("operator")
    const id = "00000000-0000-4000-8000-000000000000"
    for (const [method, path] of [
      ["POST", `/${id}/hlr`],
      ["GET", `/${id}/hlr`],
      ["GET", `/${id}/hlr/download`],
      ["GET", `/${id}/hlr/raw`]
    ] as const) {
      const res = await call(bare.url, key, path, { method })
      expect(res.status).toBe(503)
      const body = await json<{ detail: string }>(res)
      expect(body.detail).toContain("HLRLOOKUP_APIKEY")
      expect(body.detail).toContain("HLRLOOKUP_SECRET")
    }
  })
})
