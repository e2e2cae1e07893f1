/**
 * `@optimizer/core/promise`: the SDK for services that do not use Effect. One object, configured
 * by its caller (the library reads no environment variable), whose methods return Promises and
 * reject with the SDK's typed error classes (`error instanceof NotFound`, `error._tag`).
 *
 *   import { createOptimizer } from "@optimizer/core/promise"
 *   await using optimizer = createOptimizer({ database: "postgres://…", encryption: { key } })
 *   await optimizer.migrate()
 *   await optimizer.lists.add(["+44 7700 900123"], { list: "blacklist", reason: "COMPLAINT", source: "crm" })
 *
 * Nothing is built when it is created: phone numbers need nothing, encryption and classification
 * build their service on first use, a list or find-records call opens the database pool, and only
 * jobs, cleaning, exports and the Voluum syncs start the jobs engine (pg-boss's schema) and the file
 * store. `close()` (or `await using`) releases whatever was built. The Effect API (the root entry
 * and the domain entries) stays the primary one: each method here is a thin call of a service.
 */
import { createReadStream, createWriteStream } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Effect, Layer, ManagedRuntime, Result, Stream } from "effect"
import type { AppServices } from "./AppLayer.ts"
import { Classifier, type Classification, type ClassificationRule } from "./classification/Classifier.ts"
import type { PipelineResult } from "./cleaning/CleaningPipeline.ts"
import type { LocalCleaningOptions } from "./cleaning/Cleaning.ts"
import { Encryption, type TokenError } from "./encryption/Encryption.ts"
import type { ExportDownload, ExportRecord, ExportStarted } from "./exports/Exports.ts"
import type { MoveResult } from "./lists/Lists.ts"
import type {
  ImportCounts,
  ListCounts,
  ListExplanation,
  ListName,
  RawListRow,
  RemoveResult
} from "./lists/ListSchemas.ts"
import { countryOfPhone, normalizePhone, type NormalizedPhone } from "./phone/PhoneNumber.ts"
import { AppConfig, type AppSettings } from "./platform/Config.ts"
import { NotFound, ValidationError } from "./platform/Errors.ts"
import type { JobInfo } from "./platform/jobs/JobStatusRows.ts"
import type { MigrationResult } from "./platform/Migrations.ts"
import { optimizerSettings, type OptimizerOptions } from "./platform/Options.ts"
import type { FindOptions, FoundRecords } from "./records/Records.ts"
import type { DatabaseServices, Tiers } from "./promise/Tiers.ts"
import type { ConversionsSyncResult } from "./voluum/ConversionsSync.ts"
import type { ReportsSyncResult, SyncWindow } from "./voluum/ReportsSync.ts"
import type { SyncOutcome } from "./voluum/VoluumJobs.ts"

export type { OptimizerOptions } from "./platform/Options.ts"

/** Options of a list write. */
export interface ListWriteOptions {
  /** The list (default "blacklist"). */
  readonly list?: ListName
  /** Why (stored on the blacklist and monitor; kept in the audit for the whitelist). */
  readonly reason?: string
  /** Where the numbers came from (e.g. "crm"). */
  readonly source?: string
  /** ISO2 country of national numbers (`07700 900123` with "GB"). */
  readonly defaultCountry?: string
  /** Who made the change, for the audit (default "sdk"). */
  readonly actor?: string
}

/** A token that could not be decrypted, in `decryptMany`'s answer. */
export type Decrypted =
  { readonly ok: true; readonly value: string } | { readonly ok: false; readonly error: TokenError }

