/**
 * The conversions sync and the Ongage push against the fake Voluum, the fake Ongage and a real
 * PostgreSQL: derived values, per-batch marking, 412 partial failures, nothing sent twice, Ongage not
 * configured.
 */
import { Layer, ManagedRuntime, Result } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Encryption } from "../../src/encryption/Encryption.ts"
import { OngageClient } from "../../src/ongage/OngageClient.ts"
import { AppConfig, parseSettings, type Env } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"
import {
  conversionCountry,
  conversionTime,
  conversionType,
  ConversionsSync,
  type ConversionsSyncResult
} from "../../src/voluum/ConversionsSync.ts"
import { VoluumClient } from "../../src/voluum/VoluumClient.ts"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { startFakeVoluum, type FakeVoluum } from "../../../../test/fakes/voluum.ts"
import { startFakeOngage, type FakeOngage } from "../../../../test/fakes/ongage.ts"
import { campaignName, conversionRow, conversionScenario, TEST_AES_KEY } from "../../../../test/fakes/seed.ts"

let db: TestDatabase
let voluum: FakeVoluum
let ongage: FakeOngage
let client: pg.Client

const envFor = (extra: Env = {}): Env => ({
  DATABASE_URL: db.url,
  VOLUUM_ACCESS_ID: voluum.state.credentials.accessId,
  VOLUUM_ACCESS_KEY: voluum.state.credentials.accessKey,
  VOLUUM_API_URL: voluum.url,
  VOLUUM_REQUESTS_PER_SECOND: "1000",
  LIST_ID: ongage.state.credentials.listId,
  X_USERNAME: ongage.state.credentials.username,
  X_PASSWORD: ongage.state.credentials.password,
  X_ACCOUNT_CODE: ongage.state.credentials.accountCode,
  ONGAGE_API_URL: ongage.url,
  AES_KEY: TEST_AES_KEY,
  ...extra
})

const runtimeFor = (env: Env) => {
  const parsed = parseSettings(env)
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  const platform = DatabaseLayer.pipe(Layer.provideMerge(Layer.succeed(AppConfig, parsed.success)))
  const domain = Layer.mergeAll(
    Encryption.layer,
    VoluumClient.layerWith({ baseDelay: "5 millis", maxDelay: "20 millis", pageSize: 3 }),
    OngageClient.layerWith({ baseDelay: "5 millis", maxDelay: "20 millis", maxRetries: 2 })
  )
  return ManagedRuntime.make(ConversionsSync.layer.pipe(Layer.provideMerge(domain), Layer.provideMerge(platform)))
}

const sync = async (window: { from: string; to: string }, env: Env = {}, batchSize?: number) => {
  const runtime = runtimeFor(envFor(env))
  try {
    return await runtime.runPromise(
      ConversionsSync.use((s) => s.syncConversions(window, batchSize === undefined ? {} : { batchSize }))
    )
  } finally {
    await runtime.dispose()
  }
}

interface StoredRow {
  click_id: string
  custom_variable_1: string | null
  country_code: string
  conversion_type: string
  generated_email: string | null
  source: string
  processed: boolean
  error_message: string | null
  retry_count: number
  postback_timestamp: Date
}

const stored = async (clickId: string): Promise<StoredRow> =>
  (
    await client.query<StoredRow>(
      `SELECT click_id, custom_variable_1, country_code, conversion_type, generated_email, source, processed,
              error_message, retry_count, postback_timestamp
       FROM api_voluum_conversions WHERE click_id = $1`,
      [clickId]
    )
  ).rows[0]!

const OCT_1 = { from: "2025-10-01T00:00:00Z", to: "2025-10-02T00:00:00Z" }

beforeAll(async () => {
  db = await createTestDatabase()
  voluum = await startFakeVoluum()
  ongage = await startFakeOngage()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
})
afterAll(async () => {
  await client.end()
  await ongage.close()
  await voluum.close()
  await db.drop()
})

describe("derived values", () => {
  it("country from the campaign name, then Voluum's countryCode, then DEF; type FTD or REG", () => {
    expect(conversionCountry(campaignName("France"), "GB")).toBe("FR")
    expect(conversionCountry(campaignName("Atlantis"), "de")).toBe("DE")
    expect(conversionCountry("No segments here", "GB")).toBe("GB")
    expect(conversionCountry("No segments", null)).toBe("DEF")
    expect(conversionTime("2025-10-01 12:05:00 PM")?.toISOString()).toBe("2025-10-01T12:05:00.000Z")
    expect(conversionTime("2025-10-01 04:17:21")?.toISOString()).toBe("2025-10-01T04:17:21.000Z")
    expect(conversionTime("yesterday")).toBe(null)
    expect([conversionType("FTD"), conversionType("ftd"), conversionType("Reg"), conversionType(null)]).toEqual([
      "FTD",
      "FTD",
      "REG",
      "REG"
    ])
  })
})

