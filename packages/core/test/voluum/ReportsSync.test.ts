/**
 * The reports sync against the fake Voluum and a real PostgreSQL: classification into the lists as the
 * rule table says, one row per phone without losing uniqueVisits ≥ 2, tokens, sticky entries, moves,
 * idempotency, and the not-configured paths.
 */
import { Effect, Layer, ManagedRuntime, Result } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Classifier } from "../../src/classification/Classifier.ts"
import { Encryption } from "../../src/encryption/Encryption.ts"
import { Lists } from "../../src/lists/Lists.ts"
import { AppConfig, parseSettings, type Env } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"
import { ReportsSync, uniqueVisitPreference } from "../../src/voluum/ReportsSync.ts"
import { VoluumClient } from "../../src/voluum/VoluumClient.ts"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { startFakeVoluum, type FakeVoluum } from "../../../../test/fakes/voluum.ts"
import {
  classificationScenario,
  encryptPhone,
  reportRow,
  TEST_AES_KEY,
  TRAFFIC_SOURCE_A,
  TRAFFIC_SOURCE_B,
  type Category
} from "../../../../test/fakes/seed.ts"

const OTHER_AES_KEY = "HxgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQAfHh0cGxo="

let db: TestDatabase
let voluum: FakeVoluum
let client: pg.Client

const envFor = (extra: Env = {}): Env => ({
  DATABASE_URL: db.url,
  LOG_LEVEL: "Warn",
  VOLUUM_ACCESS_ID: voluum.state.credentials.accessId,
  VOLUUM_ACCESS_KEY: voluum.state.credentials.accessKey,
  VOLUUM_API_URL: voluum.url,
  VOLUUM_REQUESTS_PER_SECOND: "1000",
  VOLUUM_TRAFFIC_SOURCE_IDS: `${TRAFFIC_SOURCE_A},${TRAFFIC_SOURCE_B}`,
  AES_KEY: TEST_AES_KEY,
  ...extra
})

const runtimeFor = (env: Env) => {
  const parsed = parseSettings(env)
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  const platform = DatabaseLayer.pipe(Layer.provideMerge(Layer.succeed(AppConfig, parsed.success)))
  const domain = Layer.mergeAll(
    Lists.layer,
    Classifier.layerDefault,
    Encryption.layer,
    VoluumClient.layerWith({ baseDelay: "5 millis", maxDelay: "20 millis", pageSize: 7 })
  )
  return ManagedRuntime.make(ReportsSync.layer.pipe(Layer.provideMerge(domain), Layer.provideMerge(platform)))
}

const DAY = { from: "2025-05-01T00:00:00Z", to: "2025-05-02T00:00:00Z" }

const listOf = async (phone: string): Promise<string | null> => {
  const { rows } = await client.query<{ list: string }>(
    `SELECT 'blacklist' AS list FROM blacklist WHERE custom_variable_1 = $1
     UNION ALL SELECT 'whitelist' FROM whitelist WHERE custom_variable_1 = $1
     UNION ALL SELECT 'monitor' FROM monitor WHERE custom_variable_1 = $1`,
    [phone]
  )
  expect(rows.length).toBeLessThanOrEqual(1)
  return rows[0]?.list ?? null
}

const count = async (table: string) =>
  Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n)

const LIST_OF: Record<Category, string | null> = {
  BLACKLIST: "blacklist",
  WHITELIST: "whitelist",
  MONITOR: "monitor",
  UNKNOWN: null
}

beforeAll(async () => {
  db = await createTestDatabase()
  voluum = await startFakeVoluum()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
})
afterAll(async () => {
  await client.end()
  await voluum.close()
  await db.drop()
})

describe("one row per phone", () => {
  it("prefers a unique visit, then repeat visitors of 2+, then 0, then no count", () => {
    expect([1, 2, 7, 0, null].map(uniqueVisitPreference)).toEqual([0, 1, 1, 2, 3])
  })
})

