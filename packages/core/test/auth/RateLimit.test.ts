/**
 * The per-key token bucket on a fake clock: the burst, the refill, the wait it reports, roles
 * apart, a rate of 0 (off), and the bound on how many buckets it keeps.
 */
import { describe, expect, it } from "vitest"
import { RateLimiter, retryAfterSeconds } from "../../src/auth/RateLimit.ts"

const fakeClock = () => {
  let t = 1_000
  return { now: () => t, advance: (ms: number) => (t += ms) }
}

describe("RateLimiter", () => {
  it("lets a burst of twice the rate through, then reports the wait for the next token", () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ perSecond: { viewer: 10, operator: 10, admin: 10 }, now: clock.now })
    for (let i = 0; i < 20; i++) expect(limiter.take("k", "viewer")).toBe(0)
    // Empty: one token comes back every 100 ms at 10/s.
    expect(limiter.take("k", "viewer")).toBe(100)
    clock.advance(40)
    expect(limiter.take("k", "viewer")).toBe(60)
    clock.advance(60)
    expect(limiter.take("k", "viewer")).toBe(0)
    expect(limiter.take("k", "viewer")).toBe(100)
    // A long rest refills to the burst, not beyond.
    clock.advance(60_000)
    for (let i = 0; i < 20; i++) expect(limiter.take("k", "viewer")).toBe(0)
    expect(limiter.take("k", "viewer")).toBeGreaterThan(0)
  })

  it("keeps each key's bucket apart and uses each role's rate", () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ perSecond: { viewer: 1, operator: 5, admin: 0 }, now: clock.now })
    expect(limiter.take("a", "viewer")).toBe(0)
    expect(limiter.take("a", "viewer")).toBe(0)
    expect(limiter.take("a", "viewer")).toBe(1000)
    expect(limiter.take("b", "viewer")).toBe(0)
    for (let i = 0; i < 10; i++) expect(limiter.take("c", "operator")).toBe(0)
    expect(limiter.take("c", "operator")).toBe(200)
    // Admin's rate is 0: never limited, and no bucket kept for it.
    for (let i = 0; i < 1000; i++) expect(limiter.take("d", "admin")).toBe(0)
    expect(limiter.size).toBe(3)
    expect(limiter.enabled).toBe(true)
    expect(new RateLimiter({ perSecond: { viewer: 0, operator: 0, admin: 0 } }).enabled).toBe(false)
  })

  it("keeps at most maxKeys buckets: idle (full) ones go first, else the oldest", () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ perSecond: { viewer: 1, operator: 1, admin: 1 }, maxKeys: 100, now: clock.now })
    for (let i = 0; i < 100; i++) limiter.take(`old-${i}`, "viewer")
    clock.advance(5_000)
    limiter.take("busy", "viewer")
    limiter.take("busy", "viewer")
    // Every old bucket has refilled: all dropped at once, the busy one kept.
    expect(limiter.size).toBe(1)
    expect(limiter.take("busy", "viewer")).toBeGreaterThan(0)
    // A flood of new keys within the same instant: the bound holds.
    for (let i = 0; i < 10_000; i++) limiter.take(`flood-${i}`, "viewer")
    expect(limiter.size).toBe(100)
  })

  it("rounds Retry-After up to whole seconds, at least 1", () => {
    expect(retryAfterSeconds(1)).toBe(1)
    expect(retryAfterSeconds(1000)).toBe(1)
    expect(retryAfterSeconds(1001)).toBe(2)
  })
})
