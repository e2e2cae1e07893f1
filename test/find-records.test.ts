/**
 * `/find_records` over HTTP with an API key: a number's Voluum rows in the original's positional
 * shape (with `columns` naming the positions), its current list and reason, found by a phone in
 * any format or (admins only) by its encryption token; injection strings match nothing; malformed
 * tokens are 400s; over-long values are refused before any parsing.
 */
import pg from "pg"
import { Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeCipher, parseAesKey, TS_SOURCES_COLUMNS } from "@optimizer/core"
import vectors from "../packages/core/test/encryption/aes-gcm-tokens.json" with { type: "json" }
import { call, startTestApp, type TestApp } from "./support/app.ts"

const key = parseAesKey(vectors.aes_key)
if (Result.isFailure(key)) throw new Error(key.failure)
const cipher = makeCipher(key.success)

let app: TestApp
let viewer: string
let admin: string
let client: pg.Client

interface Found {
  results: Array<Array<unknown>>
  columns: Array<string>
  list: string | null
  reason: string | null
}

const find = async (phone: unknown, key = viewer) =>
  call(app.url, key, "/find_records", { json: { phone_number: phone } })

const found = async (phone: string, key = viewer): Promise<Found> => {
  const res = await find(phone, key)
  expect(res.status).toBe(200)
  return (await res.json()) as Found
}

beforeAll(async () => {
  app = await startTestApp({ AES_KEY: vectors.aes_key })
  viewer = await app.createKey("viewer")
  admin = await app.createKey("admin")
  client = new pg.Client({ connectionString: app.db.url })
  await client.connect()
  // Two syncs' rows for one number, one for another; the number is blacklisted by HLR.
  await client.query(`
    INSERT INTO api_voluum_ts_sources (custom_variable_1, timestamp_created, category, clicks, visits, os_version, ip, cost_sources)
    VALUES ('447700900123', '2025-10-02T10:00:00Z', 'BLACKLIST', 3, 5, 'Android 7', '10.0.0.1', 'a,b'),
           ('447700900123', '2025-10-01T10:00:00Z', 'MONITOR', 1, 2, 'Android 8', '10.0.0.1', NULL),
           ('447700900999', '2025-10-01T10:00:00Z', 'WHITELIST', 1, 1, 'IOS 18.7', NULL, NULL)`)
  await client.query(
    `INSERT INTO blacklist (custom_variable_1, reason, source, sticky) VALUES ('447700900123', 'HLR_FAILED', 'CSV_CLEAN_UPLOAD', true)`
  )
  await client.query(`INSERT INTO whitelist (custom_variable_1, source) VALUES ('447700900999', 'VOLUUM')`)
})
afterAll(async () => {
  await client?.end()
  await app?.close()
})

