/**
 * VoluumClient against the fake Voluum over real HTTP: session caching and renewal, paging, failure
 * handling, the original's query, and the not-configured path.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Result, Stream } from "effect"
import { classify } from "../../src/classification/Classifier.ts"
import { isEncryptedToken, makeCipher, parseAesKey } from "../../src/encryption/Encryption.ts"
import { AppConfig, type Env } from "../../src/platform/Config.ts"
import { UpstreamError, ValidationError } from "../../src/platform/Errors.ts"
import { VoluumClient, type VoluumClientOptions } from "../../src/voluum/VoluumClient.ts"
import {
  CONVERSION_COLUMNS,
  parseVoluumTimestamp,
  REPORT_COLUMNS,
  REPORT_GROUP_BY
} from "../../src/voluum/VoluumSchemas.ts"
import { startFakeVoluum, type FakeVoluum, type FakeVoluumOptions } from "../../../../test/fakes/voluum.ts"
import {
  classificationScenario,
  conversionRow,
  conversionScenario,
  OS_VERSION_CASES,
  reportRow,
  TEST_AES_KEY,
  TRAFFIC_SOURCE_A,
  TRAFFIC_SOURCE_B
} from "../../../../test/fakes/seed.ts"

const FAST: VoluumClientOptions = {
  baseDelay: "5 millis",
  maxDelay: "20 millis",
  timeout: "2 seconds",
  maxRetries: 4,
  pageSize: 3
}

const fakeVoluum = (options?: FakeVoluumOptions) =>
  Effect.acquireRelease(
    Effect.promise(() => startFakeVoluum(options)),
    (fake) => Effect.promise(() => fake.close())
  )

const envFor = (fake: FakeVoluum, extra: Env = {}): Env => ({
  VOLUUM_ACCESS_ID: fake.state.credentials.accessId,
  VOLUUM_ACCESS_KEY: fake.state.credentials.accessKey,
  VOLUUM_API_URL: fake.url,
  VOLUUM_REQUESTS_PER_SECOND: "1000",
  ...extra
})

const clientLayer = (env: Env, options: VoluumClientOptions = {}) =>
  VoluumClient.layerWith({ ...FAST, ...options }).pipe(Layer.provide(AppConfig.layerFrom(env)))

const withClient =
  (fake: FakeVoluum, options: VoluumClientOptions = {}, env: Env = {}) =>
  <A, E>(effect: Effect.Effect<A, E, VoluumClient>) =>
    effect.pipe(Effect.provide(clientLayer(envFor(fake, env), options)))

const FROM = "2025-05-01T00:00:00Z"
const TO = "2025-05-02T00:00:00Z"
const IN_WINDOW = new Date("2025-05-01T10:00:00Z")

/** Rows of traffic source A inside the window: one per OS-version rule, phone 4477009000NN. */
const seedReport = (fake: FakeVoluum, n = OS_VERSION_CASES.length) => {
  for (let i = 0; i < n; i++) {
    const osVersion = OS_VERSION_CASES[i % OS_VERSION_CASES.length]!.osVersion
    fake.state.reportRows.push({
      trafficSourceId: TRAFFIC_SOURCE_A,
      at: IN_WINDOW,
      fields: reportRow({ customVariable1: `4477009000${String(i).padStart(2, "0")}`, osVersion, visits: i + 1 })
    })
  }
}

const report = (params: { from?: string; to?: string; trafficSourceId?: string } = {}) =>
  VoluumClient.use((v) =>
    v.report({
      trafficSourceId: params.trafficSourceId ?? TRAFFIC_SOURCE_A,
      from: params.from ?? FROM,
      to: params.to ?? TO
    })
  )

