/**
 * The shared JSON client over real HTTP: query encoding, Retry-After (seconds and HTTP date), the
 * Retry-After cap, network errors, accepted statuses, the rate limiter and the in-flight cap.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Hono } from "hono"
import { UpstreamError } from "../../src/platform/Errors.ts"
import { encodeQuery, makeJsonClient, makeRateLimiter, parseRetryAfter } from "../../src/platform/HttpApiClient.ts"
import { listen, sleep } from "../../../../test/fakes/server.ts"

/** A server whose first `failures` answers are `status` with the given Retry-After. */
const flaky = (failures: number, status: number, retryAfter?: () => string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const hits: Array<{ at: number; query: string }> = []
      let inFlight = 0
      let maxInFlight = 0
      const app = new Hono()
      app.all("*", async (c) => {
        hits.push({ at: Date.now(), query: new URL(c.req.url).search })
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        try {
          if (c.req.path === "/slow") await sleep(30)
          if (hits.length <= failures) {
            return c.json(
              { message: "slow down" },
              status as 429,
              retryAfter === undefined ? {} : { "retry-after": retryAfter() }
            )
          }
          if (c.req.path === "/teapot") return c.json({ error: { description: "short and stout" } }, 418)
          return c.json({ ok: true, echo: await c.req.text() })
        } finally {
          inFlight--
        }
      })
      const running = await listen(app)
      return { ...running, hits, maxInFlight: () => maxInFlight }
    }),
    (s) => Effect.promise(() => s.close())
  )

describe("HttpApiClient helpers", () => {
  it("parseRetryAfter reads seconds and HTTP dates", () => {
    const now = Date.parse("2026-01-01T00:00:00Z")
    assert.strictEqual(parseRetryAfter("0", now), 0)
    assert.strictEqual(parseRetryAfter("2", now), 2000)
    assert.strictEqual(parseRetryAfter("1.5", now), 1500)
    assert.strictEqual(parseRetryAfter("Thu, 01 Jan 2026 00:00:03 GMT", now), 3000)
    assert.strictEqual(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now), 0)
    assert.strictEqual(parseRetryAfter("soon", now), undefined)
    assert.strictEqual(parseRetryAfter(null, now), undefined)
  })

  it("encodeQuery repeats keys and keeps their order", () => {
    assert.strictEqual(
      encodeQuery({ groupBy: ["ip", "os-version"], limit: 10, skip: undefined }),
      "?groupBy=ip&groupBy=os-version&limit=10"
    )
    assert.strictEqual(
      encodeQuery([
        ["column", "a"],
        ["from", "2025-05-01T00:00:00Z"],
        ["column", "b"]
      ]),
      "?column=a&from=2025-05-01T00%3A00%3A00Z&column=b"
    )
  })

  it.live("the rate limiter lets `limit` calls start per window", () =>
    Effect.gen(function* () {
      const limiter = makeRateLimiter(3, "200 millis")
      const started = Date.now()
      const times = yield* Effect.all(
        Array.from({ length: 7 }, () => limiter.pipe(Effect.map(() => Date.now() - started))),
        { concurrency: "unbounded" }
      )
      times.sort((a, b) => a - b)
      assert.isBelow(times[2]!, 100) // the first 3 at once
      assert.isAtLeast(times[3]!, 190) // the 4th waits for the window
      assert.isAtLeast(times[6]!, 390) // the 7th for the third window
    })
  )
})

describe("HttpApiClient.request", () => {
  it.live("honours a Retry-After given as an HTTP date", () =>
    Effect.gen(function* () {
      const server = yield* flaky(1, 503, () => new Date(Date.now() + 2_000).toUTCString())
      const client = yield* makeJsonClient({ service: "test", baseUrl: server.url, baseDelay: "1 millis" })
      const response = yield* client.request({ path: "/x", query: { a: ["1", "2"] } })
      assert.deepStrictEqual(response.json, { ok: true, echo: "" })
      assert.strictEqual(server.hits.length, 2)
      assert.strictEqual(server.hits[1]!.query, "?a=1&a=2")
      // An HTTP date has one-second resolution: "2 s from now" waits more than 1 s (not the 1 ms backoff).
      assert.isAtLeast(server.hits[1]!.at - server.hits[0]!.at, 950)
    })
  )

  it.live("a Retry-After beyond the cap fails at once, retryable", () =>
    Effect.gen(function* () {
      const server = yield* flaky(1, 429, () => "3600")
      const client = yield* makeJsonClient({ service: "test", baseUrl: server.url, maxRetryAfter: "1 second" })
      const error = yield* client.request({ path: "/x" }).pipe(Effect.flip)
      assert.isTrue(error.retryable)
      assert.strictEqual(error.status, 429)
      assert.include(error.message, "asked to retry after 3600 s")
      assert.strictEqual(server.hits.length, 1)
    })
  )

  it.live("sends a JSON body and hands back accepted non-2xx statuses", () =>
    Effect.gen(function* () {
      const server = yield* flaky(0, 200)
      const client = yield* makeJsonClient({ service: "test", baseUrl: server.url })
      const ok = yield* client.request({ method: "POST", path: "/x", body: { a: 1 } })
      assert.deepStrictEqual(ok.json, { ok: true, echo: '{"a":1}' })
      const accepted = yield* client.request({ path: "/teapot", accept: [418] })
      assert.strictEqual(accepted.status, 418)
      const refused = (yield* client.request({ path: "/teapot" }).pipe(Effect.flip)) as UpstreamError
      assert.strictEqual(refused.status, 418)
      assert.isFalse(refused.retryable)
      assert.include(refused.message, "short and stout")
    })
  )

  it.live("a server that cannot be reached is retried, then a retryable UpstreamError", () =>
    Effect.gen(function* () {
      const client = yield* makeJsonClient({
        service: "nowhere",
        baseUrl: "http://127.0.0.1:9",
        maxRetries: 2,
        baseDelay: "1 millis"
      })
      const error = yield* client.request({ path: "/x" }).pipe(Effect.flip)
      assert.strictEqual(error.service, "nowhere")
      assert.isTrue(error.retryable)
      assert.include(error.message, "could not be reached")
      assert.include(error.message, "gave up after 3 attempts")
    })
  )

  it.live("maxConcurrent caps the requests in flight", () =>
    Effect.gen(function* () {
      const server = yield* flaky(0, 200)
      const client = yield* makeJsonClient({ service: "test", baseUrl: server.url, maxConcurrent: 3 })
      yield* Effect.all(
        Array.from({ length: 12 }, () => client.request({ path: "/slow" })),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(server.maxInFlight(), 3)
    })
  )
})
