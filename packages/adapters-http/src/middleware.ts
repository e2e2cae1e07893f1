/**
 * Request id, access log, API-key authentication. CORS comes from `hono/cors` in `app.ts`.
 */
import { randomUUID } from "node:crypto"
import { Effect, Option, type ManagedRuntime } from "effect"
import type { MiddlewareHandler } from "hono"
import { ApiKeys } from "@optimizer/core"
import { errorResponse, type AppEnv } from "./http.ts"
import { logLine } from "./log.ts"

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/

/** Honours a sane incoming `X-Request-Id` (from a proxy), else makes one; echoes it on the response. */
export const requestId: MiddlewareHandler<AppEnv> = async (c, next) => {
  const incoming = c.req.header("x-request-id")
  const id = incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : randomUUID()
  c.set("requestId", id)
  c.set("principal", undefined)
  await next()
  c.res.headers.set("X-Request-Id", id)
}

/** One line per request with method, path, status and duration. */
export const accessLog: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = performance.now()
  await next()
  const status = c.res.status
  logLine(status >= 500 ? "error" : "info", "request", {
    request_id: c.get("requestId"),
    method: c.req.method,
    path: c.req.path,
    status,
    duration_ms: Math.round((performance.now() - started) * 10) / 10,
    key: c.get("principal")?.name
  })
}

const presentedKey = (authorization: string | undefined, apiKey: string | undefined): string | undefined => {
  if (apiKey !== undefined && apiKey.trim() !== "") return apiKey.trim()
  if (authorization === undefined) return undefined
  const match = /^Bearer\s+(.+)$/i.exec(authorization.trim())
  return match?.[1]?.trim()
}

/**
 * Resolves the presented key to a principal. A key that is presented but unknown or revoked is a
 * 401 here; a request without a key continues and each non-public route answers 401 itself (so
 * `/`, `/health` and the docs stay open and unknown paths stay 404).
 */
export const authenticate =
  <R>(runtime: ManagedRuntime.ManagedRuntime<R | ApiKeys, unknown>): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const key = presentedKey(c.req.header("authorization"), c.req.header("x-api-key"))
    if (key === undefined) return next()
    const result = await runtime.runPromiseExit(
      ApiKeys.use((keys) => keys.authenticate(key)).pipe(Effect.map(Option.getOrUndefined))
    )
    if (result._tag === "Failure")
      return errorResponse(c, 503, "DATABASE_ERROR", "Could not check the API key: the database did not answer")
    if (result.value === undefined) return errorResponse(c, 401, "UNAUTHORIZED", "Invalid or revoked API key")
    c.set("principal", result.value)
    return next()
  }