export interface Optimizer extends AsyncDisposable {
  /**
   * Applies the package's own migrations (its `sql/`, never the host's) to the configured database;
   * safe to run concurrently and repeatedly. Tables are created where the HTTP/CLI deployment
   * expects them (the original's names, schema `public`). Rejects with `InvalidConfig` without a database.
   */
  readonly migrate: () => Promise<MigrationResult>
  readonly phone: {
    /** The canonical key of a number in any format (`{ ok: true, e164, country }`), or `{ ok: false, reason }`. */
    readonly normalize: (phone: string, defaultCountry?: string) => NormalizedPhone
    /** The ISO2 country of a number, or undefined when it is not a valid number. */
    readonly country: (phone: string, defaultCountry?: string) => string | undefined
    /** Whether the number is a valid phone number. */
    readonly isValid: (phone: string, defaultCountry?: string) => boolean
  }
  readonly classification: {
    /** The category of a device's OS version (`{ category, rule }`); the configured rules file, else the built-in rules. */
    readonly classify: (osVersion: string | null | undefined) => Promise<Classification>
    /** The classification and the rule that decided it (`rule` undefined for a built-in decision such as `NO_RULE_MATCHED`). */
    readonly explain: (
      osVersion: string | null | undefined
    ) => Promise<Classification & { readonly definition: ClassificationRule | undefined }>
  }
  readonly encryption: {
    /** The token of a value (AES-GCM, the original's format). Rejects with `NotConfigured` without a key. */
    readonly encrypt: (value: string) => Promise<string>
    /** Tokens of many values, in order. */
    readonly encryptMany: (values: ReadonlyArray<string>) => Promise<ReadonlyArray<string>>
    /** The value of a token (the current key, then the previous one). Rejects with `InvalidToken` / `DecryptionFailed`. */
    readonly decrypt: (token: string) => Promise<string>
    /** Values of many tokens, in order; a token that does not open is `{ ok: false, error }`, not a rejection. */
    readonly decryptMany: (tokens: ReadonlyArray<string>) => Promise<ReadonlyArray<Decrypted>>
    /** Key rotation: tokens made with the previous key (or the current one) made again with the current key. */
    readonly reencrypt: (tokens: ReadonlyArray<string>) => Promise<ReadonlyArray<string>>
  }
  readonly lists: {
    /** Puts numbers (any format) on a list with a reason and a source; invalid numbers are counted, not fatal. */
    readonly add: (phones: string | ReadonlyArray<string>, options?: ListWriteOptions) => Promise<ImportCounts>
    /** Takes numbers (any format) off `options.list`, or off every list. Rejects with `ValidationError` on an invalid number. */
    readonly remove: (
      phones: string | ReadonlyArray<string>,
      options?: Omit<ListWriteOptions, "source" | "list"> & { readonly list?: ListName }
    ) => Promise<RemoveResult>
    /** Puts numbers (any format) on `toList`, taking them off any other list, sticky or not (an admin action). */
    readonly move: (
      phones: string | ReadonlyArray<string>,
      toList: ListName,
      options?: Omit<ListWriteOptions, "list">
    ) => Promise<MoveResult>
    /** Where a number is, why, since when, and its history. */
    readonly explain: (phone: string, options?: { readonly defaultCountry?: string }) => Promise<ListExplanation>
    /** How many numbers each list holds. */
    readonly counts: () => Promise<ListCounts>
    /** Imports a file: one number per line, or a CSV with a `phone` column (and optional `reason`, `source`, …). */
    readonly importFile: (path: string, options?: ListWriteOptions) => Promise<ImportCounts>
    /** Imports numbers (or rows with their own reason/source) from any (async) iterable, batch by batch. */
    readonly importStream: (
      rows: AsyncIterable<string | RawListRow> | Iterable<string | RawListRow>,
      options?: ListWriteOptions
    ) => Promise<ImportCounts>
  }
  readonly cleaning: {
    /**
     * Cleans a local file (CSV or one number per line) into `options.out`: invalid numbers, repeats
     * and (with the include flags) listed numbers removed. Resolves with the counts. Rejects with
     * `NotFound` (no such file), `UnreadableFile`, `ValidationError`.
     */
    readonly cleanFile: (file: string, options: LocalCleaningOptions) => Promise<PipelineResult>
    /**
     * The same for a stream (an upload being received, a download): it is written to a temporary
     * file first (the pipeline reads its input twice when a rejects or annotated file is asked for),
     * removed afterwards.
     */
    readonly cleanStream: (
      input: AsyncIterable<Uint8Array | string> | Readable,
      options: LocalCleaningOptions
    ) => Promise<PipelineResult>
  }
  readonly records: {
    /** The traffic records of a number (any format) or of a token, with the list it is on. */
    readonly find: (phoneOrToken: string, options?: FindOptions) => Promise<FoundRecords>
  }
  readonly exports: {
    /** Starts exporting a table as CSV (a job; `jobs.wait(started.job_id)`). Rejects with `Conflict` while one runs. */
    readonly start: (table: string) => Promise<ExportStarted>
    /** Exports a table now, in this process; resolves when the file is stored. */
    readonly exportNow: (table: string) => Promise<ExportRecord>
    /** The latest export of a table, or null. */
    readonly latest: (table: string) => Promise<ExportRecord | null>
    /** The latest completed export's CSV (`body` is a web ReadableStream). */
    readonly download: (table: string) => Promise<ExportDownload>
  }
  readonly voluum: {
    /** Syncs Voluum's reports of a window as a job; waits up to `waitSeconds` (default 0: answers queued). */
    readonly syncReports: (
      window: SyncWindow,
      options?: { readonly waitSeconds?: number }
    ) => Promise<SyncOutcome<ReportsSyncResult>>
    /** Syncs Voluum's conversions of a window (and pushes them to Ongage when configured) as a job. */
    readonly syncConversions: (
      window: SyncWindow,
      options?: { readonly waitSeconds?: number }
    ) => Promise<SyncOutcome<ConversionsSyncResult>>
  }
  readonly jobs: {
    /** A job's state, progress, result or error. Rejects with `NotFound` for an unknown id. */
    readonly status: (id: string) => Promise<JobInfo>
    /** Resolves when the job is completed, failed or cancelled — or after `timeoutMs` (default 5 min) with its state then. */
    readonly wait: (id: string, options?: { readonly timeoutMs?: number; readonly pollMs?: number }) => Promise<JobInfo>
    /** Jobs, newest first. */
    readonly list: (filter?: { readonly queue?: string; readonly limit?: number }) => Promise<ReadonlyArray<JobInfo>>
    /** Cancels a queued or running job. */
    readonly cancel: (id: string) => Promise<JobInfo>
  }
  /** Runs any Effect of the SDK on this instance's services (the escape hatch to the full Effect API). */
  readonly run: <A, E>(effect: Effect.Effect<A, E, AppServices>) => Promise<A>
  /** Releases what was built: the job workers, the pools, the file store. Idempotent. */
  readonly close: () => Promise<void>
}

