/**
 * The Hono application: middleware (request id, access log, CORS, API keys and their rate limit), the original's routes,
 * the OpenAPI document and the docs page (Swagger UI), and FastAPI-compatible 404/500 bodies.
 */
import { Hono } from "hono"
import { cors } from "hono/cors"
import { defaultHttpLimits, RateLimiter, type AppRuntime, type AppServices, type HttpLimits } from "@optimizer/core"
import { errorResponse, Routes, type AppEnv } from "./http.ts"
import { authenticate, makeAccessLog, requestId } from "./middleware.ts"
import { docsRoutes } from "./docsPage.ts"
import { openApiDocument } from "./openapi.ts"
import { configureHttpLog, logLine } from "./log.ts"
import { metricsRoute } from "./metrics.ts"
import { cleaningRoutes } from "./routes/cleaning.ts"
import { hlrRoutes } from "./routes/hlr.ts"
import { coreRoutes } from "./routes/core.ts"
import { jobRoutes } from "./routes/jobs.ts"
import { keyRoutes } from "./routes/keys.ts"
import { listRoutes } from "./routes/lists.ts"
import { voluumRoutes } from "./routes/voluum.ts"
import { encryptionRoutes } from "./routes/encryption.ts"
import { exportRoutes } from "./routes/exports.ts"
import { recordRoutes } from "./routes/records.ts"
import { schedulerRoutes } from "./routes/scheduler.ts"
import { mmdRoutes } from "./routes/mmd.ts"
import { ongageJobRoutes } from "./routes/ongageJobs.ts"

export interface AppOptions {
  readonly corsOrigins: ReadonlyArray<string>
  readonly version: string
  /** Request-log format and minimum level (the process's LOG_FORMAT / LOG_LEVEL). */
  readonly log?: { readonly pretty: boolean; readonly level: string }
  /** The process's HTTP limits (settings.http: body size, deadline, rate limits, server timeouts); the defaults when absent. */
  readonly http?: HttpLimits
  /**
   * Metrics: counted per request and served at `GET /metrics` ("here", the default), counted but served
   * elsewhere (`METRICS_PORT`: "elsewhere"), or neither ("off", METRICS_ENABLED=false).
   */
  readonly metrics?: "here" | "elsewhere" | "off"
  /** Each request runs in a server span continuing an incoming `traceparent` (spans are exported). */
  readonly tracing?: boolean
  /**
   * Tests only: check each JSON 200/202 body against its route's declared schema (`response`,
   * `accepted.schema` in `http.ts`) and answer 500 `RESPONSE_SCHEMA_MISMATCH` naming the route and the
   * mismatch instead. Off by default: production never pays for it.
   */
  readonly validateResponses?: boolean
}

export const makeApp = (runtime: AppRuntime, options: AppOptions) => {
  if (options.log) configureHttpLog(options.log)
  const app = new Hono<AppEnv>()
  const metrics = options.metrics ?? "here"
  app.use(requestId)
  app.use(makeAccessLog(metrics !== "off"))
  if (options.corsOrigins.length > 0) {
    app.use(
      cors({
        origin: options.corsOrigins.includes("*") ? "*" : [...options.corsOrigins],
        allowHeaders: ["Authorization", "X-API-Key", "Content-Type", "X-Request-Id"],
        exposeHeaders: ["X-Request-Id", "Content-Disposition"],
        maxAge: 600
      })
    )
  }
  const limits = options.http ?? defaultHttpLimits()
  // One limiter per app (per process): buckets keyed by API key id, rates from the key's role.
  const limiter = new RateLimiter({ perSecond: limits.rateLimitPerSecond })
  app.use(authenticate(runtime, { deadlineMs: limits.requestDeadlineMs, limiter }))

  if (metrics === "here") app.get("/metrics", metricsRoute)
  const routes = new Routes<AppServices>(
    app,
    runtime,
    limits,
    options.tracing === true,
    options.validateResponses === true
  )
  coreRoutes(routes)
  keyRoutes(routes)
  listRoutes(routes)
  jobRoutes(routes)
  cleaningRoutes(routes)
  hlrRoutes(routes)
  voluumRoutes(routes)
  encryptionRoutes(routes)
  exportRoutes(routes)
  recordRoutes(routes)
  schedulerRoutes(routes)
  mmdRoutes(routes)
  ongageJobRoutes(routes)

  const document = openApiDocument(routes.operations, { title: "optimizer", version: options.version })
  app.get("/openapi.json", (c) => c.json(document))
  docsRoutes(app, "optimizer")

  app.notFound((c) => errorResponse(c, 404, "NOT_FOUND", "Not Found"))
  app.onError((err, c) => {
    logLine("error", "unhandled error", { request_id: c.get("requestId"), error: String(err?.stack ?? err) })
    return errorResponse(c, 500, "INTERNAL_ERROR", "Internal Server Error")
  })
  return { app, routes, document }
}
