/**
 * The live-events service against a real PostgreSQL database of its own: what lands in
 * raw_live_voluum_sns_data, voluum_live_events and the lists for a batch of queue messages, and
 * which messages it reports committed (to delete) or failed (to leave on the queue).
 */
import { randomUUID } from "node:crypto"
import { Layer, ManagedRuntime, References } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { startFakeVoluum, type FakeVoluum } from "../../../../test/fakes/voluum.ts"
import { Classifier } from "../../src/classification/Classifier.ts"
import { Encryption } from "../../src/encryption/Encryption.ts"
import { LiveEvents, type BatchOutcome } from "../../src/live-events/LiveEvents.ts"
import { parseMessage, type IncomingMessage } from "../../src/live-events/LiveEventSchemas.ts"
import { LiveEventsRepository } from "../../src/live-events/LiveEventsRepository.ts"
import { Lists } from "../../src/lists/Lists.ts"
import { AppConfig, type Env } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"
import { VoluumClient } from "../../src/voluum/VoluumClient.ts"
import { clickEvent, phoneAt, snsBody, TEST_AES_KEY, tokenFor } from "./fixtures.ts"

const makeRuntime = (env: Env) =>
  ManagedRuntime.make(
    LiveEvents.layerWith({ namesRefreshInterval: "1 hour" }).pipe(
      Layer.provide(
        Layer.mergeAll(LiveEventsRepository.layer, Lists.layer, Classifier.layer, Encryption.layer, VoluumClient.layer)
      ),
      Layer.provideMerge(DatabaseLayer),
      Layer.provideMerge(AppConfig.layerFrom(env)),
      Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Error"))
    )
  )

let db: TestDatabase
let client: pg.Client
let runtime: ReturnType<typeof makeRuntime>
let voluum: FakeVoluum

beforeAll(async () => {
  db = await createTestDatabase()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
  voluum = await startFakeVoluum()
  runtime = makeRuntime(voluumEnv())
})

afterAll(async () => {
  await runtime?.dispose()
  await voluum?.close()
  await client?.end()
  await db?.drop()
})

const voluumEnv = (): Env => ({
  DATABASE_URL: db.url,
  AES_KEY: TEST_AES_KEY,
  VOLUUM_API_URL: voluum.url,
  VOLUUM_ACCESS_ID: voluum.state.credentials.accessId,
  VOLUUM_ACCESS_KEY: voluum.state.credentials.accessKey
})

const commit = (messages: ReadonlyArray<IncomingMessage>): Promise<BatchOutcome> =>
  runtime.runPromise(LiveEvents.use((live) => live.commitBatch(messages)))

const message = (body: string): IncomingMessage => ({ messageId: randomUUID(), body })

const rows = async <T = Record<string, unknown>>(text: string, values: ReadonlyArray<unknown> = []) =>
  (await client.query(text, [...values])).rows as Array<T>

/** A phone number of its own for each test (tests share the database). */
let nextPhone = 100
const freshPhone = () => phoneAt(nextPhone++)

describe("parseMessage", () => {
  it("reads an SNS envelope in either casing, raw delivery, one event or an array", () => {
    const event = clickEvent()
    const wrapped = parseMessage({ messageId: "m1", body: snsBody(event, "sns-1") })
    const lambdaCasing = parseMessage({ messageId: "m2", body: snsBody([event, event], "sns-2", "Url") })
    const raw = parseMessage({ messageId: "m3", body: JSON.stringify([event, event, event]) })
    expect(wrapped).toMatchObject({ _tag: "Success", success: { kind: "events", key: "sns-1", delivery: "sns" } })
    expect(lambdaCasing).toMatchObject({ _tag: "Success", success: { key: "sns-2" } })
    expect(raw).toMatchObject({ _tag: "Success", success: { kind: "events", key: "sqs:m3", delivery: "raw" } })
    if (wrapped._tag !== "Success" || wrapped.success.kind !== "events") throw new Error("unreachable")
    expect(wrapped.success.events[0]).toMatchObject({
      clickId: event.clickId,
      osVersion: "IOS 18.7",
      timestamp: new Date("2026-02-07T00:52:01.253Z"),
      customVariables: event.customVariables
    })
  })

  it("accepts customVariables keyed by position and numbers where text is expected", () => {
    const parsed = parseMessage({
      messageId: "m",
      body: JSON.stringify({
        customVariables: { "1": "447700900001", "3": "x" },
        clickId: 42,
        timestamp: 1770425521253
      })
    })
    expect(parsed).toMatchObject({
      _tag: "Success",
      success: {
        events: [{ customVariables: ["447700900001", "", "x"], clickId: "42", timestamp: new Date(1770425521253) }]
      }
    })
  })

  it("rejects what cannot be stored faithfully, saying why", () => {
    const reason = (body: string) => {
      const r = parseMessage({ messageId: "m", body })
      return r._tag === "Failure" ? r.failure : "accepted"
    }
    expect(reason("not json")).toMatch(/^the body is not JSON/)
    expect(reason(JSON.stringify({ Type: "Notification", Message: "{oops" }))).toMatch(/SNS Message is not JSON/)
    expect(reason(JSON.stringify([clickEvent(), 7]))).toMatch(/event 1 is not a JSON object/)
    expect(reason(JSON.stringify(clickEvent({ timestamp: "yesterday" })))).toMatch(/timestamp/)
    expect(reason(JSON.stringify(clickEvent({ clickId: "x".repeat(65) })))).toMatch(/clickId/)
  })
})