describe("VoluumClient session token", () => {
  it.live("is cached: many calls, one authentication", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 7)
      yield* withClient(fake)(
        Effect.gen(function* () {
          for (let i = 0; i < 5; i++) assert.strictEqual((yield* report()).length, 7)
          yield* VoluumClient.use((v) => v.conversions({ from: FROM, to: TO }))
        })
      )
      assert.strictEqual(fake.state.authCalls, 1)
      assert.strictEqual(fake.state.count("/report"), 15) // 5 reports × 3 pages
    })
  )

  it.live("20 concurrent calls on a cold client cause one authentication", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 2)
      const results = yield* withClient(fake)(
        Effect.all(
          Array.from({ length: 20 }, () => report()),
          { concurrency: "unbounded" }
        )
      )
      assert.strictEqual(results.length, 20)
      assert.isTrue(results.every((r) => r.length === 2))
      assert.strictEqual(fake.state.authCalls, 1)
    })
  )

  it.live("is renewed once, before it expires, without a 401", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum({ tokenLifetimeMs: 600 })
      seedReport(fake, 2)
      yield* withClient(fake)(
        Effect.gen(function* () {
          yield* report()
          yield* Effect.sleep("700 millis")
          yield* Effect.all([report(), report(), report()], { concurrency: "unbounded" })
        })
      )
      assert.strictEqual(fake.state.authCalls, 2)
      assert.strictEqual(fake.state.requests.filter((r) => r.status === 401).length, 0)
    })
  )

  it.live("a 401 re-authenticates once and repeats the call", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 2)
      const rows = yield* withClient(fake)(
        Effect.gen(function* () {
          yield* report()
          fake.state.revokeTokens() // the server forgets the token the client still thinks valid
          return yield* report()
        })
      )
      assert.strictEqual(rows.length, 2)
      assert.strictEqual(fake.state.authCalls, 2)
      assert.strictEqual(fake.state.requests.filter((r) => r.status === 401).length, 1)
    })
  )

  it.live("a fresh token that is rejected too fails, without looping", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      fake.state.inject({ path: "/report", status: 401, count: 5 })
      const error = yield* withClient(fake)(report()).pipe(Effect.flip)
      assert.instanceOf(error, UpstreamError)
      assert.strictEqual((error as UpstreamError).status, 401)
      assert.isFalse((error as UpstreamError).retryable)
      assert.strictEqual(fake.state.authCalls, 2)
      assert.strictEqual(fake.state.count("/report"), 2)
    })
  )

  it.live("bad credentials fail at once, naming the variables", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      const error = yield* withClient(fake, {}, { VOLUUM_ACCESS_KEY: "wrong" })(report()).pipe(Effect.flip)
      assert.instanceOf(error, UpstreamError)
      assert.isFalse((error as UpstreamError).retryable)
      assert.include(error.message, "VOLUUM_ACCESS_ID/VOLUUM_ACCESS_KEY")
      assert.strictEqual(fake.state.authCalls, 1)
    })
  )

  it.live("concurrent calls share one failed authentication", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      fake.state.inject({ path: "/auth/access/session", status: 503, count: 100 })
      const errors = yield* withClient(fake, { maxRetries: 2 })(
        Effect.all(
          Array.from({ length: 10 }, () => report().pipe(Effect.flip)),
          { concurrency: "unbounded" }
        )
      )
      assert.isTrue(errors.every((e) => e._tag === "UpstreamError" && e.retryable && e.status === 503))
      assert.strictEqual(fake.state.count("/auth/access/session"), 3) // one attempt + 2 retries, not 10 × 3
      assert.strictEqual(fake.state.count("/report"), 0)
    })
  )
})

