/**
 * Encryption files as the frontend uses them, over HTTP with API keys: upload, list (the
 * encryption table, not the cleaning one), process as a job (encrypt; decrypt for admins only),
 * download in the original's two-column format, archive, delete (stored files too) — and every bad
 * input answered with a 4xx naming the problem.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeCipher, parseAesKey } from "@optimizer/core"
import vectors from "../packages/core/test/encryption/aes-gcm-tokens.json" with { type: "json" }
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

const key = parseAesKey(vectors.aes_key)
if (Result.isFailure(key)) throw new Error(key.failure)
const cipher = makeCipher(key.success)

let app: TestApp
let worker: TestWorker | undefined
let storageDir: string
let admin: string
let operator: string
let viewer: string

beforeAll(async () => {
  storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-encfiles-"))
  app = await startTestApp({ AES_KEY: vectors.aes_key, STORAGE_DIR: storageDir })
  admin = await app.createKey("admin")
  operator = await app.createKey("operator")
  viewer = await app.createKey("viewer")
})
afterAll(async () => {
  await worker?.close()
  await app?.close()
  rmSync(storageDir, { recursive: true, force: true })
})

const upload = (apiKey: string, content: string | Uint8Array, filename = "numbers.csv") => {
  const form = new FormData()
  form.append("file", new Blob([content]), filename)
  return call(app.url, apiKey, "/upload-encrypted", { body: form })
}

const uploaded = async (content: string, filename = "numbers.csv"): Promise<string> => {
  const res = await upload(operator, content, filename)
  expect(res.status).toBe(200)
  return ((await res.json()) as { id: string }).id
}

interface Item {
  id: string
  status: string
  error_message: string | null
  record_count_total: number | null
  record_count_failed: number | null
  direction: string
  job_id: string | null
}

const listed = async (apiKey = viewer, query = ""): Promise<Array<Item>> => {
  const res = await call(app.url, apiKey, `/encrypted-files${query}`)
  expect(res.status).toBe(200)
  return ((await res.json()) as { items: Array<Item> }).items
}

const itemOf = async (id: string): Promise<Item> => {
  const item = (await listed()).find((i) => i.id === id)
  if (item === undefined) throw new Error(`file ${id} is not listed`)
  return item
}

const waitFor = async (id: string, statuses: ReadonlyArray<string>, timeoutMs = 20_000): Promise<Item> => {
  const until = Date.now() + timeoutMs
  let last: Item | undefined
  while (Date.now() < until) {
    last = await itemOf(id)
    if (statuses.includes(last.status)) return last
    await new Promise((r) => setTimeout(r, 150))
  }
  throw new Error(`file ${id} did not become ${statuses.join("|")}; last seen ${JSON.stringify(last)}`)
}

const detailOf = async (res: Response) => (await res.json()) as { detail: string; code: string }

/** The stored files of the app, relative to its storage folder. */
const storedFiles = (): Array<string> =>
  readdirSync(storageDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith("."))
    .map((e) => path.relative(storageDir, path.join(e.parentPath, e.name)))

describe("before any worker runs", () => {
  it("upload answers the original's keys and the file is listed as uploaded", async () => {
    const res = await upload(operator, "447700900123\n447700900124\n", "mine.csv")
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(["id", "original_filename", "status"])
    expect(body).toMatchObject({ original_filename: "mine.csv", status: "uploaded" })
    const items = await listed()
    const item = items.find((i) => i.id === body.id)!
    expect(Object.keys(item)).toEqual([
      "id",
      "original_filename",
      "status",
      "uploaded_at",
      "processing_started_at",
      "processed_at",
      "error_message",
      "direction",
      "record_count_total",
      "record_count_failed",
      "job_id"
    ])
    expect(item).toMatchObject({ status: "uploaded", record_count_total: 2, processed_at: null })
  })

  it("a viewer may list but not upload; no key is 401", async () => {
    expect((await upload(viewer, "447700900123\n")).status).toBe(403)
    expect((await call(app.url, undefined, "/encrypted-files")).status).toBe(401)
  })

  it("a second file cannot start while one is processing (409), and a processing file cannot be archived", async () => {
    const first = await uploaded("447700900123\n")
    const second = await uploaded("447700900124\n")
    const started = await call(app.url, operator, `/${first}/process-encrypted`, { method: "POST" })
    expect(started.status).toBe(200)
    const body = (await started.json()) as Record<string, unknown>
    expect(body).toMatchObject({ ok: true, file_id: first, status: "processing" })
    expect(body.job_id).toMatch(/^[0-9a-f-]{36}$/)
    const blocked = await call(app.url, operator, `/${second}/process-encrypted`, { method: "POST" })
    expect(blocked.status).toBe(409)
    expect((await detailOf(blocked)).detail).toMatch(/already processing/)
    const archive = await call(app.url, operator, `/${first}/archive-encrypted`, { method: "POST" })
    expect(archive.status).toBe(409)
    // The status filter, comma-separated as /files takes it.
    const processing = await listed(viewer, "?status=processing")
    expect(processing.map((i) => i.id)).toEqual([first])
    expect((await listed(viewer, "?status=uploaded,processing")).map((i) => i.id)).toContain(second)
  })

  it("a file whose job is cancelled is failed, never processing forever, and can be processed again", async () => {
    const [stuck] = await listed(viewer, "?status=processing")
    expect(stuck?.job_id).toBeTruthy()
    const cancelled = await call(app.url, operator, `/jobs/${stuck!.job_id}/cancel`, { method: "POST" })
    expect(cancelled.status).toBe(200)
    const item = await itemOf(stuck!.id)
    expect(item.status).toBe("failed")
    expect(item.error_message).toBeTruthy()
    // Now another file may start (and this one again later: failed files are eligible).
    const other = (await listed(viewer, "?status=uploaded"))[0]!
    expect((await call(app.url, operator, `/${other.id}/process-encrypted`, { method: "POST" })).status).toBe(200)
  })
})