describe("LiveEvents.commitBatch", () => {
  it("stores a batch: every event raw, the latest per phone live (decrypted), and reports all committed", async () => {
    const a = freshPhone()
    const b = freshPhone()
    const c = freshPhone()
    const messages = [
      message(snsBody(clickEvent({ phone: a, clickId: "k-a" }))),
      message(
        snsBody([clickEvent({ phone: b, clickId: "k-b" }), clickEvent({ phone: c, clickId: "k-c" })], undefined, "Url")
      ),
      message(
        JSON.stringify(
          clickEvent({ cv1: `+44 7700 900${c.slice(-3)}`, clickId: "k-c2", timestamp: "2026-02-07T01:00:00Z" })
        )
      )
    ]
    const outcome = await commit(messages)
    expect(outcome.failed).toEqual([])
    expect([...outcome.committed].sort()).toEqual(messages.map((m) => m.messageId).sort())
    expect(outcome.counts).toMatchObject({ events: 4, rawRows: 4, liveWritten: 3, notNewer: 1, withoutPhone: 0 })

    const raw = await rows<{ click_id: string; cv: Array<string> }>(
      "SELECT click_id, custom_variables AS cv FROM raw_live_voluum_sns_data WHERE click_id IN ('k-a','k-b','k-c','k-c2') ORDER BY click_id"
    )
    expect(raw.map((r) => r.click_id)).toEqual(["k-a", "k-b", "k-c", "k-c2"])
    expect(raw[0]!.cv[0]).toHaveLength(54) // the token as received
    const live = await rows<{
      custom_variable_1: string
      click_id: string
      custom_variable_2: string
      custom_variable_10: string
    }>(
      "SELECT custom_variable_1, click_id, custom_variable_2, custom_variable_10 FROM voluum_live_events WHERE custom_variable_1 = ANY($1) ORDER BY 1",
      [[a, b, c]]
    )
    expect(live).toEqual([
      { custom_variable_1: a, click_id: "k-a", custom_variable_2: "bc_20260207", custom_variable_10: "" },
      { custom_variable_1: b, click_id: "k-b", custom_variable_2: "bc_20260207", custom_variable_10: "" },
      { custom_variable_1: c, click_id: "k-c2", custom_variable_2: "bc_20260207", custom_variable_10: "" }
    ])
  })

  it("changes nothing for a redelivered message, and still reports it committed", async () => {
    const phone = freshPhone()
    const snsId = randomUUID()
    const body = snsBody(clickEvent({ phone, clickId: "redelivered" }), snsId)
    const first = await commit([message(body)])
    const before = await rows("SELECT updated_at FROM voluum_live_events WHERE custom_variable_1 = $1", [phone])
    // SNS retried: the same SNS MessageId in a new SQS message, twice in one batch, and once more later.
    const again = [message(body), message(body)]
    const second = await commit(again)
    const third = await commit([message(body)])
    expect(first.counts).toMatchObject({ committed: 1, duplicates: 0, rawRows: 1 })
    expect(second.committed).toHaveLength(2)
    expect(second.counts).toMatchObject({ duplicates: 2, rawRows: 0, liveWritten: 0 })
    expect(third.counts).toMatchObject({ duplicates: 1, rawRows: 0 })
    expect(
      await rows("SELECT count(*)::int AS n FROM raw_live_voluum_sns_data WHERE click_id = 'redelivered'")
    ).toEqual([{ n: 1 }])
    expect(await rows("SELECT updated_at FROM voluum_live_events WHERE custom_variable_1 = $1", [phone])).toEqual(
      before
    )
  })

  it("keeps the newest event per phone: in one batch, and against an older event that arrives later", async () => {
    const phone = freshPhone()
    const newer = clickEvent({ phone, clickId: "newer", timestamp: "2026-02-07T10:00:00Z", osVersion: "Android 6.0" })
    const older = clickEvent({ phone, clickId: "older", timestamp: "2026-02-07T09:00:00Z", osVersion: "IOS 18.7" })
    // The original failed on this batch ("ON CONFLICT DO UPDATE cannot affect row a second time").
    const outcome = await commit([message(snsBody([newer, older])), message(snsBody(older))])
    expect(outcome.failed).toEqual([])
    expect(outcome.counts).toMatchObject({ rawRows: 3, liveWritten: 1, notNewer: 2 })
    const late = await commit([
      message(snsBody(clickEvent({ phone, clickId: "late-older", timestamp: "2026-02-07T09:30:00Z" })))
    ])
    expect(late.counts).toMatchObject({ committed: 1, rawRows: 1, liveWritten: 0, notNewer: 1 })
    expect(
      await rows("SELECT click_id, timestamp FROM voluum_live_events WHERE custom_variable_1 = $1", [phone])
    ).toEqual([{ click_id: "newer", timestamp: new Date("2026-02-07T10:00:00Z") }])
    // The list follows the live event that won (Android 6 → blacklist), not the one processed last.
    expect(await rows("SELECT reason, source FROM blacklist WHERE custom_variable_1 = $1", [phone])).toEqual([
      { reason: "OS_VERSION", source: "VOLUUM_LIVE" }
    ])
  })

  it("fails a poison message alone: unparseable, undecodable, or refused by the database", async () => {
    const good = freshPhone()
    const messages = [
      message("{not json"),
      message(snsBody(clickEvent({ timestamp: "07/02/2026" }))),
      // jsonb refuses \u0000: the batch fails in the database and is retried message by message.
      message(snsBody(clickEvent({ phone: freshPhone(), extra: { city: "Lon\u0000don" } }))),
      message(snsBody(clickEvent({ phone: good, clickId: "survivor" })))
    ]
    const outcome = await commit(messages)
    expect(outcome.committed).toEqual([messages[3]!.messageId])
    expect(outcome.failed.map((f) => f.messageId)).toEqual(messages.slice(0, 3).map((m) => m.messageId))
    expect(outcome.failed[2]!.reason).toMatch(/refused by the database/)
    expect(await rows("SELECT click_id FROM voluum_live_events WHERE custom_variable_1 = $1", [good])).toEqual([
      { click_id: "survivor" }
    ])
  })

  it("stores an event without a usable phone raw only", async () => {
    const outcome = await commit([
      message(
        snsBody([
          clickEvent({ cv1: "{{phoneNumber}}", clickId: "np-1" }),
          clickEvent({ cv1: "", clickId: "np-2" }),
          clickEvent({ cv1: "AAAAAAAAAAAAAAAAOoiC6YUcuo04mZsGj41DhNYERH39IVyfQ4zTTg", clickId: "np-3" })
        ])
      )
    ])
    expect(outcome.counts).toMatchObject({
      committed: 1,
      rawRows: 3,
      liveWritten: 0,
      withoutPhone: 3,
      undecryptable: 1
    })
    expect(await rows("SELECT count(*)::int AS n FROM voluum_live_events WHERE click_id LIKE 'np-%'")).toEqual([
      { n: 0 }
    ])
  })

  it("classifies written events into the lists by OS version, one list per number, sticky entries kept", async () => {
    const [black, white, monitor, unknown, noOs, sticky] = [1, 2, 3, 4, 5, 6].map(() => freshPhone()) as [
      string,
      string,
      string,
      string,
      string,
      string
    ]
    await client.query("INSERT INTO whitelist (custom_variable_1, source, clicks) VALUES ($1, 'VOLUUM', 7)", [monitor])
    await client.query(
      "INSERT INTO blacklist (custom_variable_1, reason, source, sticky) VALUES ($1, 'MANUAL', 'admin', true)",
      [sticky]
    )
    const outcome = await commit([
      message(
        snsBody([
          clickEvent({ phone: black, osVersion: "Android 7.1" }),
          clickEvent({ phone: white, osVersion: "IOS 17.2" }),
          clickEvent({ phone: monitor, osVersion: "Android 8.0" }),
          clickEvent({ phone: unknown, osVersion: "Windows 8.1" }),
          clickEvent({ phone: noOs, osVersion: null }),
          clickEvent({ phone: sticky, osVersion: "IOS 18.0" })
        ])
      )
    ])
    expect(outcome.counts.classified).toEqual({ blacklist: 1, whitelist: 2, monitor: 1, unknown: 1 })
    expect(outcome.counts.lists).toMatchObject({ added: 2, moved: 1, keptSticky: 1 })
    const where = async (phone: string) =>
      (
        await rows<{ list: string }>(
          `SELECT 'blacklist' AS list FROM blacklist WHERE custom_variable_1 = $1
           UNION ALL SELECT 'whitelist' FROM whitelist WHERE custom_variable_1 = $1
           UNION ALL SELECT 'monitor' FROM monitor WHERE custom_variable_1 = $1`,
          [phone]
        )
      ).map((r) => r.list)
    expect(await where(black)).toEqual(["blacklist"])
    expect(await where(white)).toEqual(["whitelist"])
    expect(await where(monitor)).toEqual(["monitor"])
    expect(await rows("SELECT clicks, os_version FROM monitor WHERE custom_variable_1 = $1", [monitor])).toEqual([
      { clicks: 7, os_version: "Android 8.0" }
    ])
    expect(await where(unknown)).toEqual([])
    expect(await where(noOs)).toEqual([])
    expect(await where(sticky)).toEqual(["blacklist"])
    expect(await rows("SELECT actor FROM list_audit WHERE custom_variable_1 = $1", [black])).toEqual([
      { actor: "sqs:live-events" }
    ])
  })

  it("resolves offer and campaign names, refreshing them from Voluum once when an id is unknown", async () => {
    // A consumer of its own (its once-per-interval clock starts now), on tables last refreshed 2 hours ago.
    const consumer = makeRuntime(voluumEnv())
    try {
      await client.query(
        "INSERT INTO voluum_offers (offer_id, offer_name, updated_at) VALUES ('offer-known', 'Known offer', now() - interval '2 hours')"
      )
      voluum.state.offers.push({ offerId: "offer-new", offerName: "New offer" })
      voluum.state.campaigns.push({ campaignId: "camp-new", campaignName: "Marketing 1 - France - AB" })
      const offerCalls = () => voluum.state.requests.filter((r) => r.query.get("groupBy") === "offer").length
      const callsBefore = offerCalls()
      const [p1, p2, p3] = [freshPhone(), freshPhone(), freshPhone()]
      const run = (messages: ReadonlyArray<IncomingMessage>) =>
        consumer.runPromise(LiveEvents.use((live) => live.commitBatch(messages)))
      const first = await run([
        message(snsBody(clickEvent({ phone: p1, offerId: "offer-known", campaignId: "camp-new" }))),
        message(snsBody(clickEvent({ phone: p2, offerId: "offer-new", campaignId: "camp-none" })))
      ])
      const callsAfterFirst = offerCalls()
      await run([message(snsBody(clickEvent({ phone: p3, offerId: "offer-unheard-of", campaignId: "camp-new" })))])
      expect(first.failed).toEqual([])
      expect(callsAfterFirst).toBeGreaterThan(callsBefore)
      expect(offerCalls()).toBe(callsAfterFirst) // still unknown, but refreshed less than an interval ago
      expect(
        await rows(
          "SELECT custom_variable_1, offer_name, campaign_name FROM voluum_live_events WHERE custom_variable_1 = ANY($1) ORDER BY 1",
          [[p1, p2, p3]]
        )
      ).toEqual([
        { custom_variable_1: p1, offer_name: "Known offer", campaign_name: "Marketing 1 - France - AB" },
        { custom_variable_1: p2, offer_name: "New offer", campaign_name: null },
        { custom_variable_1: p3, offer_name: null, campaign_name: "Marketing 1 - France - AB" }
      ])
    } finally {
      await consumer.dispose()
    }
  })

  it("fails messages with tokens when AES_KEY is not configured, and stores the rest", async () => {
    const noKey = makeRuntime({ DATABASE_URL: db.url, LOG_LEVEL: "Error" })
    try {
      const plain = freshPhone()
      const messages = [
        message(snsBody(clickEvent({ phone: freshPhone() }))),
        message(snsBody(clickEvent({ cv1: plain })))
      ]
      const outcome = await noKey.runPromise(LiveEvents.use((live) => live.commitBatch(messages)))
      expect(outcome.committed).toEqual([messages[1]!.messageId])
      expect(outcome.failed[0]!.reason).toMatch(/encryption is not configured: set AES_KEY/)
    } finally {
      await noKey.dispose()
    }
  })

  it("is not fooled by tokens of one phone in different spellings", async () => {
    const phone = freshPhone()
    const outcome = await commit([
      message(snsBody(clickEvent({ cv1: tokenFor(phone), timestamp: "2026-02-07T00:00:00Z" }))),
      message(snsBody(clickEvent({ cv1: `+${phone}`, timestamp: "2026-02-07T00:00:01Z", clickId: "plus" })))
    ])
    expect(outcome.counts).toMatchObject({ liveWritten: 1, notNewer: 1 })
    expect(await rows("SELECT click_id FROM voluum_live_events WHERE custom_variable_1 = $1", [phone])).toEqual([
      { click_id: "plus" }
    ])
  })
})
