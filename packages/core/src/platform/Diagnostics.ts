/**
 * What `npx optimizer doctor` reads from the database, as checks (ok, warn or fail, what was found
 * and — when not ok — the fix): reachable, migrated to this version, and the processes and queues
 * pg-boss and `job_status` record. A plain `pg` client, not the app's services: the point is to
 * diagnose a machine where those cannot start.
 */
import pg from "pg"
import { SCHEDULE_NAMES } from "../scheduler/Scheduler.ts"
import type { AppSettings } from "./Config.ts"
import { loadMigrations } from "./Migrations.ts"

export type CheckStatus = "ok" | "warn" | "fail"

export interface Check {
  readonly check: string
  readonly status: CheckStatus
  readonly message: string
  /** What to do about it (absent when ok). */
  readonly fix?: string
}

export const ok = (check: string, message: string): Check => ({ check, status: "ok", message })
export const warn = (check: string, message: string, fix: string): Check => ({ check, status: "warn", message, fix })
export const fail = (check: string, message: string, fix: string): Check => ({ check, status: "fail", message, fix })

/** An error's message, with its code when the message does not hold it. */
export const messageOf = (cause: unknown): string => {
  const e = cause as { message?: unknown; code?: unknown }
  const text = typeof e?.message === "string" && e.message !== "" ? e.message : String(cause)
  return typeof e?.code === "string" && !text.includes(e.code) ? `${text} (${e.code})` : text
}

export interface DatabaseFacts {
  readonly checks: ReadonlyArray<Check>
  /** Connected and migrated: the checks that read the tables can run. */
  readonly client: pg.Client | undefined
}

/** Reachable, and migrated to this version's `sql/` (none missing, none changed, none unknown). */
export const databaseChecks = async (url: string, where: string): Promise<DatabaseFacts> => {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 5_000,
    application_name: "optimizer-doctor"
  })
  client.on("error", () => undefined)
  try {
    await client.connect()
    await client.query("SET statement_timeout = 10000")
  } catch (cause) {
    await client.end().catch(() => undefined)
    return {
      checks: [
        fail(
          "database",
          `cannot reach ${where}: ${messageOf(cause)}`,
          "check DATABASE_URL (host, port, user, password, database name) and that PostgreSQL is running and accepts connections from here"
        )
      ],
      client: undefined
    }
  }
  const checks: Array<Check> = [ok("database", `reachable: ${where}`)]
  const expected = loadMigrations()
  const table = await client.query<{ exists: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS exists")
  if (!table.rows[0]?.exists) {
    checks.push(
      fail(
        "migrations",
        `not migrated: no schema_migrations table (this version has ${expected.length} migrations)`,
        "npx optimizer migrate"
      )
    )
    return { checks, client }
  }
  const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
    "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
  )
  const recorded = new Map(rows.map((r) => [r.version, r]))
  const missing = expected.filter((m) => !recorded.has(m.version)).map((m) => `${m.version}_${m.name}`)
  const changed = expected
    .filter((m) => recorded.has(m.version) && recorded.get(m.version)!.checksum !== m.checksum)
    .map((m) => `${m.version}_${m.name}`)
  const known = new Set(expected.map((m) => m.version))
  const newer = rows.filter((r) => !known.has(r.version)).map((r) => `${r.version}_${r.name}`)
  if (missing.length > 0) {
    checks.push(
      fail("migrations", `${missing.length} migrations not applied: ${missing.join(", ")}`, "npx optimizer migrate")
    )
  } else if (changed.length > 0) {
    checks.push(
      fail(
        "migrations",
        `applied migrations differ from this version's files: ${changed.join(", ")}`,
        "restore those sql/ files as they were applied (a change goes in a new migration)"
      )
    )
  } else if (newer.length > 0) {
    checks.push(
      warn(
        "migrations",
        `the database has migrations this version does not know: ${newer.join(", ")}`,
        "run the version that applied them (this one is older than the database)"
      )
    )
  } else {
    checks.push(ok("migrations", `all ${expected.length} migrations applied`))
  }
  return { checks, client: missing.length > 0 ? undefined : client }
}

