/**
 * A per-key rate limit: one token bucket per API key, refilled at its role's rate (requests per
 * second) and holding at most twice that (the burst). Plain synchronous code on purpose: it runs on
 * every authenticated request, so a check is one map lookup and some arithmetic, no fiber, no
 * allocation once a key has its bucket (measured: 0.1–0.2 µs a check on the 2-core benchmark
 * machine, against ~100 µs of a `/find_records` request).
 *
 * The limit is per process: `serve --workers N` gives a key N times the rate (docs/security.md).
 */
import type { Role } from "./ApiKeys.ts"

/** Requests per second per key of each role; 0 turns the limit off for that role. */
export type RateLimits = { readonly [R in Role]: number }

export interface RateLimiterOptions {
  readonly perSecond: RateLimits
  /** A bucket holds this many seconds of its rate (2: a burst of twice the rate). */
  readonly burstSeconds?: number
  /** Buckets kept at most (see `take`). */
  readonly maxKeys?: number
  /** Milliseconds on a monotonic clock; tests pass a fake one. */
  readonly now?: () => number
}

interface Bucket {
  tokens: number
  /** When `tokens` was last brought up to date, on the limiter's clock. */
  at: number
}

const DEFAULT_MAX_KEYS = 10_000

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()
  private readonly perSecond: RateLimits
  private readonly burstSeconds: number
  private readonly maxKeys: number
  private readonly now: () => number

  constructor(options: RateLimiterOptions) {
    this.perSecond = options.perSecond
    this.burstSeconds = options.burstSeconds ?? 2
    this.maxKeys = Math.max(1, options.maxKeys ?? DEFAULT_MAX_KEYS)
    this.now = options.now ?? (() => performance.now())
  }

  /** Is any role limited at all (when none is, the caller may skip `take` altogether)? */
  get enabled(): boolean {
    return this.perSecond.viewer > 0 || this.perSecond.operator > 0 || this.perSecond.admin > 0
  }

  /** A role's rate, for messages. */
  ratePerSecond(role: Role): number {
    return this.perSecond[role]
  }

  /** Buckets held now (for tests of the bound). */
  get size(): number {
    return this.buckets.size
  }

  /**
   * Takes one request's token from `keyId`'s bucket: 0 when the request may go, else the
   * milliseconds until a token is back (the caller's `Retry-After`).
   *
   * The buckets are keyed by API key id, so only keys that authenticated reach here (a made-up key
   * is a 401 before), and their number is that of the keys table. Still bounded: at `maxKeys` a new
   * key first drops the buckets that have refilled (an idle key's full bucket is the same as none),
   * and when every bucket is in use, the oldest one.
   */
  take(keyId: string, role: Role): number {
    const rate = this.perSecond[role]
    if (rate <= 0) return 0
    const capacity = rate * this.burstSeconds
    const now = this.now()
    let bucket = this.buckets.get(keyId)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evict(now)
      bucket = { tokens: capacity, at: now }
      this.buckets.set(keyId, bucket)
    } else {
      const tokens = bucket.tokens + ((now - bucket.at) * rate) / 1000
      bucket.tokens = tokens > capacity ? capacity : tokens
      bucket.at = now
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.ceil(((1 - bucket.tokens) * 1000) / rate)
  }

  /** Drops the full buckets (as of `now`), else the oldest. O(buckets), and only once the bound is reached. */
  private evict(now: number): void {
    const bound = this.maxKeys
    for (const [id, bucket] of this.buckets) {
      // A bucket of any role is full after burstSeconds of rest (it refills a whole burst in that time).
      if ((now - bucket.at) / 1000 >= this.burstSeconds) this.buckets.delete(id)
    }
    if (this.buckets.size >= bound) this.buckets.delete(this.buckets.keys().next().value!)
  }
}

/** `Retry-After` in whole seconds (rounded up, at least 1) for a wait in milliseconds. */
export const retryAfterSeconds = (waitMs: number): number => Math.max(1, Math.ceil(waitMs / 1000))
