/**
 * Every setting of the product, read once from the environment and validated at start-up.
 *
 * - A malformed value (PORT=abc) or a missing required one stops start-up with an `InvalidConfig`
 *   naming the variable.
 * - Secrets are `Redacted`: they print as `<redacted>` in logs and errors.
 * - Each external integration (Voluum, Ongage, MessageWhiz, HLR, SQS, encryption) is either
 *   configured or "not configured" with the list of missing variables; operations of an
 *   unconfigured integration fail with `NotConfigured` (HTTP 503) and everything else works.
 *
 * The names are the original's (`docs/original-api.md` "Configuration") plus new ones;
 * `.env.example` documents each one.
 */
import { Context, Effect, Layer, Redacted, Result } from "effect"
import { InvalidConfig, NotConfigured } from "./Errors.ts"

export type Env = Readonly<Record<string, string | undefined>>

/** An integration's settings, or the variables it lacks. */
export type Integration<A> =
  | { readonly configured: true; readonly value: A }
  | { readonly configured: false; readonly missing: ReadonlyArray<string> }

export interface DatabaseSettings {
  /** postgres://… built from DATABASE_URL or DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD. */
  readonly url: Redacted.Redacted<string>
  readonly poolMax: number
  /** Statement and idle-transaction limits of the main pool (ms; 0: none); see `databaseTimeoutsFrom`. */
  readonly timeouts: DatabaseTimeouts
}

export interface DatabaseTimeouts {
  /** `statement_timeout` of an API process's connections. */
  readonly statementMs: number
  /** `statement_timeout` of a worker, scheduler or quick-start process's connections (jobs run long). */
  readonly jobStatementMs: number
  /** `idle_in_transaction_session_timeout` of an API process: a transaction left idle this long is ended. */
  readonly idleInTransactionMs: number
}

/** The limits when no variable sets them (a database URL handed over without settings). */
export const DEFAULT_DATABASE_TIMEOUTS: DatabaseTimeouts = {
  statementMs: 30_000,
  jobStatementMs: 0,
  idleInTransactionMs: 60_000
}

export interface VoluumSettings {
  readonly accessId: string
  readonly accessKey: Redacted.Redacted<string>
  readonly apiUrl: string
  readonly trafficSourceIds: ReadonlyArray<string>
  readonly costCurrency: string
  readonly requestsPerSecond: number
}

export interface OngageSettings {
  readonly listId: string
  readonly username: string
  readonly password: Redacted.Redacted<string>
  readonly accountCode: string
  readonly apiUrl: string
  readonly requestsPerMinute: number
}

export interface MmdSettings {
  readonly apiKey: Redacted.Redacted<string>
  readonly apiUrl: string
  readonly requestsPerSecond: number
  /** Currency of the daily cost push to Voluum (MMD_COST_CURRENCY, else VOLUUM_COST_CURRENCY, else USD as the original). */
  readonly costCurrency: string
  /** Seconds between heartbeat comments on the live SSE stream (MMD_STREAM_HEARTBEAT_SECONDS, 1–20, default 15). */
  readonly streamHeartbeatSeconds: number
}

export interface HlrSettings {
  readonly apiKey: Redacted.Redacted<string>
  readonly secret: Redacted.Redacted<string>
  readonly apiUrl: string
  readonly pollEverySeconds: number
  readonly pollMaxSeconds: number
  readonly cacheDays: number
}

export interface EncryptionSettings {
  /** URL-safe base64 of the raw AES key (16, 24 or 32 bytes). */
  readonly key: Redacted.Redacted<string>
  /** The key before the last rotation: decryption tries it after `key`. */
  readonly previousKey: Redacted.Redacted<string> | undefined
}

export interface SqsSettings {
  readonly queueUrl: string
  readonly region: string
  readonly endpoint: string | undefined
  readonly accessKeyId: string | undefined
  readonly secretAccessKey: Redacted.Redacted<string> | undefined
  readonly maxConcurrency: number
  readonly visibilityTimeoutSeconds: number
}

export interface StorageSettings {
  readonly kind: "local" | "s3"
  /** Local root folder (kind "local"). */
  readonly dir: string
  readonly s3Bucket: string | undefined
  readonly s3Endpoint: string | undefined
  readonly s3Prefix: string
  readonly s3Region: string
}

export interface ScheduleSettings {
  readonly enabled: boolean
  /** Cron expressions, UTC. */
  readonly conversions: string
  readonly reports: string
  readonly mmdDaily: string
  /** The conversions window starts this many minutes before the previous run's end. */
  readonly conversionsOverlapMinutes: number
}

