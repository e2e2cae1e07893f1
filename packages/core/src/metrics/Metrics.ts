/**
 * `/get-metrics` (ORIGINAL.md §1.3 item 6): for six tables, `[total, last_24_hours, last_7_days]`
 * counted on each table's own timestamp column, in one round trip.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { toDatabaseError } from "../platform/Database.ts"
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
      const tableCounts = Effect.gen(function* () {
        const rows = yield* sql
          .unsafe<{ name: keyof TableMetrics; total: bigint; day: bigint; week: bigint }>(query)
          .pipe(Effect.mapError(toDatabaseError))
        // One row per table of COUNTED (a UNION ALL of counts): none is missing.
        const byName = new Map<string, MetricTriple>(
          rows.map((r) => [r.name, [Number(r.total), Number(r.day), Number(r.week)]])
        )
        const triple = (table: keyof TableMetrics): MetricTriple => byName.get(table) ?? [0, 0, 0]
        return {
          blacklist: triple("blacklist"),
          whitelist: triple("whitelist"),
          monitor: triple("monitor"),
          main_database: triple("main_database"),
          api_voluum_conversions: triple("api_voluum_conversions"),
          api_hlr_live_numbers: triple("api_hlr_live_numbers")
        } satisfies TableMetrics
      }).pipe(Effect.withSpan("Metrics.tableCounts"))
      return Metrics.of({ tableCounts })
    })
  )
}