describe("VoluumClient.report", () => {
  it.live("sends the original's query and maps rows by field name", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      fake.state.keyOrder = "reversed"
      fake.state.extraKeys = { campaignNoConversionsWarning: false, aNewVoluumColumn: 42 }
      fake.state.reportRows.push({
        trafficSourceId: TRAFFIC_SOURCE_A,
        at: IN_WINDOW,
        fields: {
          ...reportRow({ customVariable1: "447700900123", osVersion: "Android 13", browserVersion: "Chrome 120" }),
          visits: "17", // numeric string
          uniqueVisits: 1,
          cost: null,
          roi: "n/a",
          Click2Reg: 0.5,
          costSources: "manual",
          ip: "81.2.69.160"
        }
      })
      const [row] = yield* withClient(fake)(report())
      assert.strictEqual(row!.customVariable1, "447700900123")
      assert.strictEqual(row!.osVersion, "Android 13")
      assert.strictEqual(row!.browserVersion, "Chrome 120")
      assert.strictEqual(row!.ip, "81.2.69.160")
      assert.strictEqual(row!.visits, 17)
      assert.strictEqual(row!.uniqueVisits, 1)
      assert.strictEqual(row!.cost, null)
      assert.strictEqual(row!.roi, null)
      assert.strictEqual(row!.Click2Reg, 0.5)
      assert.strictEqual(row!.Reg2FTD, 0)
      assert.deepStrictEqual(row!.costSources, ["manual"])
      assert.isFalse("aNewVoluumColumn" in row!)

      const q = fake.state.requests.find((r) => r.path === "/report")!.query
      assert.strictEqual(q.get("from"), "2025-05-01T00:00:00Z")
      assert.strictEqual(q.get("to"), "2025-05-02T00:00:00Z")
      assert.deepStrictEqual(q.getAll("groupBy"), [...REPORT_GROUP_BY])
      assert.deepStrictEqual(q.getAll("column"), [...REPORT_COLUMNS])
      assert.strictEqual(q.get("filter1"), "traffic-source")
      assert.strictEqual(q.get("filter1Value"), TRAFFIC_SOURCE_A)
      assert.strictEqual(q.get("tz"), "Etc/GMT")
      assert.strictEqual(q.get("currency"), "EUR")
      assert.strictEqual(q.get("limit"), "3")
      assert.strictEqual(q.get("offset"), "0")
    })
  )

  it.live("returns only the traffic source's rows inside the window", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      const add = (trafficSourceId: string, at: string, phone: string) =>
        fake.state.reportRows.push({ trafficSourceId, at: new Date(at), fields: reportRow({ customVariable1: phone }) })
      add(TRAFFIC_SOURCE_A, "2025-05-01T00:00:00Z", "447700900001") // first hour: in
      add(TRAFFIC_SOURCE_A, "2025-05-01T23:59:59Z", "447700900002") // in
      add(TRAFFIC_SOURCE_A, "2025-05-02T00:00:00Z", "447700900003") // `to` is exclusive
      add(TRAFFIC_SOURCE_A, "2025-04-30T23:00:00Z", "447700900004") // before
      add(TRAFFIC_SOURCE_B, "2025-05-01T12:00:00Z", "447700900005") // other source
      const a = yield* withClient(fake)(report())
      assert.deepStrictEqual(
        a.map((r) => r.customVariable1),
        ["447700900001", "447700900002"]
      )
      const b = yield* withClient(fake)(report({ trafficSourceId: TRAFFIC_SOURCE_B }))
      assert.deepStrictEqual(
        b.map((r) => r.customVariable1),
        ["447700900005"]
      )
    })
  )

  it.live("pages until totalRows, advancing by the rows received", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 8)
      fake.state.maxPageSize = 2 // the server gives fewer rows than asked: nothing may be skipped
      const rows = yield* withClient(fake)(report())
      assert.deepStrictEqual(
        rows.map((r) => r.visits),
        [1, 2, 3, 4, 5, 6, 7, 8]
      )
      assert.deepStrictEqual(
        fake.state.requests.filter((r) => r.path === "/report").map((r) => r.query.get("offset")),
        ["0", "2", "4", "6"]
      )
    })
  )

  it.live("stops on an empty page when totalRows lies or is missing", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 5)
      fake.state.totalRowsOverride = 1_000_000
      assert.strictEqual((yield* withClient(fake)(report())).length, 5)
      assert.strictEqual(fake.state.count("/report"), 3) // 3 + 2 + empty
      fake.state.totalRowsOverride = null
      assert.strictEqual((yield* withClient(fake)(report())).length, 5)
      assert.strictEqual(fake.state.count("/report"), 6)
    })
  )

  it.live("fails instead of paging forever past maxPages", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 12)
      const error = yield* withClient(fake, { pageSize: 2, maxPages: 3 })(report()).pipe(Effect.flip)
      assert.instanceOf(error, UpstreamError)
      assert.include(error.message, "did not end after 3 pages")
      assert.strictEqual(fake.state.count("/report"), 3)
    })
  )

  it.live("streams rows page by page", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 9)
      const firstFour = yield* withClient(fake)(
        VoluumClient.use((v) =>
          Effect.succeed(v.reportStream({ trafficSourceId: TRAFFIC_SOURCE_A, from: FROM, to: TO }))
        ).pipe(Effect.flatMap((s) => Stream.runCollect(Stream.take(s, 4))))
      )
      assert.strictEqual(firstFour.length, 4)
      assert.strictEqual(fake.state.count("/report"), 2) // pages of 3: the third page was never asked for
    })
  )

  it.live("rejects a window off the hour before any request, saying how to round", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      const client = withClient(fake)
      const offHour = yield* client(report({ from: "2025-05-01T10:30:00Z" })).pipe(Effect.flip)
      assert.instanceOf(offHour, ValidationError)
      assert.strictEqual((offHour as ValidationError).field, "from")
      assert.include(offHour.message, "2025-05-01T10:00:00Z")
      const noZone = yield* client(report({ to: "2025-05-02T00:00:00" })).pipe(Effect.flip)
      assert.strictEqual((noZone as ValidationError).field, "to")
      const reversed = yield* client(report({ from: TO, to: FROM })).pipe(Effect.flip)
      assert.instanceOf(reversed, ValidationError)
      assert.strictEqual(fake.state.requests.length, 0)
    })
  )

  it.live("the fake itself answers 400 to a window off the hour", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      const res = yield* Effect.promise(() =>
        fetch(`${fake.url}/auth/access/session`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(fake.state.credentials)
        }).then((r) => r.json() as Promise<{ token: string }>)
      )
      const status = yield* Effect.promise(() =>
        fetch(`${fake.url}/report?from=2025-05-01T10:30:00Z&to=2025-05-02T00:00:00Z`, {
          headers: { "cwauth-token": res.token }
        }).then((r) => r.status)
      )
      assert.strictEqual(status, 400)
    })
  )
})

