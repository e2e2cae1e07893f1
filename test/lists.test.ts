/**
 * The phone lists as the frontend and an admin reach them over HTTP with API keys: the original's
 * manual import, its history and result download, the blacklist CSV import (into the blacklist
 * now), and the new explain / counts / remove — every bad input answered with a 4xx naming the
 * problem, never a 500.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startTestApp, type TestApp } from "./support/app.ts"

let app: TestApp
let storageDir: string
let admin: string
let viewer: string

beforeAll(async () => {
  storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-lists-"))
  app = await startTestApp({ STORAGE_DIR: storageDir, UPLOAD_MAX_BYTES: "200000" })
  admin = await app.createKey("admin")
  viewer = await app.createKey("viewer")
})
afterAll(async () => {
  await app?.close()
  rmSync(storageDir, { recursive: true, force: true })
})

const upload = (apiKey: string, pathAndQuery: string, content: string | Uint8Array, filename = "numbers.csv") => {
  const form = new FormData()
  form.append("file", new Blob([content]), filename)
  return call(app.url, apiKey, pathAndQuery, { body: form })
}

const detailOf = async (res: Response) => ((await res.json()) as { detail: string }).detail

describe("POST /db-manual-update/import", () => {
  it("imports into the blacklist and answers with the original's keys", async () => {
    const csv =
      "phone,reason,source\n+44 7700 900123,FRAUD,ops\n447700900124,FRAUD,ops\n+44 7700 900123,FRAUD,ops\nxyz,FRAUD,ops\n"
    const res = await upload(admin, "/db-manual-update/import?target=blacklist", csv, "ops list.csv")
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(["accepted", "id", "original_filename", "rejected", "target", "uploaded"])
    expect(body).toMatchObject({
      target: "blacklist",
      original_filename: "ops list.csv",
      uploaded: 4,
      accepted: 2,
      rejected: 2
    })

    const history = await call(app.url, viewer, "/db-manual-update/history")
    expect(history.status).toBe(200)
    const { items } = (await history.json()) as { items: Array<Record<string, unknown>> }
    expect(items[0]).toMatchObject({
      id: body.id,
      original_filename: "ops list.csv",
      target: "blacklist",
      uploaded_count: 4,
      accepted_count: 2,
      rejected_count: 2
    })
    expect(Object.keys(items[0]!).sort()).toEqual(
      ["accepted_count", "created_at", "id", "original_filename", "rejected_count", "target", "uploaded_count"].sort()
    )

    const download = await call(app.url, viewer, `/db-manual-update/${body.id}/download`)
    expect(download.status).toBe(200)
    expect(download.headers.get("content-type")).toMatch(/text\/csv/)
    expect(download.headers.get("content-disposition")).toContain('filename="result_ops list.csv"')
    expect((await download.text()).trim().split("\n")).toEqual([
      "phone,result",
      "+44 7700 900123,added_to_blacklist",
      "447700900124,added_to_blacklist",
      "+44 7700 900123,rejected_duplicate_in_file",
      "xyz,rejected_invalid_phone"
    ])
  })

  it("answers 4xx naming the problem for bad requests, never 500", async () => {
    const good = "phone,reason,source\n447700900130,R,S\n"
    const cases: Array<[Promise<Response>, number, RegExp]> = [
      [upload(admin, "/db-manual-update/import?target=whitelist", good), 400, /target must be blacklist or monitor/],
      [upload(admin, "/db-manual-update/import", good), 400, /target must be blacklist or monitor/],
      [call(app.url, admin, "/db-manual-update/import?target=blacklist", { method: "POST" }), 400, /file/],
      [call(app.url, admin, "/db-manual-update/import?target=blacklist", { json: { file: "x" } }), 400, /multipart/],
      [upload(admin, "/db-manual-update/import?target=blacklist", ""), 422, /empty/],
      [
        upload(admin, "/db-manual-update/import?target=blacklist", new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 8])),
        422,
        /not a CSV/
      ],
      [upload(admin, "/db-manual-update/import?target=monitor", "phone,source\n447700900131,S\n"), 400, /"reason"/],
      [upload(admin, "/db-manual-update/import?target=monitor", "x".repeat(200_001)), 413, /limit/]
    ]
    for (const [pending, status, detail] of cases) {
      const res = await pending
      expect(res.status).toBe(status)
      expect(await detailOf(res)).toMatch(detail)
    }
  })

  it("is for admins: a viewer gets 403, no key 401", async () => {
    const res = await upload(viewer, "/db-manual-update/import?target=blacklist", "phone,reason,source\n")
    expect(res.status).toBe(403)
    expect(await detailOf(res)).toMatch(/admin/)
    const none = await call(app.url, undefined, "/db-manual-update/history")
    expect(none.status).toBe(401)
  })

  it("answers 404 'Import not found' for an unknown import", async () => {
    for (const id of ["5b0b8f0e-9c51-4d43-a7a4-2d3f64f3e9a1", "nope"]) {
      const res = await call(app.url, viewer, `/db-manual-update/${id}/download`)
      expect(res.status).toBe(404)
      expect(await detailOf(res)).toBe("Import not found")
    }
  })
})

describe("POST /import-blacklist-csv", () => {
  it("upserts into the blacklist with the original's keys", async () => {
    const csv =
      "custom_variable_1,reason,source,clicks\n447700900140,OS_VERSION,VOLUUM,4\n00447700900141,OS_VERSION,VOLUUM,\n"
    const res = await upload(admin, "/import-blacklist-csv", csv, "black.csv")
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true, original_filename: "black.csv", rows_imported: 2, rows_rejected: 0 })
    const explained = await call(app.url, viewer, "/lists/explain?phone=%2B447700900141")
    expect(await explained.json()).toMatchObject({ phone: "447700900141", list: "blacklist", sticky: true })
  })

  it("names an unknown column and refuses a non-.csv file", async () => {
    const unknown = await upload(
      admin,
      "/import-blacklist-csv",
      "custom_variable_1,colour\n447700900142,red\n",
      "b.csv"
    )
    expect(unknown.status).toBe(400)
    expect(await detailOf(unknown)).toMatch(/"colour"/)
    const xlsx = await upload(admin, "/import-blacklist-csv", "custom_variable_1\n447700900143\n", "b.xlsx")
    expect(xlsx.status).toBe(400)
    expect(await detailOf(xlsx)).toMatch(/\.csv/)
    expect((await upload(viewer, "/import-blacklist-csv", "custom_variable_1\n", "b.csv")).status).toBe(403)
  })
})

describe("explain, counts, remove", () => {
  it("explains a number typed in any format, with its history", async () => {
    await upload(admin, "/db-manual-update/import?target=monitor", "phone,reason,source\n447700900150,WATCH,ops\n")
    const res = await call(app.url, viewer, `/lists/explain?phone=${encodeURIComponent("+44 7700 900150")}`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown> & { history: Array<Record<string, unknown>> }
    expect(body).toMatchObject({
      phone: "447700900150",
      list: "monitor",
      reason: "WATCH",
      source: "ops",
      sticky: false
    })
    expect(typeof body.since).toBe("string")
    expect(body.history).toHaveLength(1)
    expect(body.history[0]).toMatchObject({ action: "add", to_list: "monitor", actor: "api_key:test-admin" })

    const missing = await call(app.url, viewer, "/lists/explain")
    expect(missing.status).toBe(400)
    expect(await detailOf(missing)).toMatch(/phone/)
    const invalid = await call(app.url, viewer, "/lists/explain?phone=hello")
    expect(invalid.status).toBe(400)
    expect(await detailOf(invalid)).toMatch(/INVALID_PHONE_NUMBER/)
  })

  it("removes numbers from a list (admin), audited with the key's name", async () => {
    await upload(admin, "/db-manual-update/import?target=blacklist", "phone,reason,source\n447700900160,R,S\n")
    const forbidden = await call(app.url, viewer, "/lists/blacklist/remove", { json: { phones: ["447700900160"] } })
    expect(forbidden.status).toBe(403)
    const wrongList = await call(app.url, admin, "/lists/greylist/remove", { json: { phones: ["447700900160"] } })
    expect(wrongList.status).toBe(400)
    expect(await detailOf(wrongList)).toMatch(/list must be/)
    const badBody = await call(app.url, admin, "/lists/blacklist/remove", { json: { phone: "447700900160" } })
    expect(badBody.status).toBe(400)
    expect(await detailOf(badBody)).toMatch(/phones/)

    const res = await call(app.url, admin, "/lists/blacklist/remove", {
      json: { phones: ["+44 7700 900160", "447700900999", "junk"], reason: "opt-out" }
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ removed: 1, not_listed: 1, invalid: ["junk"] })
    const explained = (await (await call(app.url, viewer, "/lists/explain?phone=447700900160")).json()) as {
      list: string | null
      history: Array<{ action: string; actor: string; reason: string | null }>
    }
    expect(explained.list).toBeNull()
    expect(explained.history[0]).toMatchObject({ action: "remove", actor: "api_key:test-admin", reason: "opt-out" })
  })

  it("counts the lists", async () => {
    const res = await call(app.url, viewer, "/lists/counts")
    expect(res.status).toBe(200)
    const counts = (await res.json()) as Record<string, number>
    expect(Object.keys(counts).sort()).toEqual(["blacklist", "monitor", "whitelist"])
    expect(counts.blacklist).toBeGreaterThan(0)
  })
})
