/**
 * The metrics read from the database when `/metrics` is rendered (Observability.ts `addSampler`):
 * jobs queued and running and the oldest queued job's age (`job_status`), list sizes (PostgreSQL's
 * row estimates: no table scan), the product's connections by state (`pg_stat_activity`), and this
 * process's bulk pool. Registered for the life of the layer.
 */
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { PgBulk } from "./Database.ts"
import { addSampler, metrics } from "./Observability.ts"

/** The list tables whose sizes are exported, by their label. */
const LIST_TABLES = ["blacklist", "whitelist", "monitor", "main_database"] as const

/** Sets a gauge family's series from a sample; series of the previous sample that are gone go to 0. */
const gaugeSetter = (family: { set: (values: ReadonlyArray<string>, value: number) => void }) => {
  let previous = new Map<string, ReadonlyArray<string>>()
  return (rows: ReadonlyArray<{ readonly labels: ReadonlyArray<string>; readonly value: number }>) => {
    const current = new Map<string, ReadonlyArray<string>>()
    for (const row of rows) {
      family.set(row.labels, row.value)
      current.set(row.labels.join("\u0000"), row.labels)
    }
    for (const [key, labels] of previous) if (!current.has(key)) family.set(labels, 0)
    previous = current
  }
}

export const DatabaseMetricsLayer = Layer.effectDiscard(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const bulk = yield* PgBulk
    const context = yield* Effect.context<never>()
    // Not traced: a scrape every few seconds would fill the traces with these statements.
    const run = <A>(effect: Effect.Effect<A, unknown>) =>
      Effect.runPromiseWith(context)(Effect.withTracerEnabled(effect, false))
    const jobsInState = gaugeSetter(metrics.jobsInState)
    const oldestQueued = gaugeSetter(metrics.jobOldestQueuedAge)
    const connections = gaugeSetter(metrics.dbConnections)

    const sample = async () => {
      const pool = bulk.pool
      metrics.dbPoolConnections.set(["bulk", "in_use"], pool.totalCount - pool.idleCount)
      metrics.dbPoolConnections.set(["bulk", "idle"], pool.idleCount)
      metrics.dbPoolWaiting.set(["bulk"], pool.waitingCount)
      await Promise.allSettled([
        run(
          sql<{ queue: string; state: string; n: bigint; oldest: number | null }>`
            SELECT queue, state, count(*) AS n,
                   EXTRACT(EPOCH FROM now() - min(created_at)) FILTER (WHERE state = 'queued') AS oldest
            FROM job_status WHERE state IN ('queued', 'running') GROUP BY queue, state`
        ).then((rows) => {
          jobsInState(rows.map((r) => ({ labels: [r.queue, r.state], value: Number(r.n) })))
          oldestQueued(
            rows.filter((r) => r.state === "queued").map((r) => ({ labels: [r.queue], value: Number(r.oldest ?? 0) }))
          )
        }),
        run(
          sql<{ name: string; n: number | null }>`
            SELECT t.name, GREATEST(c.reltuples, 0)::float8 AS n
            FROM unnest(${LIST_TABLES as unknown as Array<string>}::text[]) AS t(name)
            LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)`
        ).then((rows) => {
          for (const r of rows) metrics.listRows.set([r.name], Number(r.n ?? 0))
        }),
        run(
          sql<{ state: string; n: bigint }>`
            SELECT replace(coalesce(state, 'unknown'), ' ', '_') AS state, count(*) AS n
            FROM pg_stat_activity
            WHERE datname = current_database() AND application_name LIKE 'optimizer%'
            GROUP BY 1`
        ).then((rows) => connections(rows.map((r) => ({ labels: [r.state], value: Number(r.n) }))))
      ])
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => addSampler(sample)),
      (remove) => Effect.sync(remove)
    )
  })
)
