/**
 * The schema version this code expects, and the check a database-backed service runs when it
 * starts: an unmigrated or older database fails with `SchemaVersionMismatch` naming both versions
 * (instead of `relation "blacklist" does not exist` at the first query). A newer database is
 * accepted: during a rolling deployment the new replicas migrate while the old ones still run.
 *
 * `SCHEMA_VERSION` is the highest migration file in the repository's `sql/` (test/sdk-schema.test.ts
 * keeps them equal).
 */
import { Effect, Schema } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"

/** The highest migration (`sql/NNNN_*.sql`) this version of the package applies and expects. */
export const SCHEMA_VERSION = 7

/**
 * The database's schema is older than this package expects (`applied` < `expected`; `applied` is 0
 * when no migration ever ran). Fix: run the package's migrations (`migrate(url)`, the facade's
 * `migrate()`, or `npx optimizer migrate`).
 */
export class SchemaVersionMismatch extends Schema.TaggedError<SchemaVersionMismatch>()("SchemaVersionMismatch", {
  message: Schema.String,
  /** The highest migration the database has (0: none). */
  applied: Schema.Number,
  /** The highest migration this package ships (`SCHEMA_VERSION`). */
  expected: Schema.Number
}) {}

/** A migration file whose recorded checksum no longer matches the file: an applied migration was edited. */
export class MigrationChecksumMismatch extends Error {
  override readonly name = "MigrationChecksumMismatch"
}

/** The highest applied migration of the database behind `sql` (0: none, or no `schema_migrations` table). */
export const appliedSchemaVersion = (sql: SqlClient) =>
  Effect.gen(function* () {
    const [table] = yield* sql<{ present: boolean }>`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`
    if (table?.present !== true) return 0
    const [row] = yield* sql<{ version: number | null }>`SELECT max(version)::int AS version FROM schema_migrations`
    return row?.version ?? 0
  })

/** Fails with `SchemaVersionMismatch` when the database is older than `expected`. */
export const checkSchemaVersion = (sql: SqlClient, expected: number = SCHEMA_VERSION) =>
  Effect.flatMap(appliedSchemaVersion(sql), (applied) =>
    applied >= expected
      ? Effect.succeed(applied)
      : Effect.fail(
          new SchemaVersionMismatch({
            applied,
            expected,
            message:
              applied === 0
                ? `the database has no optimizer schema (expected version ${expected}): run the migrations first (migrate() of the SDK, or "npx optimizer migrate")`
                : `the database schema is at version ${applied}, this package expects ${expected}: run the migrations (migrate() of the SDK, or "npx optimizer migrate")`
          })
        )
  )
