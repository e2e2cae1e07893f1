/**
 * The composition root shared by every process: settings → logging → database pools → services.
 * Adapters build one runtime from it with `makeRuntime(settings, { role })` (Runtime.ts) and call
 * services through it. Both layers state their type: a service added here without what it needs,
 * or one that can fail start-up in a new way, fails the type-check of this file.
 *
 * The role decides what the jobs engine does in this process: an API replica only enqueues; a
 * worker also supervises (dead/expired jobs); a scheduler runs the cron pass; the quick start
 * ("all") does everything.
 */
import { Layer } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import { ApiKeys } from "./auth/ApiKeys.ts"
import { Cleaning } from "./cleaning/Cleaning.ts"
import { Classifier } from "./classification/Classifier.ts"
import { RiskyOperators } from "./classification/RiskyOperators.ts"
import { Encryption } from "./encryption/Encryption.ts"
import { EncryptionFiles } from "./encryption/EncryptionFiles.ts"
import { Exports } from "./exports/Exports.ts"
import { Hlr } from "./hlr/Hlr.ts"
import { Records } from "./records/Records.ts"
import { LiveEvents } from "./live-events/LiveEvents.ts"
import { Lists } from "./lists/Lists.ts"
import { ManualImports } from "./lists/ManualImports.ts"
import { ScheduledOperations } from "./scheduler/ScheduledOperations.ts"
import { Mmd } from "./mmd/Mmd.ts"
import { MessageWhizClient } from "./mmd/MessageWhizClient.ts"
import { Scheduler } from "./scheduler/Scheduler.ts"
import { Metrics } from "./metrics/Metrics.ts"
import { AppConfig, type AppSettings } from "./platform/Config.ts"
import { DatabaseLayer } from "./platform/Database.ts"
import type { DatabaseError, InvalidConfig, StorageError } from "./platform/Errors.ts"
import { FileStore } from "./platform/FileStore.ts"
import { Health } from "./platform/Health.ts"
import { Jobs, type JobsOptions } from "./platform/Jobs.ts"
import { loggingLayer } from "./platform/Logging.ts"
import { DatabaseMetricsLayer } from "./platform/DatabaseMetrics.ts"
import type { SchemaVersionMismatch } from "./platform/SchemaVersion.ts"
import { tracingLayer } from "./platform/Tracing.ts"
import { OngageClient } from "./ongage/OngageClient.ts"
import { OngageJobs } from "./ongage-jobs/OngageJobs.ts"
import { VoluumClient } from "./voluum/VoluumClient.ts"
import { ConversionsSync } from "./voluum/ConversionsSync.ts"
import { RegSearch } from "./voluum/RegSearch.ts"
import { ReportsSync } from "./voluum/ReportsSync.ts"
import { SmartCleaning } from "./voluum/SmartCleaning.ts"
import { VoluumSyncJobs } from "./voluum/VoluumJobs.ts"

export type ProcessRole = "api" | "worker" | "scheduler" | "all"

export interface AppLayerOptions {
  readonly role?: ProcessRole
  /** Overrides of the jobs engine (tests shorten its timings). */
  readonly jobs?: Partial<JobsOptions>
}

const jobsOptionsFor = (role: ProcessRole): JobsOptions => ({
  supervise: role === "worker" || role === "all",
  schedule: role === "scheduler" || role === "all",
  instanceName: role
})

/**
 * A process that runs jobs (worker, scheduler, the quick start) uses the job statement limit on its
 * connections and no idle-transaction limit (a conversions push holds its claim while Ongage's rate
 * limit makes it wait); an API replica keeps the short limits (its requests have a deadline too).
 */
const withRoleTimeouts = (settings: AppSettings, role: ProcessRole): AppSettings =>
  role === "api" || settings.database === undefined
    ? settings
    : {
        ...settings,
        database: {
          ...settings.database,
          timeouts: {
            ...settings.database.timeouts,
            statementMs: settings.database.timeouts.jobStatementMs,
            idleInTransactionMs: 0
          }
        }
      }