const RECENT_SECONDS = 120

interface InstanceRow {
  readonly name: string | null
  readonly schedule: boolean
  readonly workers: number
  readonly seen_seconds_ago: number
}

/** The processes pg-boss saw lately (`pgboss.instance`: each process's heartbeat), the scheduler's and the queues. */
export const processChecks = async (client: pg.Client, settings: AppSettings): Promise<ReadonlyArray<Check>> => {
  const checks: Array<Check> = []
  const hasBoss = await client.query<{ exists: boolean }>("SELECT to_regclass('pgboss.instance') IS NOT NULL AS exists")
  const instances: ReadonlyArray<InstanceRow> = hasBoss.rows[0]?.exists
    ? (
        await client.query<InstanceRow>(
          `SELECT name, schedule, jsonb_array_length(workers)::int AS workers,
                  extract(epoch FROM now() - heartbeat_on)::float8 AS seen_seconds_ago
           FROM pgboss.instance
           WHERE stopped_on IS NULL AND heartbeat_on > now() - make_interval(secs => $1)`,
          [RECENT_SECONDS]
        )
      ).rows
    : []

  const active = SCHEDULE_NAMES.filter((name) => {
    const integration = name === "mmd-daily" ? settings.mmd : settings.voluum
    return settings.schedules.enabled && integration.configured
  })
  const schedulers = instances.filter((i) => i.schedule)
  if (!settings.schedules.enabled) {
    checks.push(ok("scheduler", "disabled (SCHEDULER_ENABLED=false)"))
  } else if (active.length === 0) {
    checks.push(
      warn(
        "scheduler",
        "no schedule is active: Voluum and MessageWhiz are not configured",
        "configure them (see the integrations above) for the syncs and the daily MessageWhiz run"
      )
    )
  } else if (schedulers.length === 0) {
    checks.push(
      warn(
        "scheduler",
        `no scheduler process seen in the last ${RECENT_SECONDS} s (schedules: ${active.join(", ")})`,
        "run npx optimizer scheduler (or npx optimizer start)"
      )
    )
  } else {
    checks.push(ok("scheduler", `${schedulers.length} scheduler processes active; schedules: ${active.join(", ")}`))
  }

  // A worker process (`optimizer worker`) or the quick start (`all`); `workers` lists a process's
  // job handlers once pg-boss has refreshed it.
  const workers = instances.filter((i) => i.name === "worker" || i.name === "all" || (i.workers > 0 && !i.schedule))
  checks.push(
    workers.length === 0
      ? warn(
          "workers",
          `no worker process seen in the last ${RECENT_SECONDS} s: queued jobs wait`,
          "run npx optimizer worker (or npx optimizer start)"
        )
      : ok(
          "workers",
          `${workers.length} processes working jobs, last seen ${Math.round(Math.max(...workers.map((w) => w.seen_seconds_ago)))} s ago`
        )
  )

  const hasStatus = await client.query<{ exists: boolean }>("SELECT to_regclass('job_status') IS NOT NULL AS exists")
  if (hasStatus.rows[0]?.exists) {
    const { rows } = await client.query<{ queue: string; queued: number; running: number; oldest: number | null }>(
      `SELECT queue,
              count(*) FILTER (WHERE state = 'queued')::int AS queued,
              count(*) FILTER (WHERE state = 'running')::int AS running,
              extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'queued'))::float8 AS oldest
       FROM job_status WHERE state IN ('queued', 'running') GROUP BY queue ORDER BY queue`
    )
    const text = rows.map((r) => `${r.queue} ${r.queued} queued / ${r.running} running`).join(", ")
    const stale = rows.filter((r) => r.oldest !== null && r.oldest > 600)
    checks.push(
      rows.length === 0
        ? ok("queues", "no job queued or running")
        : stale.length > 0
          ? warn(
              "queues",
              `${text}; waiting over 10 min: ${stale.map((r) => r.queue).join(", ")}`,
              "check that workers run (npx optimizer worker) and are not stuck (npx optimizer jobs list --state running)"
            )
          : ok("queues", text)
    )
  }
  return checks
}
