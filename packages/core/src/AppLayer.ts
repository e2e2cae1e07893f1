/**
 * The composition root shared by every process: settings → logging → database pools → services.
 * Adapters build one runtime from `appLayer(settings, { role })` and call services through it.
 *
 * The role decides what the jobs engine does in this process: an API replica only enqueues; a
 * worker also supervises (dead/expired jobs); a scheduler runs the cron pass; the quick start
 * ("all") does everything.
 */
import { Layer } from "effect"
import { ApiKeys } from "./auth/ApiKeys.ts"
import { Classifier } from "./classification/Classifier.ts"
import { RiskyOperators } from "./classification/RiskyOperators.ts"
import { Encryption } from "./encryption/Encryption.ts"
import { Metrics } from "./metrics/Metrics.ts"
import { AppConfig, type AppSettings } from "./platform/Config.ts"
import { DatabaseLayer } from "./platform/Database.ts"
import { FileStore } from "./platform/FileStore.ts"
import { Health } from "./platform/Health.ts"
import { Jobs, type JobsOptions } from "./platform/Jobs.ts"
import { loggingLayer } from "./platform/Logging.ts"
import { OngageClient } from "./ongage/OngageClient.ts"
import { VoluumClient } from "./voluum/VoluumClient.ts"

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

/** Settings, logging, both database pools, files and jobs. */
export const platformLayer = (settings: AppSettings, options: AppLayerOptions = {}) => {
  const config = Layer.succeed(AppConfig, settings)
  const jobs = Jobs.layerWith({ ...jobsOptionsFor(options.role ?? "api"), ...options.jobs })
  return Layer.mergeAll(jobs, FileStore.layer).pipe(
    Layer.provideMerge(DatabaseLayer),
    Layer.provideMerge(config),
    Layer.provideMerge(loggingLayer(settings))
  )
}

/** Every domain service, wired to the platform. */
export const appLayer = (settings: AppSettings, options: AppLayerOptions = {}) =>
  Layer.mergeAll(
    ApiKeys.layer,
    Metrics.layer,
    Health.layer,
    VoluumClient.layer,
    OngageClient.layer,
    Encryption.layer,
    Classifier.layer,
    RiskyOperators.layer
  ).pipe(Layer.provideMerge(platformLayer(settings, options)))

export type AppServices = Layer.Success<ReturnType<typeof appLayer>>
