/**
 * The original's `main.py` endpoints and `/get-metrics` (`docs/original-api.md` "Service and metrics").
 */
import { Effect, Schema } from "effect"
import { Health, Metrics, type AppServices } from "@optimizer/core"
import { errorResponse, type Routes } from "../http.ts"
import { DATABASE_UNAVAILABLE } from "../errors.ts"
import { Count } from "../responses.ts"

const MetricTriple = Schema.Tuple([
  Count.annotate({ description: "All rows" }),
  Count.annotate({ description: "Rows of the last 24 hours" }),
  Count.annotate({ description: "Rows of the last 7 days" })
]).annotate({ identifier: "MetricTriple", description: "[total, last_24_hours, last_7_days]" })

const TableMetrics = Schema.Struct({
  blacklist: MetricTriple,
  whitelist: MetricTriple,
  monitor: MetricTriple,
  main_database: MetricTriple,
  api_voluum_conversions: MetricTriple,
  api_hlr_live_numbers: MetricTriple
}).annotate({ identifier: "TableMetrics" })

export const coreRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "get",
        path: "/",
        role: "public",
        tag: "core",
        summary: "Liveness banner",
        returns: '{"message": "Optimizer Backend is running!"}',
        response: Schema.Struct({ message: Schema.String })
      },
      () => Effect.succeed({ message: "Optimizer Backend is running!" })
    )
    .add(
      {
        method: "get",
        path: "/health",
        role: "public",
        tag: "core",
        summary: "Health: 200 when the database answers a ping within 2 s, else 503",
        returns: '{"status": "ok"}',
        response: Schema.Struct({ status: Schema.Literal("ok") })
      },
      ({ c }) =>
        Health.use((h) => h.databaseAnswers).pipe(
          Effect.map((ok) =>
            ok
              ? { status: "ok" }
              : errorResponse(
                  c,
                  DATABASE_UNAVAILABLE.status,
                  DATABASE_UNAVAILABLE.code,
                  "database did not answer within 2 s",
                  DATABASE_UNAVAILABLE.retryAfterSeconds
                )
          )
        )
    )
    .add(
      {
        method: "get",
        path: "/get-metrics",
        role: "viewer",
        tag: "core",
        summary: "Row counts of six tables: [total, last 24 hours, last 7 days]",
        returns:
          "blacklist, whitelist, monitor, main_database, api_voluum_conversions, api_hlr_live_numbers: each [total, last_24_hours, last_7_days]",
        response: TableMetrics
      },
      () => Metrics.use((m) => m.tableCounts)
    )