/** The HTTP API's limits (docs/security.md). Durations in milliseconds; a rate of 0 turns its limit off. */
export interface HttpLimits {
  /** Largest JSON body of a non-upload route; larger is 413 before parsing. */
  readonly jsonBodyMaxBytes: number
  /** A request's handler must answer within this, else 503 with Retry-After (uploads and downloads excepted). */
  readonly requestDeadlineMs: number
  /** Node's `headersTimeout`: the whole header block must arrive within this. */
  readonly headersTimeoutMs: number
  /** Node's `requestTimeout`: the whole request, body included (an upload), must arrive within this. */
  readonly requestTimeoutMs: number
  /** Sockets open at once per process; more are refused by the server. */
  readonly maxConnections: number
  /** Requests per second each API key of a role may make (a burst of twice that); 0: no limit. */
  readonly rateLimitPerSecond: { readonly viewer: number; readonly operator: number; readonly admin: number }
}

export interface AppSettings {
  readonly port: number
  readonly http: HttpLimits
  readonly logLevel: "Trace" | "Debug" | "Info" | "Warn" | "Error" | "Fatal" | "None"
  readonly logFormat: "json" | "pretty" | "auto"
  readonly corsOrigins: ReadonlyArray<string>
  readonly uploadMaxBytes: number
  readonly workerConcurrency: number
  /** Absent when neither DATABASE_URL nor DB_HOST is set (the quick start then runs an embedded server). */
  readonly database: DatabaseSettings | undefined
  readonly storage: StorageSettings
  readonly voluum: Integration<VoluumSettings>
  readonly ongage: Integration<OngageSettings>
  readonly ongageCountries: ReadonlyArray<string>
  readonly ongageEmailDomain: string
  readonly mmd: Integration<MmdSettings>
  readonly hlr: Integration<HlrSettings>
  readonly encryption: Integration<EncryptionSettings>
  readonly sqs: Integration<SqsSettings>
  readonly classifierRulesFile: string | undefined
  readonly riskyOperatorsFile: string | undefined
  readonly schedules: ScheduleSettings
  readonly observability: ObservabilitySettings
}

/** Metrics and traces (docs/observability.md). */
export interface ObservabilitySettings {
  /** Prometheus metrics are kept and served (METRICS_ENABLED, default true). */
  readonly metricsEnabled: boolean
  /** The worker's, scheduler's and consumer's `GET /metrics` port (METRICS_PORT); no server when absent. */
  readonly metricsPort: number | undefined
  /** The interface `METRICS_PORT` listens on (METRICS_HOST, default 0.0.0.0). */
  readonly metricsHost: string
  /** OTLP/HTTP collector base URL (OTEL_EXPORTER_OTLP_ENDPOINT); no trace export when absent. */
  readonly otlpEndpoint: string | undefined
  /** OTEL_SERVICE_NAME: replaces the per-process name (`optimizer-api`, `optimizer-worker`, …). */
  readonly serviceName: string | undefined
}

/** Traffic sources the original hard-coded (`docs/original-api.md` "Voluum reports"); VOLUUM_TRAFFIC_SOURCE_IDS replaces them. */
export const DEFAULT_TRAFFIC_SOURCES: ReadonlyArray<string> = [
  "61a5a37e-cf24-46cd-8a2f-038fd9c8d5f8",
  "4b62c9a1-6c3e-434b-aa7a-fbdf721f7e89"
]
const LOG_LEVELS = ["Trace", "Debug", "Info", "Warn", "Error", "Fatal", "None"] as const

/** Collects every problem of the environment, so one start-up names them all. */
class Reader {
  readonly problems: Array<{ variable: string; problem: string }> = []
  readonly env: Env
  constructor(env: Env) {
    this.env = env
  }

