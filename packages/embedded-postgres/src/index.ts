/**
 * @optimizer/embedded-postgres — the quick start's PostgreSQL 18, run from a data directory of the
 * project's with nothing installed but the npm dependencies. A scoped Effect layer
 * (`EmbeddedPostgres.layer`, `EmbeddedPostgres.start`) and the plain Promise API under it
 * (`startEmbeddedPostgres`) for test setups and scripts.
 */
export { EmbeddedPostgres, EmbeddedPostgresError, type EmbeddedPostgresServer } from "./EmbeddedPostgres.ts"
export { startEmbeddedPostgres, type EmbeddedPostgresOptions, type RunningEmbeddedPostgres } from "./start.ts"
export { isPortInUse } from "./processes.ts"
