/**
 * How a caller configures the SDK: a typed options object, turned into the `AppSettings` every
 * service reads (`AppConfig`). The library never reads `process.env` itself: a service that wants
 * the environment passes it explicitly through `fromEnv(process.env)` — what the HTTP, CLI and SQS
 * adapters do, with the variable names of `.env.example`.
 *
 *   const settings = optimizerSettings({ database: "postgres://…", encryption: { key: "…" } })
 *   const settings = fromEnv(process.env) // the adapters' variables
 *
 * Anything not given keeps the product's default (the same as an unset variable); an integration
 * not given is "not configured": its operations fail with `NotConfigured`, the rest works.
 */
import { Redacted, Result } from "effect"
import {
  DEFAULT_DATABASE_TIMEOUTS,
  DEFAULT_TRAFFIC_SOURCES,
  parseSettings,
  type AppSettings,
  type DatabaseTimeouts,
  type Env,
  type Integration
} from "./Config.ts"
import { InvalidConfig } from "./Errors.ts"

/** The PostgreSQL database: a URL, or a URL with pool settings. */
export interface DatabaseOptions {
  /** `postgres://user:password@host:port/database`. */
  readonly url: string
  /** Connections of the main pool (default 10). */
  readonly poolMax?: number
  /** Statement and idle-transaction limits in milliseconds (0: none); defaults in `DEFAULT_DATABASE_TIMEOUTS`. */
  readonly timeouts?: Partial<DatabaseTimeouts>
}

/** Where uploaded, cleaned and exported files are kept: a local folder, or an S3 bucket. */
export type StorageOptions =
  | { readonly dir: string }
  | {
      readonly s3Bucket: string
      readonly s3Endpoint?: string
      readonly s3Prefix?: string
      readonly s3Region?: string
    }

export interface OptimizerOptions {
  /** The database (required by every operation that stores or reads data; not by phone, classification, encryption). */
  readonly database?: string | DatabaseOptions
  /** AES keys: URL-safe base64 of 16, 24 or 32 raw bytes; `previousKey` still decrypts after a rotation. */
  readonly encryption?: { readonly key: string; readonly previousKey?: string }
  /** The file store (default: the local folder `.optimizer/files`, created when a file is first stored). */
  readonly storage?: StorageOptions
  readonly voluum?: {
    readonly accessId: string
    readonly accessKey: string
    readonly apiUrl?: string
    readonly trafficSourceIds?: ReadonlyArray<string>
    readonly costCurrency?: string
    readonly requestsPerSecond?: number
  }
  readonly ongage?: {
    readonly listId: string
    readonly username: string
    readonly password: string
    readonly accountCode: string
    readonly apiUrl?: string
    readonly requestsPerMinute?: number
    readonly countries?: ReadonlyArray<string>
    readonly emailDomain?: string
  }
  readonly messageWhiz?: {
    readonly apiKey: string
    readonly apiUrl?: string
    readonly requestsPerSecond?: number
    readonly costCurrency?: string
  }
  readonly hlr?: {
    readonly apiKey: string
    readonly secret: string
    readonly apiUrl?: string
    readonly pollEverySeconds?: number
    readonly pollMaxSeconds?: number
    readonly cacheDays?: number
  }
  /** A JSON rules file replacing the built-in classification rules. */
  readonly classifierRulesFile?: string
  /** A JSON file replacing the built-in risky-operators list. */
  readonly riskyOperatorsFile?: string
  /** Jobs of one queue run at once by this process's workers (default 2). */
  readonly workerConcurrency?: number
  /** The SDK's own log lines (JSON on stderr/stdout as the product logs); default "Warn". */
  readonly logLevel?: AppSettings["logLevel"]
  readonly logFormat?: AppSettings["logFormat"]
}

/** The product's defaults: the settings of an empty environment. */
export const defaultSettings = (): AppSettings => fromEnv({})

/**
 * The settings of an environment (the adapters' variables, `.env.example`); throws `InvalidConfig`
 * naming every bad variable. Only what is passed is read.
 */
export const fromEnv = (env: Env): AppSettings => {
  const parsed = parseSettings(env)
  if (Result.isFailure(parsed)) throw parsed.failure
  return parsed.success
}

const configured = <A>(value: A): Integration<A> => ({ configured: true, value })

/** Collects the problems of an options object, so one error names them all. */
const check = (problems: Array<string>, ok: boolean, problem: string) => {
  if (!ok) problems.push(problem)
}
const positiveInt = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n > 0)