  str(name: string): string | undefined {
    const v = this.env[name]
    if (v === undefined) return undefined
    const t = v.trim()
    return t === "" ? undefined : t
  }
  strOr(name: string, fallback: string): string {
    return this.str(name) ?? fallback
  }
  int(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const raw = this.str(name)
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push({ variable: name, problem: `must be a whole number from ${min} to ${max}, got "${raw}"` })
      return fallback
    }
    return n
  }
  bool(name: string, fallback: boolean): boolean {
    const raw = this.str(name)?.toLowerCase()
    if (raw === undefined) return fallback
    if (["1", "true", "yes", "on"].includes(raw)) return true
    if (["0", "false", "no", "off"].includes(raw)) return false
    this.problems.push({ variable: name, problem: `must be true or false, got "${raw}"` })
    return fallback
  }
  list(name: string, fallback: ReadonlyArray<string>): ReadonlyArray<string> {
    const raw = this.str(name)
    if (raw === undefined) return fallback
    return raw
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "")
  }
  url(name: string, fallback: string | undefined): string | undefined {
    const raw = this.str(name)
    if (raw === undefined) return fallback
    try {
      new URL(raw)
      return raw.replace(/\/+$/, "")
    } catch {
      this.problems.push({ variable: name, problem: `must be a URL, got "${raw}"` })
      return fallback
    }
  }
  oneOf<const T extends string>(name: string, values: ReadonlyArray<T>, fallback: T, normalise = (s: string) => s): T {
    const raw = this.str(name)
    if (raw === undefined) return fallback
    const found = values.find((v) => normalise(v) === normalise(raw))
    if (found === undefined) {
      this.problems.push({ variable: name, problem: `must be one of ${values.join(", ")}, got "${raw}"` })
      return fallback
    }
    return found
  }
  /** All of `required` present → the settings; some present → a problem (half-configured); none → not configured. */
  integration<A>(required: ReadonlyArray<string>, build: () => A): Integration<A> {
    const missing = required.filter((n) => this.str(n) === undefined)
    if (missing.length === 0) return { configured: true, value: build() }
    return { configured: false, missing }
  }
}

const databaseTimeoutsFrom = (r: Reader): DatabaseTimeouts => ({
  statementMs: r.int("DB_STATEMENT_TIMEOUT_SECONDS", DEFAULT_DATABASE_TIMEOUTS.statementMs / 1000, 0, 86_400) * 1000,
  jobStatementMs:
    r.int("DB_JOB_STATEMENT_TIMEOUT_SECONDS", DEFAULT_DATABASE_TIMEOUTS.jobStatementMs / 1000, 0, 86_400) * 1000,
  idleInTransactionMs:
    r.int("DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", DEFAULT_DATABASE_TIMEOUTS.idleInTransactionMs / 1000, 0, 86_400) *
    1000
})

const databaseFrom = (r: Reader): DatabaseSettings | undefined => {
  const poolMax = r.int("DB_POOL_MAX", 10, 1, 1000)
  const timeouts = databaseTimeoutsFrom(r)
  const url = r.str("DATABASE_URL")
  if (url !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(url)) {
      r.problems.push({ variable: "DATABASE_URL", problem: "must start with postgres:// or postgresql://" })
      return undefined
    }
    return { url: Redacted.make(url), poolMax, timeouts }
  }
  const host = r.str("DB_HOST")
  if (host === undefined) return undefined
  const name = r.str("DB_NAME")
  const user = r.str("DB_USER")
  if (name === undefined) r.problems.push({ variable: "DB_NAME", problem: "is required when DB_HOST is set" })
  if (user === undefined) r.problems.push({ variable: "DB_USER", problem: "is required when DB_HOST is set" })
  const port = r.int("DB_PORT", 5432, 1, 65535)
  const u = new URL("postgres://localhost")
  u.hostname = host
  u.port = String(port)
  u.pathname = `/${name ?? "postgres"}`
  u.username = user ?? "postgres"
  const password = r.str("DB_PASSWORD")
  if (password !== undefined) u.password = password
  return { url: Redacted.make(u.toString()), poolMax, timeouts }
}