/** Settings, logging, both database pools, files and jobs. */
export const platformLayer = (settings: AppSettings, options: AppLayerOptions = {}) => {
  const config = Layer.succeed(AppConfig, withRoleTimeouts(settings, options.role ?? "api"))
  const jobs = Jobs.layerWith({ ...jobsOptionsFor(options.role ?? "api"), ...options.jobs })
  return Layer.mergeAll(jobs, FileStore.layer, DatabaseMetricsLayer).pipe(
    Layer.provideMerge(DatabaseLayer),
    Layer.provideMerge(config),
    Layer.provideMerge(loggingLayer(settings)),
    Layer.provideMerge(tracingLayer(settings, options.role ?? "api"))
  )
}

/** Live events and what they need beyond the platform (shared instances: layers are memoised by reference). */
const liveEventsLayer = LiveEvents.layer.pipe(
  Layer.provide(Layer.mergeAll(Lists.layer, Classifier.layer, Encryption.layer, VoluumClient.layer))
)

/** The Voluum syncs, smart cleaning and REG search, and what they need beyond the platform. */
const voluumLayer = Layer.mergeAll(
  ReportsSync.layer,
  ConversionsSync.layer,
  VoluumSyncJobs.layer,
  SmartCleaning.layer,
  RegSearch.layer
).pipe(
  Layer.provide(Layer.mergeAll(Lists.layer, Classifier.layer, Encryption.layer, VoluumClient.layer, OngageClient.layer))
)

/** MessageWhiz: its client, and the cost push, snapshots and live stream over it and Voluum. */
const mmdLayer = Mmd.layer

/**
 * Why building the services can fail: a missing or invalid setting (no database, a bad rules file),
 * the database unreachable (the pool's first connection, the bulk pool) or not migrated to this
 * version's schema, the file store unusable.
 */
export type AppStartError = InvalidConfig | DatabaseError | StorageError | SqlError | SchemaVersionMismatch

const buildConsumerLayer = (settings: AppSettings) =>
  liveEventsLayer.pipe(
    Layer.provideMerge(DatabaseLayer),
    Layer.provideMerge(Layer.succeed(AppConfig, settings)),
    Layer.provideMerge(loggingLayer(settings)),
    Layer.provideMerge(tracingLayer(settings, "consumer"))
  )

const buildAppLayer = (settings: AppSettings, options: AppLayerOptions) =>
  Layer.mergeAll(
    ApiKeys.layer,
    Metrics.layer,
    Health.layer,
    VoluumClient.layer,
    OngageClient.layer,
    Encryption.layer,
    EncryptionFiles.layer,
    Records.layer,
    Exports.layer,
    Classifier.layer,
    RiskyOperators.layer,
    Lists.layer,
    ManualImports.layer,
    Cleaning.layer,
    Hlr.layer,
    OngageJobs.layerLive,
    liveEventsLayer,
    voluumLayer,
    MessageWhizClient.layer,
    mmdLayer,
    Scheduler.layer.pipe(
      Layer.provide(ScheduledOperations.layer.pipe(Layer.provide(Layer.mergeAll(voluumLayer, mmdLayer))))
    )
  ).pipe(Layer.provideMerge(platformLayer(settings, options)))

/** Every service `appLayer` provides: what adapters' effects may require. */
export type AppServices = Layer.Success<ReturnType<typeof buildAppLayer>>

/** What `consumerLayer` provides: live events and the platform under them. */
export type ConsumerServices = Layer.Success<ReturnType<typeof buildConsumerLayer>>

/** Every domain service, wired to the platform; it needs nothing more (`never`). */
export const appLayer = (
  settings: AppSettings,
  options: AppLayerOptions = {}
): Layer.Layer<AppServices, AppStartError> => buildAppLayer(settings, options)

/** The SQS consumer process: live events over the database pools, without the jobs engine. */
export const consumerLayer = (settings: AppSettings): Layer.Layer<ConsumerServices, AppStartError> =>
  buildConsumerLayer(settings)