describe("VoluumClient failures", () => {
  it.live("a 429 storm within the retry budget ends in success (Retry-After: 0)", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 2)
      fake.state.inject({ status: 429, count: 4, retryAfter: "0" })
      assert.strictEqual((yield* withClient(fake)(report())).length, 2)
      assert.strictEqual(fake.state.count("/report"), 5)
    })
  )

  it.live("honours Retry-After in seconds", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 2)
      fake.state.inject({ status: 429, count: 1, retryAfter: "1" })
      const started = Date.now()
      yield* withClient(fake)(report())
      assert.isAtLeast(Date.now() - started, 950)
    })
  )

  it.live("a 5xx burst within the retry budget ends in success", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 2)
      fake.state.inject({ status: 503, count: 3 })
      assert.strictEqual((yield* withClient(fake)(report())).length, 2)
    })
  )

  it.live("a longer storm ends in a retryable UpstreamError", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      fake.state.inject({ status: 429, count: 50, retryAfter: "0" })
      const error = yield* withClient(fake)(report()).pipe(Effect.flip)
      assert.instanceOf(error, UpstreamError)
      const e = error as UpstreamError
      assert.strictEqual(e.service, "voluum")
      assert.strictEqual(e.status, 429)
      assert.isTrue(e.retryable)
      assert.include(e.message, "gave up after 5 attempts")
      assert.strictEqual(fake.state.count("/report"), 5)
    })
  )

  it.live("a 400 is not retried and says what Voluum said", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      fake.state.inject({
        path: "/report",
        status: 400,
        count: 1,
        body: { error: { code: "BAD_REQUEST", description: "Unknown column: foo" } }
      })
      const error = (yield* withClient(fake)(report()).pipe(Effect.flip)) as UpstreamError
      assert.strictEqual(error.status, 400)
      assert.isFalse(error.retryable)
      assert.include(error.message, "Unknown column: foo")
      assert.strictEqual(fake.state.count("/report"), 1)
    })
  )

  it.live("keeps to VOLUUM_REQUESTS_PER_SECOND", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 2)
      const started = Date.now()
      // 1 authentication + 5 one-page reports = 6 requests at 4 per second: the last two wait for the next second.
      yield* withClient(
        fake,
        {},
        { VOLUUM_REQUESTS_PER_SECOND: "4" }
      )(
        Effect.all(
          Array.from({ length: 5 }, () => report()),
          { concurrency: "unbounded" }
        )
      )
      assert.isAtLeast(Date.now() - started, 950)
      assert.strictEqual(fake.state.requests.length, 6)
    })
  )

  it.live("a call that hangs is timed out and retried", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      seedReport(fake, 2)
      fake.state.inject({ path: "/report", delayMs: 1_000, count: 1 })
      const rows = yield* withClient(fake, { timeout: "200 millis" })(report())
      assert.strictEqual(rows.length, 2)
    })
  )
})