const httpLimitsFrom = (r: Reader): HttpLimits => ({
  jsonBodyMaxBytes: r.int("JSON_BODY_MAX_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
  requestDeadlineMs: r.int("REQUEST_DEADLINE_SECONDS", 15, 1, 3600) * 1000,
  headersTimeoutMs: r.int("HTTP_HEADERS_TIMEOUT_SECONDS", 20, 1, 600) * 1000,
  requestTimeoutMs: r.int("HTTP_REQUEST_TIMEOUT_SECONDS", 300, 1, 86_400) * 1000,
  maxConnections: r.int("HTTP_MAX_CONNECTIONS", 2000, 1, 1_000_000),
  rateLimitPerSecond: {
    viewer: r.int("RATE_LIMIT_VIEWER", 100, 0, 1_000_000),
    operator: r.int("RATE_LIMIT_OPERATOR", 100, 0, 1_000_000),
    admin: r.int("RATE_LIMIT_ADMIN", 100, 0, 1_000_000)
  }
})

/** The HTTP limits when no variable sets them (for an app built without settings, e.g. in a test). */
export const defaultHttpLimits = (): HttpLimits => httpLimitsFrom(new Reader({}))

/** Pure: the settings of an environment, or every problem in it. */
export const parseSettings = (env: Env): Result.Result<AppSettings, InvalidConfig> => {
  const r = new Reader(env)
  const awsRegion = r.strOr("AWS_REGION", "us-east-1")
  const s3Bucket = r.str("S3_BUCKET")
  const settings: AppSettings = {
    port: r.int("PORT", 8000, 1, 65535),
    logLevel: r.oneOf("LOG_LEVEL", LOG_LEVELS, "Info", (s) => s.toLowerCase()),
    logFormat: r.oneOf("LOG_FORMAT", ["json", "pretty", "auto"] as const, "auto", (s) => s.toLowerCase()),
    corsOrigins: r.list("CORS_ORIGINS", []),
    http: httpLimitsFrom(r),
    uploadMaxBytes: r.int("UPLOAD_MAX_BYTES", 512 * 1024 * 1024, 1),
    workerConcurrency: r.int("WORKER_CONCURRENCY", 2, 1, 64),
    database: databaseFrom(r),
    storage: {
      kind: s3Bucket === undefined ? "local" : "s3",
      // UPLOAD_ROOT is the original's name for the same folder.
      dir: r.str("STORAGE_DIR") ?? r.str("UPLOAD_ROOT") ?? ".optimizer/files",
      s3Bucket,
      s3Endpoint: r.url("S3_ENDPOINT", undefined),
      s3Prefix: r.strOr("S3_PREFIX", "").replace(/^\/+|\/+$/g, ""),
      s3Region: awsRegion
    },
    voluum: r.integration(["VOLUUM_ACCESS_ID", "VOLUUM_ACCESS_KEY"], () => ({
      accessId: r.str("VOLUUM_ACCESS_ID")!,
      accessKey: Redacted.make(r.str("VOLUUM_ACCESS_KEY")!),
      apiUrl: r.url("VOLUUM_API_URL", "https://api.voluum.com")!,
      trafficSourceIds: r.list("VOLUUM_TRAFFIC_SOURCE_IDS", DEFAULT_TRAFFIC_SOURCES),
      costCurrency: r.strOr("VOLUUM_COST_CURRENCY", "USD").toUpperCase(),
      requestsPerSecond: r.int("VOLUUM_REQUESTS_PER_SECOND", 15, 1, 1000)
    })),
    ongage: r.integration(["LIST_ID", "X_USERNAME", "X_PASSWORD", "X_ACCOUNT_CODE"], () => ({
      listId: r.str("LIST_ID")!,
      username: r.str("X_USERNAME")!,
      password: Redacted.make(r.str("X_PASSWORD")!),
      accountCode: r.str("X_ACCOUNT_CODE")!,
      apiUrl: r.url("ONGAGE_API_URL", "https://api.ongage.net")!,
      requestsPerMinute: r.int("ONGAGE_REQUESTS_PER_MINUTE", 300, 1, 100_000)
    })),
    ongageCountries: r.list("ONGAGE_COUNTRIES", ["GB"]).map((c) => c.toUpperCase()),
    ongageEmailDomain: r.strOr("ONGAGE_EMAIL_DOMAIN", "yourmobile.com"),
    mmd: r.integration(["MMD_API_KEY"], () => ({
      apiKey: Redacted.make(r.str("MMD_API_KEY")!),
      apiUrl: r.url("MMD_API_URL", "https://sms.messagewhiz.com")!,
      requestsPerSecond: r.int("MMD_REQUESTS_PER_SECOND", 5, 1, 1000),
      costCurrency: r.strOr("MMD_COST_CURRENCY", r.strOr("VOLUUM_COST_CURRENCY", "USD")).toUpperCase(),
      streamHeartbeatSeconds: r.int("MMD_STREAM_HEARTBEAT_SECONDS", 15, 1, 20)
    })),
    hlr: r.integration(["HLRLOOKUP_APIKEY", "HLRLOOKUP_SECRET"], () => ({
      apiKey: Redacted.make(r.str("HLRLOOKUP_APIKEY")!),
      secret: Redacted.make(r.str("HLRLOOKUP_SECRET")!),
      apiUrl: r.url("HLR_API_URL", "https://batches.hlrlookup.com")!,
      pollEverySeconds: r.int("HLR_POLL_EVERY_SECONDS", 5, 1, 3600),
      pollMaxSeconds: r.int("HLR_POLL_MAX_SECONDS", 18_000, 1),
      cacheDays: r.int("HLR_CACHE_DAYS", 30, 0, 3650)
    })),
    encryption: r.integration(["AES_KEY"], () => {
      const previous = r.str("AES_KEY_PREVIOUS")
      return {
        key: Redacted.make(r.str("AES_KEY")!),
        previousKey: previous === undefined ? undefined : Redacted.make(previous)
      }
    }),
    sqs: r.integration(["SQS_QUEUE_URL"], () => {
      const secret = r.str("AWS_SECRET_ACCESS_KEY")
      return {
        queueUrl: r.url("SQS_QUEUE_URL", undefined)!,
        region: awsRegion,
        endpoint: r.url("SQS_ENDPOINT", undefined),
        accessKeyId: r.str("AWS_ACCESS_KEY_ID"),
        secretAccessKey: secret === undefined ? undefined : Redacted.make(secret),
        maxConcurrency: r.int("SQS_MAX_CONCURRENCY", 8, 1, 64),
        visibilityTimeoutSeconds: r.int("SQS_VISIBILITY_TIMEOUT", 60, 1, 43_200)
      }
    }),
    classifierRulesFile: r.str("CLASSIFIER_RULES_FILE"),
    riskyOperatorsFile: r.str("RISKY_OPERATORS_FILE"),
    schedules: {
      enabled: r.bool("SCHEDULER_ENABLED", true),
      conversions: r.strOr("SCHEDULE_CONVERSIONS", "*/5 * * * *"),
      reports: r.strOr("SCHEDULE_REPORTS", "15 0 * * *"),
      mmdDaily: r.strOr("SCHEDULE_MMD_DAILY", "0 5 * * *"),
      conversionsOverlapMinutes: r.int("CONVERSIONS_WINDOW_OVERLAP_MINUTES", 10, 0, 1440)
    },
    observability: {
      metricsEnabled: r.bool("METRICS_ENABLED", true),
      metricsPort: r.str("METRICS_PORT") === undefined ? undefined : r.int("METRICS_PORT", 0, 0, 65535),
      metricsHost: r.strOr("METRICS_HOST", "0.0.0.0"),
      otlpEndpoint: r.url("OTEL_EXPORTER_OTLP_ENDPOINT", undefined),
      serviceName: r.str("OTEL_SERVICE_NAME")
    }
  }
  if (r.problems.length > 0) {
    return Result.fail(
      new InvalidConfig({
        message: `invalid configuration: ${r.problems.map((p) => `${p.variable} ${p.problem}`).join("; ")}`,
        variables: r.problems.map((p) => p.variable)
      })
    )
  }
  return Result.succeed(settings)
}

/**
 * The settings the services read. `AppConfig.layerFrom(env)` parses an environment the caller
 * passes; `AppConfig.layerSettings(settings)` takes settings made by `optimizerSettings(options)`
 * or `fromEnv(env)` (platform/Options.ts). The SDK never reads `process.env` on its own.
 */
export class AppConfig extends Context.Service<AppConfig, AppSettings>()("@optimizer/core/platform/AppConfig") {
  static readonly layerFrom = (env: Env) =>
    Layer.effect(
      AppConfig,
      Effect.suspend(() => {
        const parsed = parseSettings(env)
        return Result.isSuccess(parsed) ? Effect.succeed(parsed.success) : Effect.fail(parsed.failure)
      })
    )
  static readonly layerSettings = (settings: AppSettings) => Layer.succeed(AppConfig, settings)
}

/** The settings of a configured integration, or `NotConfigured` naming what is missing (HTTP 503). */
export const requireIntegration = <A>(name: string, integration: Integration<A>): Effect.Effect<A, NotConfigured> =>
  integration.configured
    ? Effect.succeed(integration.value)
    : Effect.fail(
        new NotConfigured({
          integration: name,
          missing: integration.missing,
          message: `${name} is not configured: set ${integration.missing.join(", ")}`
        })
      )

/** The database settings, or `InvalidConfig` naming DATABASE_URL / DB_HOST (processes other than the quick start need them). */
export const requireDatabase = (settings: AppSettings): Effect.Effect<DatabaseSettings, InvalidConfig> =>
  settings.database !== undefined
    ? Effect.succeed(settings.database)
    : Effect.fail(
        new InvalidConfig({
          message: "no database configured: set DATABASE_URL (or DB_HOST, DB_NAME, DB_USER, DB_PASSWORD)",
          variables: ["DATABASE_URL", "DB_HOST"]
        })
      )