describe("ConversionsSync.syncConversions", () => {
  const scenario = conversionScenario()

  it("stores every conversion with its derived values and pushes the GB converters once", async () => {
    voluum.state.conversions.push(...scenario.conversions)
    const result = await sync(OCT_1)
    // GB: 401 FTD, 402 REG (token), 403 REG, 405 ("Atlantis" → Voluum's GB); FR is not pushed; two invalid phones.
    expect(result).toMatchObject({
      row_counts: { successful_rows: 4, unsuccessful_rows: 2 },
      fetched: 7,
      inserted: 7,
      already_stored: 0,
      invalid_phones: 2,
      other_countries: 1,
      pushed: 4,
      push_failed: 0,
      ongage: "pushed"
    } satisfies Partial<ConversionsSyncResult>)

    const ftd = await stored("CLK001OPTIMIZERTESTCLICK")
    expect(ftd).toMatchObject({
      custom_variable_1: "447700900401",
      country_code: "GB",
      conversion_type: "FTD",
      generated_email: "+447700900401@yourmobile.com",
      source: "GB_FTD",
      processed: true,
      error_message: null
    })
    expect(ftd.postback_timestamp.toISOString()).toBe("2025-10-01T00:30:00.000Z")
    expect(await stored("CLK002OPTIMIZERTESTCLICK")).toMatchObject({
      custom_variable_1: "447700900402",
      source: "GB_REG"
    })
    expect(await stored("CLK004OPTIMIZERTESTCLICK")).toMatchObject({
      country_code: "FR",
      processed: false,
      error_message: "COUNTRY_NOT_PUSHED"
    })
    expect(await stored("CLK006OPTIMIZERTESTCLICK")).toMatchObject({
      generated_email: null,
      processed: false,
      error_message: "INVALID_PHONE_NUMBER"
    })

    expect(ongage.state.received.map((c) => c.email).sort()).toEqual(
      ["447700900401", "447700900402", "447700900403", "447700900405"].map((p) => `+${p}@yourmobile.com`)
    )
    const contact = ongage.state.received.find((c) => c.email === "+447700900401@yourmobile.com")!
    expect(contact.overwrite).toBe(true)
    expect(contact.fields).toMatchObject({
      mobile: "447700900401",
      country: "United Kingdom",
      source: "GB_FTD",
      conversion_type: "FTD",
      is_ftd: "true",
      click_id: "CLK001OPTIMIZERTESTCLICK",
      country_code: "GB",
      conversion_date: "2025-10-01 12:30:00 AM",
      ftd_date: "2025-10-01 12:30:00 AM",
      registration_date: "",
      revenue: 35
    })
  })

  it("a second identical sync stores nothing new and sends nothing again", async () => {
    const sent = ongage.state.received.length
    const result = await sync(OCT_1)
    expect(result).toMatchObject({
      row_counts: { successful_rows: 0, unsuccessful_rows: 0 },
      fetched: 7,
      inserted: 0,
      already_stored: 7,
      ongage: "nothing_to_push"
    })
    expect(ongage.state.received.length).toBe(sent)
    const retries = await client.query<{ n: string }>("SELECT sum(retry_count) AS n FROM api_voluum_conversions")
    expect(Number(retries.rows[0]!.n)).toBe(0)
  })

  it("a 412 marks only the rejected emails; the next sync of the window sends only those", async () => {
    const day = new Date("2025-10-02T00:00:00Z")
    const phones = ["447700900501", "447700900502", "447700900503", "447700900504", "447700900505"]
    phones.forEach((phone, i) =>
      voluum.state.conversions.push({
        at: new Date(day.getTime() + (i + 1) * 3_600_000),
        fields: conversionRow({
          at: new Date(day.getTime() + (i + 1) * 3_600_000),
          clickId: `CLK5${i}`,
          transactionId: `TX5${i}`,
          customVariable1: phone
        })
      })
    )
    ongage.state.failures.set("+447700900502@yourmobile.com", "Email already exists")
    const sent = ongage.state.received.length
    const calls = ongage.state.count(`/${ongage.state.credentials.listId}/api/v2/contacts`)
    const window = { from: "2025-10-02T00:00:00Z", to: "2025-10-03T00:00:00Z" }
    // Batches of 2 contacts: the 412 of the first batch must not touch the others.
    const result = await sync(window, {}, 2)
    expect(result).toMatchObject({
      row_counts: { successful_rows: 4, unsuccessful_rows: 1 },
      pushed: 4,
      push_failed: 1
    })
    expect(ongage.state.count(`/${ongage.state.credentials.listId}/api/v2/contacts`) - calls).toBe(3)
    expect(await stored("CLK51")).toMatchObject({
      processed: false,
      error_message: "ONGAGE_REJECTED: Email already exists",
      retry_count: 1
    })
    for (const id of ["CLK50", "CLK52", "CLK53", "CLK54"]) {
      expect(await stored(id)).toMatchObject({ processed: true, error_message: null, retry_count: 0 })
    }
    expect(ongage.state.received.length - sent).toBe(5)

    ongage.state.failures.clear()
    const again = await sync(window)
    expect(again).toMatchObject({ row_counts: { successful_rows: 1, unsuccessful_rows: 0 } })
    expect(ongage.state.received.slice(sent + 5).map((c) => c.email)).toEqual(["+447700900502@yourmobile.com"])
    expect(await stored("CLK51")).toMatchObject({ processed: true, error_message: null, retry_count: 0 })
  })

  it("a batch Ongage never answers is marked ONGAGE_FAILED and retried by the next sync", async () => {
    const at = new Date("2025-10-03T10:00:00Z")
    voluum.state.conversions.push({
      at,
      fields: conversionRow({ at, clickId: "CLK60", transactionId: "TX60", customVariable1: "447700900601" })
    })
    ongage.state.inject({ status: 503, count: 3 })
    const window = { from: "2025-10-03T00:00:00Z", to: "2025-10-04T00:00:00Z" }
    const failed = await sync(window)
    expect(failed).toMatchObject({ ongage: "failed", push_failed: 1, row_counts: { successful_rows: 0 } })
    expect(await stored("CLK60")).toMatchObject({ processed: false, retry_count: 1 })
    expect((await stored("CLK60")).error_message).toMatch(/^ONGAGE_FAILED: /)

    const retried = await sync(window)
    expect(retried).toMatchObject({ ongage: "pushed", pushed: 1 })
    expect(await stored("CLK60")).toMatchObject({ processed: true, error_message: null, retry_count: 0 })
  })

  it("without Ongage settings the conversions are stored and left pending until Ongage is configured", async () => {
    const at = new Date("2025-10-04T10:00:00Z")
    voluum.state.conversions.push({
      at,
      fields: conversionRow({ at, clickId: "CLK70", transactionId: "TX70", customVariable1: "447700900701" })
    })
    const window = { from: "2025-10-04T00:00:00Z", to: "2025-10-05T00:00:00Z" }
    const result = await sync(window, { LIST_ID: "", X_USERNAME: "", X_PASSWORD: "", X_ACCOUNT_CODE: "" })
    expect(result).toMatchObject({ inserted: 1, pending: 1, ongage: "not_configured" })
    expect(result.ongage_error).toMatch(/LIST_ID, X_USERNAME, X_PASSWORD, X_ACCOUNT_CODE/)
    expect(await stored("CLK70")).toMatchObject({ processed: false, error_message: null })

    const later = await sync(window)
    expect(later).toMatchObject({ pushed: 1, ongage: "pushed" })
  })

  it("ONGAGE_COUNTRIES chooses the countries pushed (the original pushed GB only)", async () => {
    const fr = new Date("2025-10-05T10:00:00Z")
    const gb = new Date("2025-10-05T11:00:00Z")
    voluum.state.conversions.push(
      {
        at: fr,
        fields: conversionRow({
          at: fr,
          clickId: "CLK80",
          transactionId: "TX80",
          customVariable1: "33612345680",
          campaignName: campaignName("France", 80),
          countryCode: "FR"
        })
      },
      {
        at: gb,
        fields: conversionRow({ at: gb, clickId: "CLK81", transactionId: "TX81", customVariable1: "447700900801" })
      }
    )
    const window = { from: "2025-10-05T00:00:00Z", to: "2025-10-06T00:00:00Z" }
    const sent = ongage.state.received.length
    const result = await sync(window, { ONGAGE_COUNTRIES: "fr" })
    expect(result).toMatchObject({ pushed: 1, other_countries: 1, ongage: "pushed" })
    expect(ongage.state.received.slice(sent).map((c) => c.email)).toEqual(["+33612345680@yourmobile.com"])
    expect(await stored("CLK80")).toMatchObject({ country_code: "FR", processed: true, error_message: null })
    expect(await stored("CLK81")).toMatchObject({ processed: false, error_message: "COUNTRY_NOT_PUSHED" })
  })
})