describe("ReportsSync.syncReports", () => {
  const scenario = classificationScenario()
  // Phones whose only rows have uniqueVisits >= 2 are kept (the original dropped them): both rows say BLACKLIST.
  const expected = new Map<string, Category>([...scenario.expected, ["447700900203", "BLACKLIST"]])

  it("classifies every phone as the rule table says and moves it to that list", async () => {
    voluum.state.reportRows.push(...scenario.rows)
    // The second traffic source repeats one phone with a worse row: the unique visit of source A wins.
    voluum.state.reportRows.push({
      trafficSourceId: TRAFFIC_SOURCE_B,
      at: new Date("2025-05-01T11:00:00Z"),
      fields: reportRow({ customVariable1: "447700900201", osVersion: "Windows 7", uniqueVisits: 0 })
    })
    const runtime = runtimeFor(envFor())
    try {
      const result = await runtime.runPromise(ReportsSync.use((s) => s.syncReports(DAY)))
      const byCategory = (c: Category) => [...expected.values()].filter((v) => v === c).length
      expect(result.row_counts).toEqual({
        blacklist_rows: byCategory("BLACKLIST"),
        monitor_rows: byCategory("MONITOR"),
        whitelist_rows: byCategory("WHITELIST")
      })
      expect(result.unknown_rows).toBe(byCategory("UNKNOWN"))
      expect(result.phones).toBe(expected.size)
      expect(result.invalid_phones).toBe(scenario.invalidValues.length)
      expect(result.undecryptable_tokens).toBe(0)
      expect(result.traffic_sources).toBe(2)
      expect(result.rows_fetched).toBe(scenario.rows.length + 1)
      expect(result.history_rows).toBe(expected.size)
      expect(result.lists.blacklist.added).toBe(byCategory("BLACKLIST"))

      for (const [phone, category] of expected) {
        expect({ phone, list: await listOf(phone) }).toEqual({ phone, list: LIST_OF[category] })
      }
      // The original's columns: reason/source on blacklist and monitor, country from the calling code on the whitelist.
      const black = await client.query(
        `SELECT reason, source, os_version FROM blacklist WHERE custom_variable_1 = $1`,
        ["447700900100"]
      )
      expect(black.rows[0]).toEqual({ reason: "OS_VERSION", source: "VOLUUM", os_version: "IOS 10.3" })
      const white = await client.query(
        `SELECT country_code, source, unique_visits FROM whitelist WHERE custom_variable_1 = $1`,
        ["447700900201"]
      )
      expect(white.rows[0]).toEqual({ country_code: "GB", source: "VOLUUM", unique_visits: 1 })
      // Every kept row is in the history, UNKNOWN included, with its category.
      const history = await client.query<{ custom_variable_1: string; category: string }>(
        "SELECT custom_variable_1, category FROM api_voluum_ts_sources"
      )
      expect(new Map(history.rows.map((r) => [r.custom_variable_1, r.category]))).toEqual(expected)
      // Every list write is audited.
      expect(await count("list_audit")).toBe(expected.size - byCategory("UNKNOWN"))
    } finally {
      await runtime.dispose()
    }
  })

  it("a second identical sync changes no list entry (the history appends again)", async () => {
    const auditBefore = await count("list_audit")
    const historyBefore = await count("api_voluum_ts_sources")
    const runtime = runtimeFor(envFor())
    try {
      const result = await runtime.runPromise(ReportsSync.use((s) => s.syncReports(DAY)))
      for (const list of ["blacklist", "whitelist", "monitor"] as const) {
        expect(result.lists[list]).toMatchObject({ added: 0, moved: 0, updated: 0, keptSticky: 0 })
      }
      expect(await count("list_audit")).toBe(auditBefore)
      expect(await count("api_voluum_ts_sources")).toBe(historyBefore + expected.size)
    } finally {
      await runtime.dispose()
    }
  })

  it("moves a number when a later report classifies it otherwise, and keeps sticky entries", async () => {
    const runtime = runtimeFor(envFor())
    try {
      // An admin blacklisted 447700900114 (whitelisted by the first sync): sticky.
      await runtime.runPromise(
        Lists.use((l) => l.move(["447700900114"], "blacklist", { actor: "test:admin", reason: "MANUAL" }))
      )
      const nextDay = new Date("2025-05-02T09:00:00Z")
      voluum.state.reportRows.push(
        // whitelist → blacklist
        {
          trafficSourceId: TRAFFIC_SOURCE_A,
          at: nextDay,
          fields: reportRow({ customVariable1: "447700900115", osVersion: "IOS 9" })
        },
        // sticky blacklist: a WHITELIST classification leaves it alone
        {
          trafficSourceId: TRAFFIC_SOURCE_A,
          at: nextDay,
          fields: reportRow({ customVariable1: "447700900114", osVersion: "IOS 18.7" })
        }
      )
      const result = await runtime.runPromise(
        ReportsSync.use((s) => s.syncReports({ from: "2025-05-02T00:00:00Z", to: "2025-05-03T00:00:00Z" }))
      )
      expect(result.row_counts).toEqual({ blacklist_rows: 1, monitor_rows: 0, whitelist_rows: 1 })
      expect(result.kept_sticky).toBe(1)
      expect(result.lists.blacklist.moved).toBe(1)
      expect(await listOf("447700900115")).toBe("blacklist")
      expect(await listOf("447700900114")).toBe("blacklist")
      const sticky = await client.query(`SELECT reason, sticky FROM blacklist WHERE custom_variable_1 = '447700900114'`)
      expect(sticky.rows[0]).toEqual({ reason: "MANUAL", sticky: true })
    } finally {
      await runtime.dispose()
    }
  })

  it("counts a token no key decrypts and goes on with the others", async () => {
    const at = new Date("2025-05-03T08:00:00Z")
    voluum.state.reportRows.push(
      {
        trafficSourceId: TRAFFIC_SOURCE_A,
        at,
        fields: reportRow({ customVariable1: encryptPhone("447700900301", OTHER_AES_KEY) })
      },
      { trafficSourceId: TRAFFIC_SOURCE_A, at, fields: reportRow({ customVariable1: encryptPhone("447700900302") }) }
    )
    const runtime = runtimeFor(envFor())
    try {
      const result = await runtime.runPromise(
        ReportsSync.use((s) => s.syncReports({ from: "2025-05-03T00:00:00Z", to: "2025-05-04T00:00:00Z" }))
      )
      expect(result.undecryptable_tokens).toBe(1)
      expect(result.phones).toBe(1)
      expect(await listOf("447700900302")).toBe("whitelist")
      expect(await listOf("447700900301")).toBe(null)
    } finally {
      await runtime.dispose()
    }
  })

  it("with a token but no AES_KEY, fails with NotConfigured naming AES_KEY", async () => {
    const runtime = runtimeFor(envFor({ AES_KEY: "" }))
    try {
      const exit = await runtime.runPromise(
        ReportsSync.use((s) => s.syncReports({ from: "2025-05-03T00:00:00Z", to: "2025-05-04T00:00:00Z" })).pipe(
          Effect.flip
        )
      )
      expect(exit._tag).toBe("NotConfigured")
      expect(exit.message).toMatch(/AES_KEY/)
    } finally {
      await runtime.dispose()
    }
  })

  it("asks Voluum for the traffic sources VOLUUM_TRAFFIC_SOURCE_IDS names (the original hard-coded two)", async () => {
    const own = "0f1e2d3c-4b5a-4968-8776-655443322110"
    const before = voluum.state.requests.length
    const runtime = runtimeFor(envFor({ VOLUUM_TRAFFIC_SOURCE_IDS: own }))
    try {
      const result = await runtime.runPromise(
        ReportsSync.use((s) => s.syncReports({ from: "2025-06-01T00:00:00Z", to: "2025-06-02T00:00:00Z" }))
      )
      expect(result.traffic_sources).toBe(1)
    } finally {
      await runtime.dispose()
    }
    const asked = voluum.state.requests
      .slice(before)
      .filter((r) => r.path === "/report")
      .map((r) => r.query.get("filter1Value"))
    expect(asked.length).toBeGreaterThan(0)
    expect(new Set(asked)).toEqual(new Set([own]))
  })

  it("without Voluum credentials, fails with NotConfigured naming them; a window off the hour is a ValidationError", async () => {
    const runtime = runtimeFor(envFor({ VOLUUM_ACCESS_ID: "", VOLUUM_ACCESS_KEY: "" }))
    try {
      const error = await runtime.runPromise(ReportsSync.use((s) => s.syncReports(DAY)).pipe(Effect.flip))
      expect(error._tag).toBe("NotConfigured")
      expect(error.message).toMatch(/VOLUUM_ACCESS_ID, VOLUUM_ACCESS_KEY/)
    } finally {
      await runtime.dispose()
    }
    const configured = runtimeFor(envFor())
    try {
      const error = await configured.runPromise(
        ReportsSync.use((s) => s.syncReports({ from: "2025-05-01T00:30:00Z", to: DAY.to })).pipe(Effect.flip)
      )
      expect(error._tag).toBe("ValidationError")
      expect(error.message).toMatch(/from_date must be on a whole hour/)
    } finally {
      await configured.dispose()
    }
  })
})
