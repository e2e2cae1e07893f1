/**
 * `/get-metrics`: for six tables, `[total, last_24_hours, last_7_days]` counted on each table's own
 * timestamp column, in one round trip.
 *
 * The counts are exact but may be up to `METRICS_MAX_AGE` old: they are six full scans (seconds on
 * tables of millions), so one process computes them at most once per that period and every caller
 * in between — however many dashboards poll — gets the same answer; callers that arrive while a
 * count runs wait for that one. A failure is not kept: the next caller tries again.
 */
import { Context, Duration, Effect, Exit, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { decodeRows } from "../platform/Database.ts"
import type { DatabaseError } from "../platform/Errors.ts"

export type MetricTriple = readonly [total: number, last24Hours: number, last7Days: number]

export interface TableMetrics {
  readonly blacklist: MetricTriple
  readonly whitelist: MetricTriple
  readonly monitor: MetricTriple
  readonly main_database: MetricTriple
  readonly api_voluum_conversions: MetricTriple
  readonly api_hlr_live_numbers: MetricTriple
}

/** How old an answer of `tableCounts` may be. */
export const METRICS_MAX_AGE = Duration.seconds(15)

const CountRow = Schema.Struct({
  name: Schema.Literals([
    "blacklist",
    "whitelist",
    "monitor",
    "main_database",
    "api_voluum_conversions",
    "api_hlr_live_numbers"
  ]),
  total: Schema.BigInt,
  day: Schema.BigInt,
  week: Schema.BigInt
})

// Table → the column its windows are counted on (the original's choice, kept for compatibility).
const COUNTED = [
  ["blacklist", "timestamp_created"],
  ["whitelist", "timestamp_created"],
  ["monitor", "timestamp_created"],
  ["main_database", "timestamp_created"],
  ["api_voluum_conversions", "processed_at"],
  ["api_hlr_live_numbers", "timestamp"]
] as const

export class Metrics extends Context.Service<
  Metrics,
  { readonly tableCounts: Effect.Effect<TableMetrics, DatabaseError> }
>()("@optimizer/core/metrics/Metrics") {
  static readonly layer = Layer.effect(
    Metrics,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      // Identifiers come from the constant above, never from a request.
      const query = COUNTED.map(
        ([table, column]) =>
          `SELECT '${table}' AS name, count(*)::bigint AS total,
             count(*) FILTER (WHERE "${column}" >= now() - interval '24 hours')::bigint AS day,
             count(*) FILTER (WHERE "${column}" >= now() - interval '7 days')::bigint AS week
           FROM "${table}"`
      ).join(" UNION ALL ")
      const count = Effect.gen(function* () {
        const rows = yield* sql.unsafe(query).pipe(decodeRows(CountRow))
        const triple = (name: keyof TableMetrics): MetricTriple => {
          const r = rows.find((row) => row.name === name)
          return r === undefined ? [0, 0, 0] : [Number(r.total), Number(r.day), Number(r.week)]
        }
        return {
          blacklist: triple("blacklist"),
          whitelist: triple("whitelist"),
          monitor: triple("monitor"),
          main_database: triple("main_database"),
          api_voluum_conversions: triple("api_voluum_conversions"),
          api_hlr_live_numbers: triple("api_hlr_live_numbers")
        } satisfies TableMetrics
      }).pipe(Effect.withSpan("Metrics.tableCounts"))
      const tableCounts = yield* Effect.cachedWithTTL(count, (exit) => (Exit.isSuccess(exit) ? METRICS_MAX_AGE : 0))
      return Metrics.of({ tableCounts })
    })
  )
}