describe("with a worker", () => {
  beforeAll(async () => {
    worker = await startTestWorker({ DATABASE_URL: app.db.url, STORAGE_DIR: storageDir, AES_KEY: vectors.aes_key })
  })

  it("encrypts a file: value,token per row, no header, every token decrypts to its value", async () => {
    // Let the file queued by the 409 test finish first (one file at a time).
    for (const item of await listed(viewer, "?status=processing")) await waitFor(item.id, ["processed", "failed"])
    const id = await uploaded('\uFEFFphone\n+44 7700 900123\n\n447700900124,extra\n"a,b"\n', "list.csv")
    const res = await call(app.url, operator, `/${id}/process-encrypted`, { method: "POST" })
    expect(res.status).toBe(200)
    const done = await waitFor(id, ["processed", "failed"])
    expect(done).toMatchObject({
      status: "processed",
      direction: "encrypt",
      record_count_total: 4,
      record_count_failed: 0
    })

    const download = await call(app.url, viewer, `/${id}/download-encrypted`)
    expect(download.status).toBe(200)
    expect(download.headers.get("content-type")).toMatch(/text\/csv/)
    expect(download.headers.get("content-disposition")).toContain('filename="encrypted_list.csv"')
    const lines = (await download.text()).trimEnd().split("\n")
    expect(lines).toHaveLength(4)
    const rows = lines.map((line) => {
      const comma = line.lastIndexOf(",")
      return [line.slice(0, comma), line.slice(comma + 1)] as const
    })
    expect(rows.map(([value]) => value)).toEqual(["phone", "+44 7700 900123", "447700900124", '"a,b"'])
    for (const [value, token] of rows) {
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
      const plain = cipher.decrypt(token)
      expect(Result.isSuccess(plain) && plain.success).toBe(value === '"a,b"' ? "a,b" : value)
    }
  })

  it("decrypting and its download need an admin (403 for others); failed tokens get an empty column and are counted", async () => {
    const good = vectors.vectors[0]!
    const id = await uploaded(
      `${good.token}\n${good.token_standard_padded}\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nnot a token\n`
    )
    const denied = await call(app.url, operator, `/${id}/process-encrypted?direction=decrypt`, { method: "POST" })
    expect(denied.status).toBe(403)
    expect((await detailOf(denied)).detail).toMatch(/admin/)
    const bad = await call(app.url, admin, `/${id}/process-encrypted?direction=sideways`, { method: "POST" })
    expect(bad.status).toBe(400)
    expect((await detailOf(bad)).detail).toMatch(/direction/)

    const res = await call(app.url, admin, `/${id}/process-encrypted?direction=decrypt`, { method: "POST" })
    expect(res.status).toBe(200)
    const done = await waitFor(id, ["processed", "failed"])
    expect(done).toMatchObject({
      status: "processed",
      direction: "decrypt",
      record_count_total: 4,
      record_count_failed: 2
    })
    // The decrypted file holds numbers in clear: admins only.
    for (const key of [viewer, operator]) {
      const refused = await call(app.url, key, `/${id}/download-encrypted`)
      expect(refused.status).toBe(403)
      const body = await refused.text()
      expect(body).toMatch(/admin role/)
      expect(body).not.toContain(good.plaintext)
    }
    const download = await call(app.url, admin, `/${id}/download-encrypted`)
    expect(download.headers.get("content-disposition")).toContain('filename="decrypted_numbers.csv"')
    expect((await download.text()).split("\n")).toEqual([
      `${good.token},${good.plaintext}`,
      `${good.token_standard_padded},${good.plaintext}`,
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,",
      "not a token,",
      ""
    ])
  })

  it("a processed file cannot be processed again (400); download before processing is 400, of nothing 404", async () => {
    const id = await uploaded("447700900125\n")
    const early = await call(app.url, viewer, `/${id}/download-encrypted`)
    expect(early.status).toBe(400)
    expect((await detailOf(early)).detail).toMatch(/not processed yet/)
    await call(app.url, operator, `/${id}/process-encrypted`, { method: "POST" })
    await waitFor(id, ["processed"])
    const again = await call(app.url, operator, `/${id}/process-encrypted`, { method: "POST" })
    expect(again.status).toBe(400)
    expect((await detailOf(again)).detail).toMatch(/not eligible.*processed/)
    const missing = "00000000-0000-4000-8000-000000000000"
    expect((await call(app.url, viewer, `/${missing}/download-encrypted`)).status).toBe(404)
    expect((await call(app.url, operator, `/${missing}/process-encrypted`, { method: "POST" })).status).toBe(404)
    expect((await call(app.url, operator, `/not-a-uuid/process-encrypted`, { method: "POST" })).status).toBe(404)
    expect((await call(app.url, operator, `/${missing}/archive-encrypted`, { method: "POST" })).status).toBe(404)
    expect((await call(app.url, operator, `/${missing}/delete-encrypted`, { method: "POST" })).status).toBe(404)
  })

  it("a file that is not valid CSV (an unbalanced quote) ends failed with the reason, and may be retried", async () => {
    const id = await uploaded('447700900127\n"447700900128\n447700900129\n')
    expect((await call(app.url, operator, `/${id}/process-encrypted`, { method: "POST" })).status).toBe(200)
    const failed = await waitFor(id, ["processed", "failed"])
    expect(failed.status).toBe("failed")
    expect(failed.error_message).toMatch(/unbalanced quote/)
    expect((await call(app.url, viewer, `/${id}/download-encrypted`)).status).toBe(400)
    // failed files are eligible again (the original's rule)
    expect((await call(app.url, operator, `/${id}/process-encrypted`, { method: "POST" })).status).toBe(200)
    expect((await waitFor(id, ["processed", "failed"])).status).toBe("failed")
  })

  it("archive answers null and shows the file archived; delete answers null and removes the row and its files", async () => {
    const id = await uploaded("447700900126\n")
    await call(app.url, operator, `/${id}/process-encrypted`, { method: "POST" })
    await waitFor(id, ["processed"])
    // the output of each run has a key of its own: processed_encrypted/<id>.<run>.csv
    const ofFile = () => storedFiles().filter((f) => f.includes(id))
    expect(ofFile()).toEqual(
      expect.arrayContaining([
        `raw_encrypted/${id}.csv`,
        expect.stringMatching(`^processed_encrypted/${id}\\.\\d+\\.csv$`)
      ])
    )

    const archived = await call(app.url, operator, `/${id}/archive-encrypted`, { method: "POST" })
    expect(archived.status).toBe(200)
    expect(await archived.json()).toBeNull()
    expect((await itemOf(id)).status).toBe("archived")

    const deleted = await call(app.url, operator, `/${id}/delete-encrypted`, { method: "POST" })
    expect(deleted.status).toBe(200)
    expect(await deleted.json()).toBeNull()
    expect((await listed()).some((i) => i.id === id)).toBe(false)
    expect(ofFile()).toEqual([])
  })
})

