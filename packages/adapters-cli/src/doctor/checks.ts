/**
 * The checks of `npx optimizer doctor`: each says ok, warn or fail, what it found, and — when not
 * ok — the fix. They run without the app's services (the point is to diagnose a machine where
 * those cannot start): the settings are parsed here, the database is reached with a plain `pg`
 * client, the file store through the core's FileStore.
 */
import { randomUUID } from "node:crypto"
import { Cause, Effect, Layer, Redacted, Result } from "effect"
import pg from "pg"
import { makeSqsClient, SqsQueue } from "@optimizer/adapters-sqs"
import {
  AppConfig,
  FileStore,
  HlrClient,
  loadMigrations,
  MessageWhizClient,
  parseSettings,
  SCHEDULE_NAMES,
  VoluumClient,
  type AppSettings,
  type Env
} from "@optimizer/core"

export type CheckStatus = "ok" | "warn" | "fail"

export interface Check {
  readonly check: string
  readonly status: CheckStatus
  readonly message: string
  /** What to do about it (absent when ok). */
  readonly fix?: string
}

const ok = (check: string, message: string): Check => ({ check, status: "ok", message })
const warn = (check: string, message: string, fix: string): Check => ({ check, status: "warn", message, fix })
const fail = (check: string, message: string, fix: string): Check => ({ check, status: "fail", message, fix })

const messageOf = (cause: unknown): string => {
  const e = cause as { message?: unknown; code?: unknown }
  const text = typeof e?.message === "string" && e.message !== "" ? e.message : String(cause)
  return typeof e?.code === "string" && !text.includes(e.code) ? `${text} (${e.code})` : text
}

const MIN_NODE: readonly [number, number] = [22, 19]

export const nodeCheck = (version: string = process.versions.node): Check => {
  const [major = 0, minor = 0] = version.split(".").map(Number)
  if (major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1])) {
    return ok("node", `Node.js v${version}`)
  }
  return fail(
    "node",
    `Node.js v${version} is older than ${MIN_NODE.join(".")}`,
    "install Node 24 LTS (bash scripts/ensure-node.sh)"
  )
}

