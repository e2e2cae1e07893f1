/**
 * Request id, access log, API-key authentication with the per-key rate limit. CORS comes from
 * `hono/cors` in `app.ts`.
 */
import { randomUUID } from "node:crypto"
import { Cause, Option, type ManagedRuntime } from "effect"
import type { HttpBindings } from "@hono/node-server"
import type { MiddlewareHandler } from "hono"
import { ApiKeys, retryAfterSeconds, type RateLimiter } from "@optimizer/core"
import { DATABASE_UNAVAILABLE } from "./errors.ts"
import { errorResponse, withinDeadline, type AppEnv } from "./http.ts"
import { logEnabled, logLine } from "./log.ts"
import { countRequest } from "./metrics.ts"

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/

/** Honours a sane incoming `X-Request-Id` (from a proxy), else makes one; echoes it on the response. */
export const requestId: MiddlewareHandler<AppEnv> = async (c, next) => {
  const incoming = c.req.header("x-request-id")
  const id = incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : randomUUID()
  c.set("requestId", id)
  c.set("principal", undefined)
  c.set("traceId", undefined)
  // Under @hono/node-server the header goes on Node's response, whose `writeHead` merges it with
  // the route's own headers. Setting it on `c.res` turns the response's plain header object into a
  // WHATWG `Headers` that the server then converts back, per request.
  const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing
  if (outgoing !== undefined) {
    outgoing.setHeader("X-Request-Id", id)
    return next()
  }
  await next()
  c.res.headers.set("X-Request-Id", id)
}

/**
 * One line per request with method, path, status and duration; with `metrics`, the request is also
 * counted and timed (metrics.ts `countRequest`).
 */
export const makeAccessLog =
  (metrics: boolean): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const started = performance.now()
    await next()
    const status = c.res.status
    if (metrics) countRequest(c, status, performance.now() - started)
    const level = status >= 500 ? "error" : "info"
    if (!logEnabled(level)) return
    logLine(level, "request", {
      request_id: c.get("requestId"),
      method: c.req.method,
      path: c.req.path,
      status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
      key: c.get("principal")?.name,
      ...traceFields(c.get("traceId"))
    })
  }

const traceFields = (traceId: string | undefined) => (traceId === undefined ? {} : { trace_id: traceId })

/** The access log without metrics. */
export const accessLog: MiddlewareHandler<AppEnv> = makeAccessLog(false)

const presentedKey = (authorization: string | undefined, apiKey: string | undefined): string | undefined => {
  if (apiKey !== undefined && apiKey.trim() !== "") return apiKey.trim()
  if (authorization === undefined) return undefined
  const match = /^Bearer\s+(.+)$/i.exec(authorization.trim())
  return match?.[1]?.trim()
}

export interface AuthenticateOptions {
  /** The key check's database lookup must answer within this, else 503 (the request's deadline). */
  readonly deadlineMs: number
  /** The per-key rate limit; absent or with every rate 0, no limit. */
  readonly limiter?: RateLimiter
}

/**
 * Resolves the presented key to a principal. A key that is presented but unknown or revoked is a
 * 401 here; a request without a key continues and each non-public route answers 401 itself (so
 * `/`, `/health` and the docs stay open and unknown paths stay 404, and are not rate limited).
 * A known key over its role's rate is a 429 with `Retry-After`.
 */
export const authenticate = <R>(
  runtime: ManagedRuntime.ManagedRuntime<R | ApiKeys, unknown>,
  options: AuthenticateOptions
): MiddlewareHandler<AppEnv> => {
  const limiter = options.limiter?.enabled === true ? options.limiter : undefined
  // The service, kept from the first request that needed the database: a key verified in the last
  // 10 s is then checked synchronously (`authenticateCached`), without a fiber and its promise.
  let keys: ApiKeys["Service"] | undefined
  // A database that stops answering must not hold the request (and its socket) open: the lookup
  // gets the request's deadline.
  const lookup = (key: string) =>
    withinDeadline(
      ApiKeys.use((service) => {
        keys = service
        return service.authenticate(key)
      }),
      options.deadlineMs,
      () => "the key lookup did not answer in time"
    )
  return async (c, next) => {
    const key = presentedKey(c.req.header("authorization"), c.req.header("x-api-key"))
    if (key === undefined) return next()
    let principal = keys?.authenticateCached(key)
    if (principal === undefined) {
      const result = await runtime.runPromiseExit(lookup(key))
      if (result._tag === "Failure") {
        // Whatever the failure (a timeout, an unreachable database, a failed query), the key cannot
        // be checked now: a temporary 503, as every route answers a database that is unavailable.
        logLine("error", "API key check failed", {
          request_id: c.get("requestId"),
          cause: Cause.pretty(result.cause)
        })
        const mapped = DATABASE_UNAVAILABLE
        return errorResponse(
          c,
          mapped.status,
          mapped.code,
          "Could not check the API key: the database is unavailable or too slow; retry later",
          mapped.retryAfterSeconds
        )
      }
      principal = result.value
    }
    if (Option.isNone(principal)) return errorResponse(c, 401, "UNAUTHORIZED", "Invalid or revoked API key")
    // Set before the limit check, so that the access log names the key of a 429 too.
    c.set("principal", principal.value)
    if (limiter !== undefined) {
      const waitMs = limiter.take(principal.value.keyId, principal.value.role)
      if (waitMs > 0) {
        const seconds = retryAfterSeconds(waitMs)
        return errorResponse(
          c,
          429,
          "RATE_LIMITED",
          `Too many requests for this API key (its role, ${principal.value.role}, may make ${limiter.ratePerSecond(principal.value.role)} per second): retry after ${seconds} s`,
          seconds
        )
      }
    }
    return next()
  }
}