export interface CreateOptions extends OptimizerOptions {
  /**
   * Run the job workers in this process once a job-backed method is used (default true). Set it to
   * false when an optimizer worker deployment (`npx optimizer worker`) runs the jobs.
   */
  readonly runJobs?: boolean
}

const TERMINAL = new Set(["completed", "failed", "cancelled"])
const asArray = (phones: string | ReadonlyArray<string>): ReadonlyArray<string> =>
  typeof phones === "string" ? [phones] : phones

/** The E.164 form of a number in any format, or `ValidationError` naming it (masked). */
const e164 = (phone: string, defaultCountry: string | undefined): Effect.Effect<string, ValidationError> => {
  const normalized = normalizePhone(phone, defaultCountry)
  return normalized.ok
    ? Effect.succeed(normalized.e164)
    : Effect.fail(new ValidationError({ message: "not a valid phone number", field: "phone" }))
}

/**
 * The facade over `options` (a typed options object; `fromEnv(process.env)` from
 * `@optimizer/core/config` gives settings from the environment, which `createOptimizer` also takes).
 * Throws `InvalidConfig` at once for bad options; connects nothing until a method needs it.
 */
export const createOptimizer = (options: CreateOptions | AppSettings = {}): Optimizer => {
  const settings: AppSettings = isSettings(options) ? options : optimizerSettings(options)
  const runJobs = isSettings(options) ? true : (options.runJobs ?? true)
  const config = Layer.succeed(AppConfig, settings)
  const encryption = ManagedRuntime.make(Encryption.layer.pipe(Layer.provide(config)))
  const classifier = ManagedRuntime.make(Classifier.layer.pipe(Layer.provide(config)))
  // The database and job tiers, and the modules of their services, loaded on first use.
  let tiers: Promise<Tiers> | undefined
  let closed = false
  const getTiers = (): Promise<Tiers> => {
    if (closed) return Promise.reject(new Error("this optimizer is closed"))
    tiers ??= import("./promise/Tiers.ts").then((m) => m.makeTiers(settings, { runJobs }))
    return tiers
  }
  type Services = Tiers["services"]
  const onDatabase = async <A, E>(f: (s: Services) => Effect.Effect<A, E, DatabaseServices>): Promise<A> => {
    const t = await getTiers()
    return t.database.runPromise(f(t.services))
  }
  const onAll = async <A, E>(f: (s: Services) => Effect.Effect<A, E, AppServices>): Promise<A> => {
    const t = await getTiers()
    return (await t.full()).runPromise(f(t.services))
  }

  const importRows = (rows: Stream.Stream<RawListRow, unknown>, o: ListWriteOptions = {}) =>
    onDatabase((s) =>
      s.Lists.use((lists) =>
        lists.importNumbers(o.list ?? "blacklist", rows, {
          actor: o.actor ?? "sdk",
          mode: "manual",
          ...(o.defaultCountry === undefined ? {} : { defaultCountry: o.defaultCountry })
        })
      )
    )
  const rowOf =
    (o: ListWriteOptions) =>
    (row: string | RawListRow): RawListRow =>
      typeof row === "string"
        ? { phone: row, reason: o.reason ?? null, source: o.source ?? null }
        : { ...row, reason: row.reason ?? o.reason ?? null, source: row.source ?? o.source ?? null }

  const optimizer: Optimizer = {
    migrate: async () => (await getTiers()).migrate(),
    phone: {
      normalize: (phone, defaultCountry) => normalizePhone(phone, defaultCountry),
      country: (phone, defaultCountry) => {
        const normalized = normalizePhone(phone, defaultCountry)
        return normalized.ok ? (normalized.country ?? countryOfPhone(normalized.e164)) : undefined
      },
      isValid: (phone, defaultCountry) => normalizePhone(phone, defaultCountry).ok
    },
    classification: {
      classify: (osVersion) => classifier.runPromise(Classifier.use((c) => Effect.succeed(c.classify(osVersion)))),
      explain: (osVersion) =>
        classifier.runPromise(
          Classifier.use((c) => {
            const decided = c.classify(osVersion)
            return Effect.succeed({ ...decided, definition: c.rules.find((r) => r.name === decided.rule) })
          })
        )
    },
    encryption: {
      encrypt: (value) => encryption.runPromise(Encryption.use((e) => e.encrypt(value))),
      encryptMany: (values) => encryption.runPromise(Encryption.use((e) => e.encryptMany(values))),
      decrypt: (token) => encryption.runPromise(Encryption.use((e) => e.decrypt(token))),
      decryptMany: (tokens) =>
        encryption.runPromise(
          Encryption.use((e) =>
            Effect.map(e.decryptMany(tokens), (results) =>
              results.map((r): Decrypted =>
                Result.isSuccess(r) ? { ok: true, value: r.success } : { ok: false, error: r.failure }
              )
            )
          )
        ),
      reencrypt: (tokens) =>
        encryption.runPromise(
          Encryption.use((e) =>
            Effect.flatMap(
              Effect.forEach(tokens, (token) => e.decrypt(token)),
              (values) => e.encryptMany(values)
            )
          )
        )
    },
    lists: {
      add: (phones, o = {}) => importRows(Stream.fromIterable(asArray(phones).map(rowOf(o))), o),
      remove: (phones, o = {}) =>
        onDatabase((s) =>
          Effect.gen(function* () {
            const keys = yield* Effect.forEach(asArray(phones), (p) => e164(p, o.defaultCountry))
            const lists = yield* s.Lists
            return yield* lists.remove(keys, {
              actor: o.actor ?? "sdk",
              ...(o.list === undefined ? {} : { list: o.list }),
              ...(o.reason === undefined ? {} : { reason: o.reason })
            })
          })
        ),
      move: (phones, toList, o = {}) =>
        onDatabase((s) =>
          Effect.gen(function* () {
            const keys = yield* Effect.forEach(asArray(phones), (p) => e164(p, o.defaultCountry))
            const lists = yield* s.Lists
            return yield* lists.move(keys, toList, {
              actor: o.actor ?? "sdk",
              ...(o.reason === undefined ? {} : { reason: o.reason }),
              ...(o.source === undefined ? {} : { source: o.source })
            })
          })
        ),
      explain: (phone, o = {}) =>
        onDatabase((s) =>
          Effect.flatMap(e164(phone, o.defaultCountry), (key) => s.Lists.use((lists) => lists.explain(key)))
        ),
      counts: () => onDatabase((s) => s.Lists.use((lists) => lists.counts)),
      importFile: (path, o = {}) =>
        onDatabase((s) =>
          s.Lists.use((lists) =>
            lists.importCsv(o.list ?? "blacklist", () => createReadStream(path), {
              actor: o.actor ?? "sdk",
              mode: "manual",
              ...(o.defaultCountry === undefined ? {} : { defaultCountry: o.defaultCountry }),
              ...(o.reason === undefined ? {} : { reason: o.reason }),
              ...(o.source === undefined ? {} : { source: o.source })
            })
          )
        ),
      importStream: (rows, o = {}) =>
        importRows(
          Stream.map(
            Symbol.asyncIterator in rows
              ? Stream.fromAsyncIterable(rows, (cause) => cause)
              : Stream.fromIterable(rows as Iterable<string | RawListRow>),
            rowOf(o)
          ),
          o
        )
    },
    cleaning: {
      cleanStream: async (input, o) => {
        const dir = await mkdtemp(join(tmpdir(), "optimizer-clean-"))
        try {
          const file = join(dir, "input")
          await pipeline(input, createWriteStream(file))
          return await optimizer.cleaning.cleanFile(file, o)
        } finally {
          await rm(dir, { recursive: true, force: true })
        }
      },
      cleanFile: (file, o) => onAll((s) => s.Cleaning.use((cleaning) => cleaning.cleanLocalFile(file, o)))
    },
    records: {
      find: (phoneOrToken, o) => onDatabase((s) => s.Records.use((records) => records.find(phoneOrToken, o)))
    },
    exports: {
      start: (table) => onAll((s) => s.Exports.use((e) => e.start(table))),
      exportNow: (table) => onAll((s) => s.Exports.use((e) => e.exportNow(table))),
      latest: (table) => onAll((s) => s.Exports.use((e) => e.latest(table))),
      download: (table) => onAll((s) => s.Exports.use((e) => e.download(table)))
    },
    voluum: {
      syncReports: (window, o = {}) =>
        onAll((s) => s.VoluumJobs.use((v) => v.syncReports(window, { waitSeconds: o.waitSeconds ?? 0 }))),
      syncConversions: (window, o = {}) =>
        onAll((s) => s.VoluumJobs.use((v) => v.syncConversions(window, { waitSeconds: o.waitSeconds ?? 0 })))
    },
    jobs: {
      status: (id) =>
        onAll((s) =>
          s.Jobs.use((jobs) =>
            Effect.flatMap(jobs.get(id), (found) =>
              found._tag === "Some"
                ? Effect.succeed(found.value)
                : Effect.fail(new NotFound({ message: `no job ${id}` }))
            )
          )
        ),
      wait: async (id, o = {}) => {
        const deadline = Date.now() + (o.timeoutMs ?? 300_000)
        for (;;) {
          const info = await optimizer.jobs.status(id)
          if (TERMINAL.has(info.state) || Date.now() >= deadline) return info
          await new Promise((resolve) => setTimeout(resolve, o.pollMs ?? 250))
        }
      },
      list: (filter) => onAll((s) => s.Jobs.use((jobs) => jobs.list(filter))),
      cancel: (id) => onAll((s) => s.Jobs.use((jobs) => jobs.cancel(id)))
    },
    run: (effect) => onAll(() => effect),
    close: async () => {
      if (closed) return
      closed = true
      const built = tiers
      await Promise.all([encryption.dispose(), classifier.dispose()])
      if (built !== undefined) await (await built).dispose()
    },
    [Symbol.asyncDispose]: () => optimizer.close()
  }
  return optimizer
}

const isSettings = (options: CreateOptions | AppSettings): options is AppSettings =>
  "schedules" in options && "http" in options && "storage" in options && "sqs" in options
