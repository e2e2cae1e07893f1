/**
 * The runtime an adapter runs core's services on, typed: `makeRuntime(settings, options)` for the
 * HTTP server, the CLI and the Promise facade, `makeConsumerRuntime(settings)` for the SQS
 * consumer. Their error type is the start-up errors (`AppStartError`), so no adapter casts the
 * layer; building it (the first `runPromise`) connects the database, and `dispose` releases it.
 */
import { ManagedRuntime } from "effect"
import {
  appLayer,
  consumerLayer,
  type AppLayerOptions,
  type AppServices,
  type AppStartError,
  type ConsumerServices
} from "./AppLayer.ts"
import type { AppSettings } from "./platform/Config.ts"

export type AppRuntime = ManagedRuntime.ManagedRuntime<AppServices, AppStartError>
export type ConsumerRuntime = ManagedRuntime.ManagedRuntime<ConsumerServices, AppStartError>

/** Every core service for `settings`, built on first use (or by `runPromise(Effect.void)` to fail early). */
export const makeRuntime = (settings: AppSettings, options: AppLayerOptions = {}): AppRuntime =>
  ManagedRuntime.make(appLayer(settings, options))

/** Live events and the platform under them: what the SQS consumer needs. */
export const makeConsumerRuntime = (settings: AppSettings): ConsumerRuntime =>
  ManagedRuntime.make(consumerLayer(settings))
