/**
 * The composition root shared by every process: settings → logging → database pools → services.
 * Adapters build one runtime from `appLayer(settings)` and call services through it.
 */
import { Layer } from "effect"
import { ApiKeys } from "./auth/ApiKeys.ts"
import { Metrics } from "./metrics/Metrics.ts"
import { Health } from "./platform/Health.ts"
import { AppConfig, type AppSettings } from "./platform/Config.ts"
import { DatabaseLayer } from "./platform/Database.ts"
import { loggingLayer } from "./platform/Logging.ts"

/** Settings, logging and both database pools. */
export const platformLayer = (settings: AppSettings) => {
  const config = Layer.succeed(AppConfig, settings)
  return DatabaseLayer.pipe(Layer.provideMerge(config), Layer.provideMerge(loggingLayer(settings)))
}

/** Every domain service, wired to the platform. */
export const appLayer = (settings: AppSettings) =>
  Layer.mergeAll(ApiKeys.layer, Metrics.layer, Health.layer).pipe(Layer.provideMerge(platformLayer(settings)))

export type AppServices = Layer.Success<ReturnType<typeof appLayer>>
