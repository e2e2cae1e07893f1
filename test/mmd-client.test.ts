/**
 * The MessageWhiz client against the fake MessageWhiz over real HTTP: a day's broadcasts across pages
 * (newest first, stopping at the previous day), links without their query string, the envelope's
 * `errorCode` as a typed error, 429s ridden out, the API key header, the bounded concurrency, and
 * the not-configured failure.
 */
import { Effect, Layer, Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AppConfig, MessageWhizClient, parseSettings, type Env } from "@optimizer/core"
import { broadcast, startFakeMessageWhiz, type FakeMessageWhiz } from "./fakes/messagewhiz.ts"

let mw: FakeMessageWhiz

const settingsOf = (env: Env) => {
  const parsed = parseSettings({ LOG_LEVEL: "Warn", DATABASE_URL: "postgres://unused@127.0.0.1/x", ...env })
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  return parsed.success
}

const run = <A, E>(
  f: (client: MessageWhizClient["Service"]) => Effect.Effect<A, E>,
  env: Env = { MMD_API_KEY: mw.state.apiKey, MMD_API_URL: mw.url, MMD_REQUESTS_PER_SECOND: "1000" }
) =>
  Effect.runPromise(
    Effect.result(MessageWhizClient.use(f)).pipe(
      Effect.provide(
        MessageWhizClient.layerWith({ pageSize: 10, baseDelay: "5 millis" }).pipe(
          Layer.provide(Layer.succeed(AppConfig, settingsOf(env)))
        )
      )
    )
  )

const at = (day: string, i: number) =>
  `${day}T${String(23 - (i % 24)).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}:00.000Z`

beforeAll(async () => {
  mw = await startFakeMessageWhiz()
  // 25 broadcasts on 05-02, 23 on 05-01 (2 of them unsent), 30 on 04-30: newest first, pages of 10.
  for (let i = 0; i < 25; i++)
    mw.state.broadcasts.push(broadcast({ id: 2000 + i, sendDate: at("2025-05-02", i), linkId: 1 }))
  for (let i = 0; i < 23; i++) {
    mw.state.broadcasts.push(
      broadcast({ id: 1000 + i, sendDate: at("2025-05-01", i), linkId: 1, state: i === 0 ? 0 : i === 1 ? 2 : 3 })
    )
  }
  for (let i = 0; i < 30; i++) mw.state.broadcasts.push(broadcast({ id: i, sendDate: at("2025-04-30", i), linkId: 1 }))
  for (let i = 1; i <= 12; i++) {
    mw.state.links.push({
      id: i,
      url: `https://trk.example.com/00000000-0000-4000-8000-${String(i).padStart(12, "0")}?Phone={recipients.id}`
    })
  }
})

afterAll(async () => {
  await mw?.close()
})

describe("MessageWhizClient", () => {
  it("pages newest first, keeps the day's broadcasts of every state and stops at the previous day", async () => {
    const before = mw.state.count("/api/3/Broadcast/List")
    const result = await run((c) => c.broadcastsOfDay("2025-05-01"))
    const items = Result.getOrThrow(result)
    expect(items.map((b) => b.id).sort()).toEqual(Array.from({ length: 23 }, (_, i) => 1000 + i).sort())
    expect(items.filter((b) => b.state === 0 || b.state === 2)).toHaveLength(2)
    // Pages: 0-9 and 10-19 (05-02), 20-29 (05-02 + 05-01), 30-39, 40-49 (05-01 + 04-30: stop) → 5.
    expect(mw.state.count("/api/3/Broadcast/List") - before).toBe(5)
    const last = mw.state.requests.filter((r) => r.path === "/api/3/Broadcast/List").at(-1)!
    expect(last.query.get("start")).toBe("40")
    expect(last.query.get("limit")).toBe("10")
    expect(last.headers.get("apikey")).toBe(mw.state.apiKey)
  })

  it("a day with no broadcasts is an empty list; a malformed day is a ValidationError", async () => {
    expect(Result.getOrThrow(await run((c) => c.broadcastsOfDay("2025-04-01")))).toEqual([])
    const bad = await run((c) => c.broadcastsOfDay("2025-13-01"))
    expect(Result.isFailure(bad) && bad.failure._tag).toBe("ValidationError")
  })

  it("maps link ids to URLs without their query string, across pages", async () => {
    const links = Result.getOrThrow(await run((c) => c.links()))
    expect(links.size).toBe(12)
    expect(links.get(7)).toBe("https://trk.example.com/00000000-0000-4000-8000-000000000007")
  })

  it("an envelope with errorCode ≠ 0 is a non-retryable UpstreamError naming the code", async () => {
    mw.state.errorEnvelope = { code: 1003, type: "InvalidParameter", message: "start out of range", count: 1 }
    const result = await run((c) => c.links())
    mw.state.errorEnvelope = undefined
    expect(Result.isFailure(result)).toBe(true)
    if (Result.isFailure(result)) {
      expect(result.failure).toMatchObject({ _tag: "UpstreamError", service: "messagewhiz", retryable: false })
      expect(result.failure.message).toContain("1003")
      expect(result.failure.message).toContain("start out of range")
    }
  })

  it("rides out 429s (Retry-After honoured) and a 503", async () => {
    mw.state.inject({ path: "/api/3/Link", status: 429, count: 2, retryAfter: "0" })
    mw.state.inject({ path: "/api/3/Link", status: 503, count: 1 })
    const links = Result.getOrThrow(await run((c) => c.links()))
    expect(links.size).toBe(12)
  })

  it("keeps at most 4 requests in flight however many calls run at once", async () => {
    mw.state.delayMs = 30
    mw.state.maxInFlight = 0
    const result = await run((c) =>
      Effect.all(
        Array.from({ length: 12 }, () => c.links()),
        { concurrency: "unbounded" }
      )
    )
    mw.state.delayMs = 0
    expect(Result.getOrThrow(result)).toHaveLength(12)
    expect(mw.state.maxInFlight).toBeGreaterThan(1)
    expect(mw.state.maxInFlight).toBeLessThanOrEqual(4)
  })

  it("a wrong key is a 401 UpstreamError with MessageWhiz's message", async () => {
    const result = await run((c) => c.links(), { MMD_API_KEY: "wrong", MMD_API_URL: mw.url })
    expect(Result.isFailure(result) && result.failure).toMatchObject({ _tag: "UpstreamError", status: 401 })
    if (Result.isFailure(result)) expect(result.failure.message).toContain("API key missing or invalid")
  })

  it("without MMD_API_KEY every call fails with NotConfigured", async () => {
    const result = await run((c) => c.links(), {})
    expect(Result.isFailure(result) && result.failure).toMatchObject({
      _tag: "NotConfigured",
      missing: ["MMD_API_KEY"]
    })
  })
})