/** Every variable parsed: the settings, or the problems naming their variables. */
export const configurationCheck = (env: Env): { readonly check: Check; readonly settings: AppSettings | undefined } => {
  const parsed = parseSettings(env)
  if (Result.isSuccess(parsed)) {
    return { check: ok("configuration", "every variable parsed"), settings: parsed.success }
  }
  return {
    check: fail(
      "configuration",
      parsed.failure.message,
      `correct ${parsed.failure.variables.join(", ") || "the variables named"} in .env or the environment (.env.example lists each one)`
    ),
    settings: undefined
  }
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

/** A probe file written, read back and removed through the core's FileStore. */
export const fileStoreCheck = (settings: AppSettings): Effect.Effect<Check> => {
  const where =
    settings.storage.kind === "s3"
      ? `S3 bucket ${settings.storage.s3Bucket}${settings.storage.s3Prefix ? `/${settings.storage.s3Prefix}` : ""}`
      : `STORAGE_DIR=${settings.storage.dir}`
  const fix =
    settings.storage.kind === "s3"
      ? "check S3_BUCKET, S3_ENDPOINT, AWS_REGION and the credentials' write permission on the bucket"
      : "make STORAGE_DIR a directory this user can write (or point STORAGE_DIR elsewhere)"
  // At the store's root: a folder for it would be left behind (a local store keeps empty folders).
  const key = `optimizer-doctor-probe-${randomUUID()}`
  return Effect.gen(function* () {
    const files = yield* FileStore
    yield* files.put(key, "optimizer doctor\n")
    const text = yield* files.readText(key)
    yield* files.delete(key)
    if (text !== "optimizer doctor\n") return fail("file store", `${where}: a file read back differs`, fix)
    return ok("file store", `${where}: writable`)
  }).pipe(
    Effect.provide(FileStore.layer.pipe(Layer.provide(Layer.succeed(AppConfig, settings)))),
    Effect.catchCause((cause) =>
      Effect.succeed(fail("file store", `${where}: not writable: ${messageOf(causeError(cause))}`, fix))
    )
  )
}

/** The error (or defect) a failed check's cause holds. */
const causeError = (cause: Cause.Cause<unknown>): unknown => Cause.squash(cause)

const INTEGRATIONS = [
  ["Voluum", "voluum", "the Voluum syncs, smart cleaning and REG search"],
  ["Ongage", "ongage", "the converters' push and the Ongage CSV jobs"],
  ["MessageWhiz", "mmd", "the MessageWhiz snapshots, costs and live stream"],
  ["HLR (hlrlookup.com)", "hlr", "HLR lookups"],
  ["encryption (AES_KEY)", "encryption", "tokens, encryption files, find-records by token"],
  ["SQS live events", "sqs", "the live-events consumer (npx optimizer consume)"]
] as const

/** Each integration configured or not (not configured: a warning, its endpoints answer 503). */
export const integrationChecks = (settings: AppSettings): ReadonlyArray<Check> =>
  INTEGRATIONS.map(([name, key, what]) => {
    const integration = settings[key]
    return integration.configured
      ? ok(name, "configured")
      : warn(name, `not configured: ${what} unavailable`, `set ${integration.missing.join(", ")} to use it`)
  })

const ONLINE_TIMEOUT = "20 seconds"

/**
 * With `--online`: the integrations reached with their credentials, by a call that changes nothing
 * (Voluum: its campaigns of the last hour; MessageWhiz: its links). The others have no such call.
 */
/**
 * One integration reached with its credentials: `probe` (absent when it is not configured) within
 * ONLINE_TIMEOUT gives the check `found` makes of its answer; any failure is a fail naming `fix`.
 */
const reach = <A, E>(
  name: string,
  probe: Effect.Effect<A, E> | undefined,
  found: (answer: A) => Check,
  failed: string,
  fix: string
): Effect.Effect<Check> =>
  probe === undefined
    ? Effect.succeed(ok(name, "not configured: not checked"))
    : probe.pipe(
        Effect.timeout(ONLINE_TIMEOUT),
        Effect.map(found),
        Effect.catchCause((cause) => Effect.succeed(fail(name, `${failed}: ${messageOf(causeError(cause))}`, fix)))
      )

export const onlineChecks = (settings: AppSettings): Effect.Effect<ReadonlyArray<Check>> => {
  const config = Layer.succeed(AppConfig, settings)
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000
  const voluum = reach(
    "Voluum online",
    settings.voluum.configured
      ? VoluumClient.use((v) =>
          v.campaigns({ from: new Date(hour - 3_600_000).toISOString(), to: new Date(hour).toISOString() })
        ).pipe(Effect.provide(VoluumClient.layer.pipe(Layer.provide(config))))
      : undefined,
    (campaigns) => ok("Voluum online", `signed in; ${campaigns.size} campaigns with traffic in the last hour`),
    "could not sign in or read",
    "check VOLUUM_ACCESS_ID / VOLUUM_ACCESS_KEY and that VOLUUM_API_URL is reachable from here"
  )
  const mmd = reach(
    "MessageWhiz online",
    settings.mmd.configured
      ? MessageWhizClient.use((m) => m.links()).pipe(
          Effect.provide(MessageWhizClient.layer.pipe(Layer.provide(config)))
        )
      : undefined,
    (links) => ok("MessageWhiz online", `key accepted; ${links.size} links`),
    "could not read",
    "check MMD_API_KEY and that MMD_API_URL is reachable from here"
  )
  const hlr = reach(
    "HLR (hlrlookup.com) online",
    settings.hlr.configured
      ? HlrClient.use((h) => h.batchCount).pipe(
          Effect.provide(HlrClient.layerWith({ maxRetries: 1 }).pipe(Layer.provide(config)))
        )
      : undefined,
    (total) => ok("HLR (hlrlookup.com) online", `key and secret accepted; ${total} batches`),
    "could not read the batches",
    "check HLRLOOKUP_APIKEY / HLRLOOKUP_SECRET and that HLR_API_URL is reachable from here"
  )
  const sqsSettings = settings.sqs.configured ? settings.sqs.value : undefined
  const sqs = reach(
    "SQS live events online",
    sqsSettings === undefined
      ? undefined
      : Effect.acquireUseRelease(
          Effect.sync(() => makeSqsClient(sqsSettings)),
          (client) => SqsQueue.fromClient(client, sqsSettings.queueUrl).hasDeadLetterQueue,
          (client) => Effect.sync(() => client.destroy())
        ),
    (dlq) =>
      dlq
        ? ok("SQS live events online", "queue attributes read; it has a dead-letter queue")
        : warn(
            "SQS live events online",
            "queue attributes read; it has no dead-letter queue: a message that never stores is received forever",
            "give the queue a dead-letter queue (a RedrivePolicy, e.g. maxReceiveCount 5: docs/live-events.md)"
          ),
    "could not read the queue",
    "check SQS_QUEUE_URL, the region and the AWS credentials (or SQS_ENDPOINT for an emulator)"
  )
  // Ongage has no call that only reads without naming a contact: its first push shows it.
  const ongage = ok(
    "Ongage online",
    settings.ongage.configured
      ? "not checked: Ongage has no call that reads without a contact (the first push shows it)"
      : "not configured: not checked"
  )
  return Effect.all([voluum, mmd, hlr, sqs]).pipe(Effect.map((checks) => [...checks, ongage]))
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

/** The database's URL without its password, for messages. */
export const describeUrl = (url: Redacted.Redacted<string> | string): string => {
  const raw = typeof url === "string" ? url : Redacted.value(url)
  try {
    const u = new URL(raw)
    return `${u.hostname}:${u.port || "5432"}${u.pathname}`
  } catch {
    return "(unparsable URL)"
  }
}