describe("POST /find_records", () => {
  it("answers the rows as positional arrays in the table's column order, oldest first, with the current list", async () => {
    const body = await found("447700900123")
    expect(Object.keys(body)).toEqual(["results", "columns", "list", "reason"])
    expect(body.columns).toEqual([...TS_SOURCES_COLUMNS])
    expect(body.columns).toHaveLength(32)
    expect(body.list).toBe("blacklist")
    expect(body.reason).toBe("HLR_FAILED")
    expect(body.results).toHaveLength(2)
    const at = (name: string) => body.columns.indexOf(name)
    for (const row of body.results) {
      expect(row).toHaveLength(32)
      expect(row[at("custom_variable_1")]).toBe("447700900123")
      expect(row[at("data_source")]).toBe("VOLUUM")
    }
    expect(body.results.map((r) => r[at("category")])).toEqual(["MONITOR", "BLACKLIST"])
    expect(body.results.map((r) => r[at("os_version")])).toEqual(["Android 8", "Android 7"])
    expect(body.results[1]![at("clicks")]).toBe(3)
    expect(body.results[1]![at("cost_sources")]).toBe("a,b")
    expect(new Date(body.results[0]![at("timestamp_created")] as string).toISOString()).toBe("2025-10-01T10:00:00.000Z")
    // The physical order of the original's columns: custom_variable_1 is the fourth.
    expect(at("custom_variable_1")).toBe(3)
  })

  it("finds the same rows whatever the phone's spelling", async () => {
    const canonical = await found("447700900123")
    for (const spelling of ["+44 7700 900123", "+447700900123", "0044 7700 900 123", " 447700900123 "]) {
      expect(await found(spelling)).toEqual(canonical)
    }
  })

  it("finds them by the number's encryption token too (any accepted spelling of it), for admins", async () => {
    const canonical = await found("447700900123")
    const token = cipher.encrypt("447700900123")
    expect(await found(token, admin)).toEqual(canonical)
    expect(await found(`${token}==`.slice(0, token.length + ((4 - (token.length % 4)) % 4)), admin)).toEqual(canonical)
  })

  it("a token from a viewer or an operator is a 403: the answer would reveal the number", async () => {
    const token = cipher.encrypt("447700900123")
    for (const key of [viewer, await app.createKey("operator")]) {
      const res = await find(token, key)
      expect(res.status).toBe(403)
      const body = (await res.json()) as { detail: string; code: string }
      expect(body.code).toBe("FORBIDDEN")
      expect(body.detail).toMatch(/admin/)
      expect(JSON.stringify(body)).not.toContain("447700900123")
    }
  })

  it("a value over 256 characters is a 400 naming the field; a 10 MB body is a 413 before it is read", async () => {
    const long = await find("4".repeat(257), admin)
    expect(long.status).toBe(400)
    expect(((await long.json()) as { detail: string }).detail).toMatch(/phone_number: at most 256 characters/)
    const huge = await find("A".repeat(10 * 1024 * 1024), admin)
    expect(huge.status).toBe(413)
    expect(((await huge.json()) as { code: string }).code).toBe("PAYLOAD_TOO_LARGE")
  })

  it("a listed number without history: no rows, its list; an unknown number: nothing", async () => {
    await client.query(
      `INSERT INTO monitor (custom_variable_1, reason, source) VALUES ('447700900555', 'OS_VERSION', 'VOLUUM')`
    )
    expect(await found("+44 7700 900555")).toMatchObject({ results: [], list: "monitor", reason: "OS_VERSION" })
    expect(await found("+44 7700 900999")).toMatchObject({ list: "whitelist", reason: null })
    expect(await found("447700900777")).toMatchObject({ results: [], list: null, reason: null })
  })

  it("an injection string is a value that matches nothing", async () => {
    for (const attack of [
      "1' OR '1'='1",
      "447700900123' OR '1'='1",
      "'; DROP TABLE api_voluum_ts_sources; --",
      "447700900123; DELETE FROM blacklist"
    ]) {
      expect(await found(attack)).toMatchObject({ results: [], list: null, reason: null })
    }
    const rows = await client.query("SELECT count(*)::int AS n FROM api_voluum_ts_sources")
    expect(rows.rows[0].n).toBe(3)
    expect((await found("447700900123")).results).toHaveLength(2)
  })

  it("a malformed or foreign token is a 400 naming the problem", async () => {
    const foreign = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    const res = await find(foreign, admin)
    expect(res.status).toBe(400)
    const body = (await res.json()) as { detail: string; code: string }
    expect(body.code).toBe("DECRYPTION_FAILED")
    expect(body.detail).toMatch(/AES_KEY/)
    // 29 base64 characters cannot be whole bytes.
    const broken = await find("A".repeat(29), admin)
    expect(broken.status).toBe(400)
    expect(((await broken.json()) as { code: string }).code).toBe("INVALID_TOKEN")
  })

  it("a missing or non-string phone_number, or an empty one, is a 400 naming the field", async () => {
    for (const payload of [{}, { phone_number: 447700900123 }, { phone: "447700900123" }]) {
      const res = await call(app.url, viewer, "/find_records", { json: payload })
      expect(res.status).toBe(400)
      expect(((await res.json()) as { detail: string }).detail).toMatch(/phone_number/)
    }
    const empty = await find("  ")
    expect(empty.status).toBe(400)
    expect(((await empty.json()) as { detail: string }).detail).toMatch(/phone_number is empty/)
    const notJson = await call(app.url, viewer, "/find_records", {
      body: "phone_number=1",
      headers: { "content-type": "application/x-www-form-urlencoded" }
    })
    expect(notJson.status).toBe(400)
  })

  it("needs an API key", async () => {
    const res = await call(app.url, undefined, "/find_records", { json: { phone_number: "447700900123" } })
    expect(res.status).toBe(401)
  })
})
