/**
 * HTTP metrics and the `/metrics` route (docs/observability.md): one count per answered request by
 * route pattern (never the raw path: `/jobs/:id`, not `/jobs/3f…`), method and status, and a latency
 * histogram by route and method. A request no route matched is counted under `unmatched`.
 */
import type { Context as HonoContext } from "hono"
import { matchedRoutes } from "hono/route"
import { METRICS_CONTENT_TYPE, observeHttpRequest, renderMetrics } from "@optimizer/core"
import type { AppEnv } from "./http.ts"

const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])

/** The pattern of the route that answered (`/jobs/:id`), or `unmatched` when only middleware matched. */
export const routeOf = (c: HonoContext<AppEnv>): string => {
  const routes = matchedRoutes(c)
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i]!
    if (route.method !== "ALL") return route.path
  }
  return "unmatched"
}

/**
 * Counts and times an answered request (called by the access-log middleware, which already times
 * every request: one middleware less on the request path). It sees every answer: 401s, 404s, 429s.
 */
export const countRequest = (c: HonoContext<AppEnv>, status: number, milliseconds: number): void => {
  const method = METHODS.has(c.req.method) ? c.req.method : "other"
  observeHttpRequest(routeOf(c), method, status, milliseconds / 1000)
}

/** `GET /metrics`: the process's metrics in Prometheus's text format (no API key needed). */
export const metricsRoute = async (): Promise<Response> =>
  new Response(await renderMetrics(), { headers: { "content-type": METRICS_CONTENT_TYPE } })