describe("VoluumClient.conversions", () => {
  it.live("pages the window's conversions and maps them by name", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      fake.state.keyOrder = "reversed"
      const times = ["2025-05-01T04:17:21Z", "2025-05-01T13:00:00Z", "2025-05-01T23:59:59Z", "2025-05-02T00:00:01Z"]
      times.forEach((t, i) =>
        fake.state.conversions.push({
          at: new Date(t),
          trafficSourceId: TRAFFIC_SOURCE_A,
          fields: conversionRow({
            at: new Date(t),
            clickId: `click-${i}`,
            conversionType: i % 2 === 0 ? "FTD" : "Reg",
            customVariable1: `44770090010${i}`
          })
        })
      )
      const rows = yield* withClient(fake)(VoluumClient.use((v) => v.conversions({ from: FROM, to: TO })))
      assert.deepStrictEqual(
        rows.map((r) => r.clickId),
        ["click-0", "click-1", "click-2"]
      )
      const first = rows[0]!
      assert.strictEqual(first.postbackTimestamp, "2025-05-01 04:17:21 AM")
      assert.strictEqual(parseVoluumTimestamp(first.postbackTimestamp!)?.toISOString(), "2025-05-01T04:17:21.000Z")
      assert.strictEqual(first.conversionType, "FTD")
      assert.strictEqual(first.campaignName, "Marketing Services 1 - United Kingdom - AB CC18")
      assert.strictEqual(first.customVariable1, "447700900100")
      assert.strictEqual(typeof first.revenue, "number")
      const q = fake.state.requests.find((r) => r.path === "/report/conversions")!.query
      assert.deepStrictEqual(q.getAll("column"), [...CONVERSION_COLUMNS])
      assert.strictEqual(q.get("sort"), "postbackTimestamp")
    })
  )
})

describe("VoluumClient offers and campaigns", () => {
  it.live("map ids to names over a rolling window ending now", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      fake.state.offers.push({ offerId: "o-1", offerName: "Offer 1" }, { offerId: "o-2", offerName: "Offer 2" })
      fake.state.campaigns.push({ campaignId: "c-1", campaignName: "Marketing Services 1 - United Kingdom - AB CC18" })
      const [offers, campaigns] = yield* withClient(fake)(
        VoluumClient.use((v) => Effect.all([v.offers(), v.campaigns()]))
      )
      assert.deepStrictEqual(
        [...offers],
        [
          ["o-1", "Offer 1"],
          ["o-2", "Offer 2"]
        ]
      )
      assert.strictEqual(campaigns.get("c-1"), "Marketing Services 1 - United Kingdom - AB CC18")
      const q = fake.state.requests.find((r) => r.path === "/report" && r.query.get("groupBy") === "offer")!.query
      const to = new Date(q.get("to")!).getTime()
      const from = new Date(q.get("from")!).getTime()
      assert.isAtLeast(to, Date.now()) // ends now (next whole hour), not on a fixed date
      assert.isBelow(to - Date.now(), 3_600_000)
      assert.strictEqual(to - from, 90 * 86_400_000)
      assert.deepStrictEqual(q.getAll("column"), ["offerId", "offerName"])
      assert.strictEqual(q.get("include"), "ALL")
    })
  )
})

describe("VoluumClient.updateCost", () => {
  it.live("posts the batch with the configured currency", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      yield* withClient(
        fake,
        {},
        { VOLUUM_COST_CURRENCY: "gbp" }
      )(
        VoluumClient.use((v) =>
          v.updateCost([
            {
              campaignId: "c-1",
              from: new Date("2026-01-27T00:00:00Z"),
              to: new Date("2026-01-28T00:00:00Z"),
              cost: 123.45
            }
          ])
        )
      )
      assert.deepStrictEqual(fake.state.costUpdates, [
        {
          campaignId: "c-1",
          from: "2026-01-27T00:00:00Z",
          to: "2026-01-28T00:00:00Z",
          timezone: "Etc/GMT",
          cost: 123.45,
          currency: "GBP"
        }
      ])
      const bad = yield* withClient(fake)(
        VoluumClient.use((v) => v.updateCost([{ campaignId: "c-1", from: "2026-01-27T00:15:00Z", to: TO, cost: 1 }]))
      ).pipe(Effect.flip)
      assert.instanceOf(bad, ValidationError)
      assert.strictEqual((bad as ValidationError).field, "updates[0].from")
    })
  )
})

