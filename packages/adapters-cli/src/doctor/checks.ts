/**
 * The checks of `npx optimizer doctor` that are not the database's: each says ok, warn or fail,
 * what it found, and — when not ok — the fix. They run without the app's services (the point is to
 * diagnose a machine where those cannot start): the settings are parsed here, the file store is
 * probed through the core's FileStore, the integrations through their clients. The database's
 * checks (reachable, migrated, processes, queues) are core's `platform/Diagnostics.ts`.
 */
import { randomUUID } from "node:crypto"
import { Cause, Effect, Layer, Redacted, Result } from "effect"
import { makeSqsClient, SqsQueue } from "@optimizer/adapters-sqs"
import {
  AppConfig,
  fail,
  FileStore,
  HlrClient,
  MessageWhizClient,
  messageOf,
  ok,
  parseSettings,
  VoluumClient,
  warn,
  type AppSettings,
  type Check,
  type Env
} from "@optimizer/core"

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
