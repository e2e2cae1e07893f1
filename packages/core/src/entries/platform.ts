/** `@optimizer/core/platform`: the database pools, logging, health, metrics, API keys — what adapters wire. */
export {
  DatabaseLayer,
  DatabaseLive,
  decodeOptionalRow,
  decodeRows,
  databaseErrorOf,
  describeDatabaseFailure,
  isDatabaseUnavailable,
  PgBulk,
  toDatabaseError
} from "../platform/Database.ts"
export * from "../platform/Logging.ts"
export * from "../platform/Health.ts"
export * from "../metrics/Metrics.ts"
export { ApiKeys, Role, roleAllows, type ApiKeyInfo, type CreatedApiKey, type Principal } from "../auth/ApiKeys.ts"
export * from "../auth/RateLimit.ts"
export * from "../AppLayer.ts"
export * from "../Runtime.ts"
export * from "../platform/Diagnostics.ts"