describe("VoluumClient not configured", () => {
  it.live("the layer builds; every method fails NotConfigured naming the variables", () =>
    Effect.gen(function* () {
      const layer = clientLayer({ VOLUUM_API_URL: "http://127.0.0.1:9" })
      const errors = yield* Effect.all([
        VoluumClient.use((v) => v.report({ trafficSourceId: "x", from: FROM, to: TO })).pipe(Effect.flip),
        VoluumClient.use((v) => Stream.runCollect(v.conversionsStream({ from: FROM, to: TO }))).pipe(Effect.flip),
        VoluumClient.use((v) => v.offers()).pipe(Effect.flip),
        VoluumClient.use((v) => v.updateCost([])).pipe(Effect.flip)
      ]).pipe(Effect.provide(layer))
      for (const e of errors) {
        assert.strictEqual(e._tag, "NotConfigured")
        assert.include(e.message, "VOLUUM_ACCESS_ID")
        assert.include(e.message, "VOLUUM_ACCESS_KEY")
      }
    })
  )
})

describe("seeded scenarios through the client", () => {
  const cipher = makeCipher(Result.getOrThrow(parseAesKey(TEST_AES_KEY)))
  const plain = (cv1: string | null) =>
    cv1 !== null && isEncryptedToken(cv1) ? Result.getOrThrow(cipher.decrypt(cv1)) : cv1

  it("OS_VERSION_CASES agree with the classifier's rules", () => {
    for (const c of OS_VERSION_CASES) assert.strictEqual(classify(c.osVersion).category, c.category, c.osVersion)
  })

  it.live("classification rows: real tokens, every expected phone, the invalid values", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      const scenario = classificationScenario()
      fake.state.reportRows.push(...scenario.rows)
      const rows = yield* withClient(fake, { pageSize: 10 })(report())
      assert.strictEqual(rows.length, scenario.rows.length)
      const tokens = rows.map((r) => r.customVariable1!).filter(isEncryptedToken)
      assert.isAtLeast(tokens.length, 12)
      assert.isTrue(tokens.every((t) => t.length === 54)) // 12-digit phones, as the original's tokens
      const phones = new Set(rows.map((r) => plain(r.customVariable1)))
      for (const phone of [...scenario.expected.keys(), ...scenario.droppedPhones])
        assert.isTrue(phones.has(phone), phone)
      for (const v of scenario.invalidValues) assert.isTrue(phones.has(v), v)
      const uniqueVisits = new Set(rows.map((r) => r.uniqueVisits))
      for (const n of [0, 1, 2, 3]) assert.isTrue(uniqueVisits.has(n))
    })
  )

  it.live("conversion rows: AM/PM timestamps, countries in campaign names, FTD and REG", () =>
    Effect.gen(function* () {
      const fake = yield* fakeVoluum()
      const scenario = conversionScenario()
      fake.state.conversions.push(...scenario.conversions)
      const rows = yield* withClient(fake)(
        VoluumClient.use((v) => v.conversions({ from: "2025-10-01T00:00:00Z", to: "2025-10-02T00:00:00Z" }))
      )
      assert.deepStrictEqual(
        rows.map((r) => r.clickId),
        scenario.expected.map((e) => e.clickId)
      )
      assert.deepStrictEqual(
        rows.map((r) => parseVoluumTimestamp(r.postbackTimestamp!)?.toISOString()),
        scenario.conversions.map((c) => c.at.toISOString())
      )
      assert.strictEqual(rows[0]!.postbackTimestamp, "2025-10-01 12:30:00 AM")
      assert.strictEqual(rows[2]!.postbackTimestamp, "2025-10-01 12:05:00 PM")
      rows.forEach((r, i) => {
        const e = scenario.expected[i]!
        if (e.phone !== null) assert.strictEqual(plain(r.customVariable1), e.phone)
        assert.strictEqual(r.conversionType === "FTD" ? "FTD" : "REG", e.conversionType)
      })
      assert.strictEqual(rows[3]!.campaignName, "Marketing Services 4 - France - AB CC18")
    })
  )
})
