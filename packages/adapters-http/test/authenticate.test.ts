/**
 * The authentication middleware on its own, over a stand-in for the API-key service: a key lookup
 * that hangs is answered 503 with Retry-After within the deadline, and the per-key rate limit (on a
 * fake clock) answers 429 with Retry-After for one key while another key and keyless requests pass.
 */
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import { Hono } from "hono"
import { afterAll, describe, expect, it } from "vitest"
import { ApiKeys, RateLimiter, type Principal } from "@optimizer/core"
import type { AppEnv } from "../src/http.ts"
import { authenticate, requestId } from "../src/middleware.ts"

const KEY_A = `opt_aaaaaaaa_${"a".repeat(43)}`
const KEY_B = `opt_bbbbbbbb_${"b".repeat(43)}`
const principals: Record<string, Principal> = {
  [KEY_A]: { keyId: "id-a", name: "a", role: "viewer" },
  [KEY_B]: { keyId: "id-b", name: "b", role: "viewer" }
}
const unused = Effect.die("not used by the middleware")

/** An ApiKeys whose lookup answers from `principals`, or never (`hang`); nothing is cached. */
const keysLayer = (hang: boolean) =>
  Layer.succeed(
    ApiKeys,
    ApiKeys.of({
      create: () => unused,
      list: () => unused,
      revoke: () => unused,
      ensureBootstrapAdmin: unused,
      authenticateCached: () => undefined,
      authenticate: (key) =>
        hang
          ? // A query stuck on a dead connection: never answers, and is slow to give up when interrupted.
            Effect.never.pipe(Effect.onInterrupt(() => Effect.sleep("10 seconds")))
          : Effect.succeed(Option.fromNullishOr(principals[key]))
    })
  )

const hanging = ManagedRuntime.make(keysLayer(true))
const answering = ManagedRuntime.make(keysLayer(false))
afterAll(async () => {
  await Promise.all([hanging.dispose(), answering.dispose()])
})

const appWith = (runtime: typeof hanging, options: Parameters<typeof authenticate>[1]) => {
  const app = new Hono<AppEnv>()
  app.use(requestId)
  app.use(authenticate(runtime, options))
  app.get("/x", (c) => c.json({ key: c.get("principal")?.name ?? null }))
  return app
}

const get = (app: Hono<AppEnv>, key?: string) =>
  app.request("/x", key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } })

describe("authenticate", () => {
  it("answers 503 with Retry-After within the deadline when the key lookup hangs", async () => {
    const app = appWith(hanging, { deadlineMs: 300 })
    const started = performance.now()
    const res = await get(app, KEY_A)
    const elapsed = performance.now() - started
    expect(res.status).toBe(503)
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    const body = (await res.json()) as { code: string; detail: string; request_id: string }
    expect(body.code).toBe("DATABASE_UNAVAILABLE")
    expect(body.request_id).toBe(res.headers.get("x-request-id"))
    expect(elapsed).toBeGreaterThanOrEqual(250)
    // Not the 10 s the interrupted lookup takes to give up.
    expect(elapsed).toBeLessThan(3000)
    // A request without a key does not touch the database.
    expect((await get(app)).status).toBe(200)
  })

  it("limits each key to its role's rate: 429 with Retry-After, other keys and keyless requests unaffected", async () => {
    let now = 0
    const limiter = new RateLimiter({ perSecond: { viewer: 1, operator: 1, admin: 1 }, now: () => now })
    const app = appWith(answering, { deadlineMs: 1000, limiter })
    // A burst of two, then the next token in 1 s.
    expect((await get(app, KEY_A)).status).toBe(200)
    expect((await get(app, KEY_A)).status).toBe(200)
    const limited = await get(app, KEY_A)
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).toBe("1")
    const body = (await limited.json()) as Record<string, string>
    expect(Object.keys(body).sort()).toEqual(["code", "detail", "request_id"])
    expect(body.code).toBe("RATE_LIMITED")
    expect(body.request_id).toBe(limited.headers.get("x-request-id"))
    expect((await get(app, KEY_B)).status).toBe(200)
    for (let i = 0; i < 10; i++) expect((await get(app)).status).toBe(200)
    now += 1000
    expect((await get(app, KEY_A)).status).toBe(200)
    expect((await get(app, KEY_A)).status).toBe(429)
  })

  it("does not limit when every rate is 0", async () => {
    const limiter = new RateLimiter({ perSecond: { viewer: 0, operator: 0, admin: 0 } })
    const app = appWith(answering, { deadlineMs: 1000, limiter })
    for (let i = 0; i < 50; i++) expect((await get(app, KEY_A)).status).toBe(200)
  })
})