/** The settings of an options object; throws `InvalidConfig` naming every bad option. */
export const optimizerSettings = (options: OptimizerOptions = {}): AppSettings => {
  const base = defaultSettings()
  const problems: Array<string> = []
  const db = typeof options.database === "string" ? { url: options.database } : options.database
  if (db !== undefined) {
    check(problems, /^postgres(ql)?:\/\//.test(db.url), "database.url must start with postgres:// or postgresql://")
    check(problems, positiveInt(db.poolMax), "database.poolMax must be a whole number above 0")
  }
  check(problems, options.encryption === undefined || options.encryption.key !== "", "encryption.key must not be empty")
  check(problems, positiveInt(options.workerConcurrency), "workerConcurrency must be a whole number above 0")
  const storage = options.storage
  if (storage !== undefined) {
    check(
      problems,
      "dir" in storage ? storage.dir !== "" : storage.s3Bucket !== "",
      "storage needs a dir or an s3Bucket"
    )
  }
  if (problems.length > 0) {
    throw new InvalidConfig({
      message: `invalid options: ${problems.join("; ")}`,
      variables: problems.map((p) => p.split(" ")[0]!)
    })
  }
  const { voluum, ongage, messageWhiz: mmd, hlr, encryption } = options
  return {
    ...base,
    // A library logs warnings and errors unless asked for more.
    logLevel: options.logLevel ?? "Warn",
    ...(options.logFormat === undefined ? {} : { logFormat: options.logFormat }),
    ...(options.workerConcurrency === undefined ? {} : { workerConcurrency: options.workerConcurrency }),
    database:
      db === undefined
        ? undefined
        : {
            url: Redacted.make(db.url),
            poolMax: db.poolMax ?? 10,
            timeouts: { ...DEFAULT_DATABASE_TIMEOUTS, ...db.timeouts }
          },
    storage:
      storage === undefined
        ? base.storage
        : "dir" in storage
          ? { ...base.storage, kind: "local", dir: storage.dir }
          : {
              kind: "s3",
              dir: base.storage.dir,
              s3Bucket: storage.s3Bucket,
              s3Endpoint: storage.s3Endpoint,
              s3Prefix: (storage.s3Prefix ?? "").replace(/^\/+|\/+$/g, ""),
              s3Region: storage.s3Region ?? base.storage.s3Region
            },
    encryption:
      encryption === undefined
        ? base.encryption
        : configured({
            key: Redacted.make(encryption.key),
            previousKey: encryption.previousKey === undefined ? undefined : Redacted.make(encryption.previousKey)
          }),
    voluum:
      voluum === undefined
        ? base.voluum
        : configured({
            accessId: voluum.accessId,
            accessKey: Redacted.make(voluum.accessKey),
            apiUrl: (voluum.apiUrl ?? "https://api.voluum.com").replace(/\/+$/, ""),
            trafficSourceIds: voluum.trafficSourceIds ?? DEFAULT_TRAFFIC_SOURCES,
            costCurrency: (voluum.costCurrency ?? "USD").toUpperCase(),
            requestsPerSecond: voluum.requestsPerSecond ?? 15
          }),
    ongage:
      ongage === undefined
        ? base.ongage
        : configured({
            listId: ongage.listId,
            username: ongage.username,
            password: Redacted.make(ongage.password),
            accountCode: ongage.accountCode,
            apiUrl: (ongage.apiUrl ?? "https://api.ongage.net").replace(/\/+$/, ""),
            requestsPerMinute: ongage.requestsPerMinute ?? 300
          }),
    ongageCountries: ongage?.countries?.map((c) => c.toUpperCase()) ?? base.ongageCountries,
    ongageEmailDomain: ongage?.emailDomain ?? base.ongageEmailDomain,
    mmd:
      mmd === undefined
        ? base.mmd
        : configured({
            apiKey: Redacted.make(mmd.apiKey),
            apiUrl: (mmd.apiUrl ?? "https://sms.messagewhiz.com").replace(/\/+$/, ""),
            requestsPerSecond: mmd.requestsPerSecond ?? 5,
            costCurrency: (mmd.costCurrency ?? voluum?.costCurrency ?? "USD").toUpperCase(),
            streamHeartbeatSeconds: 15
          }),
    hlr:
      hlr === undefined
        ? base.hlr
        : configured({
            apiKey: Redacted.make(hlr.apiKey),
            secret: Redacted.make(hlr.secret),
            apiUrl: (hlr.apiUrl ?? "https://batches.hlrlookup.com").replace(/\/+$/, ""),
            pollEverySeconds: hlr.pollEverySeconds ?? 5,
            pollMaxSeconds: hlr.pollMaxSeconds ?? 18_000,
            cacheDays: hlr.cacheDays ?? 30
          }),
    classifierRulesFile: options.classifierRulesFile ?? base.classifierRulesFile,
    riskyOperatorsFile: options.riskyOperatorsFile ?? base.riskyOperatorsFile,
    // A library does not run the product's cron schedules by itself.
    schedules: { ...base.schedules, enabled: false }
  }
}
