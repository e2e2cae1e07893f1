/**
 * `@optimizer/core/migrations`: the schema — `migrate(url)` applies the package's own `sql/` files
 * (never the host project's), `checkSchemaVersion` tells an unmigrated or older database apart.
 */
export {
  defaultMigrationsDir,
  loadMigrations,
  migrate,
  MigrationChecksumMismatch,
  type Migration,
  type MigrationResult
} from "../platform/Migrations.ts"
export * from "../platform/SchemaVersion.ts"
