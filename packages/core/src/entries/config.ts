/**
 * `@optimizer/core/config`: the settings — `optimizerSettings(options)` from a typed options object,
 * `fromEnv(env)` from environment variables (what the adapters use), `AppConfig` (the service).
 * No database module is loaded by this entry.
 */
export * from "../platform/Config.ts"
export * from "../platform/Options.ts"