describe("bad input is a 4xx naming the problem", () => {
  it("no file field: 400", async () => {
    const form = new FormData()
    form.append("other", "x")
    const res = await call(app.url, operator, "/upload-encrypted", { body: form })
    expect(res.status).toBe(400)
    expect((await detailOf(res)).detail).toMatch(/'file'/)
  })

  it("not multipart at all: 400", async () => {
    const res = await call(app.url, operator, "/upload-encrypted", { json: { file: "x" } })
    expect(res.status).toBe(400)
    expect((await detailOf(res)).detail).toMatch(/multipart/)
  })

  it("a binary (non-CSV) file: 422, nothing stored", async () => {
    const before = storedFiles().length
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48])
    const res = await upload(operator, png, "photo.png")
    expect(res.status).toBe(422)
    expect((await detailOf(res)).detail).toMatch(/not a CSV/)
    expect(storedFiles().length).toBe(before)
  })

  it("an empty file, or one of blank lines only: 422", async () => {
    for (const content of ["", "\n \r\n\t\n", "\uFEFF"]) {
      const res = await upload(operator, content)
      expect(res.status).toBe(422)
      expect((await detailOf(res)).detail).toMatch(/empty/)
    }
  })

  it("an unknown status filter: 400 naming the allowed ones", async () => {
    const res = await call(app.url, viewer, "/encrypted-files?status=done")
    expect(res.status).toBe(400)
    expect((await detailOf(res)).detail).toMatch(/"done".*uploaded, processing, processed, failed, archived/)
  })
})
