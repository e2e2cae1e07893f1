/**
 * Schema migrations: the numbered `.sql` files in the repository's `sql/` folder (shipped inside the
 * core package as `sql/`), applied in order, each in its own transaction, recorded in
 * `schema_migrations` with a checksum. A PostgreSQL advisory lock serialises concurrent migrators
 * (several replicas starting at once), so running it again — or twice at the same time — changes
 * nothing.
 *
 * It uses `pg` (simple query protocol) rather than `@effect/sql-pg`, because a migration file holds
 * many statements and the extended protocol accepts one statement per query.
 */
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { MigrationChecksumMismatch } from "./SchemaVersion.ts"

export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
  readonly checksum: string
}

export interface MigrationResult {
  readonly applied: ReadonlyArray<string>
  readonly alreadyApplied: number
}

export { MigrationChecksumMismatch }

const MIGRATION_FILE = /^(\d+)_([A-Za-z0-9_-]+)\.sql$/
// Any constant works; it only has to be the same for every optimizer process.
const MIGRATION_LOCK_KEY = 8_245_117_001

/**
 * Where the migrations live, found from this package's own root and nowhere else (never the host
 * project's `sql/`): the package root is the nearest folder above this module whose package.json
 * is `@optimizer/core`. In a checkout (`packages/core`, whose `src/` the tarball does not ship) that
 * is the repository's `sql/`; in an installed package, its own `sql/` (the build's copy).
 */
export const defaultMigrationsDir = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!(existsSync(join(dir, "package.json")) && packageName(join(dir, "package.json")) === "@optimizer/core")) {
    const parent = dirname(dir)
    if (parent === dir)
      throw new Error(`migrations folder not found: no @optimizer/core package above ${import.meta.url}`)
    dir = parent
  }
  const checkout = existsSync(join(dir, "src/platform/Migrations.ts"))
  const migrations = checkout ? join(dir, "../../sql") : join(dir, "sql")
  if (!existsSync(join(migrations, "0001_initial.sql"))) throw new Error(`migrations folder not found: ${migrations}`)
  return migrations
}

const packageName = (manifest: string): unknown => {
  try {
    return (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name
  } catch {
    return undefined
  }
}

export const loadMigrations = (dir: string = defaultMigrationsDir()): ReadonlyArray<Migration> => {
  const migrations: Array<Migration> = []
  for (const file of readdirSync(dir).sort()) {
    const match = MIGRATION_FILE.exec(file)
    if (!match) continue
    const sql = readFileSync(join(dir, file), "utf8")
    migrations.push({
      version: Number(match[1]),
      name: match[2]!,
      sql,
      checksum: createHash("sha256").update(sql).digest("hex")
    })
  }
  migrations.sort((a, b) => a.version - b.version)
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      throw new Error(`two migrations share version ${migrations[i]!.version}`)
    }
  }
  return migrations
}

/** Applies every migration not yet recorded. Safe to run concurrently and repeatedly. */
export const migrate = async (
  connectionString: string,
  options: { readonly dir?: string; readonly log?: (line: string) => void } = {}
): Promise<MigrationResult> => {
  const migrations = loadMigrations(options.dir)
  const client = new pg.Client({ connectionString, application_name: "optimizer-migrate" })
  await client.connect()
  try {
    await client.query("SET client_min_messages = warning")
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY])
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    const { rows } = await client.query<{ version: number; checksum: string }>(
      "SELECT version, checksum FROM schema_migrations"
    )
    const recorded = new Map(rows.map((r) => [r.version, r.checksum]))
    const applied: Array<string> = []
    for (const m of migrations) {
      const checksum = recorded.get(m.version)
      if (checksum !== undefined) {
        if (checksum !== m.checksum) {
          throw new MigrationChecksumMismatch(
            `migration ${m.version}_${m.name} was changed after it was applied; add a new migration instead`
          )
        }
        continue
      }
      await client.query("BEGIN")
      try {
        await client.query(m.sql)
        await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
          m.version,
          m.name,
          m.checksum
        ])
        await client.query("COMMIT")
      } catch (cause) {
        await client.query("ROLLBACK")
        throw new Error(`migration ${m.version}_${m.name} failed: ${(cause as Error).message}`, { cause })
      }
      applied.push(`${m.version}_${m.name}`)
      options.log?.(`applied ${m.version}_${m.name}`)
    }
    return { applied, alreadyApplied: migrations.length - applied.length }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined)
    await client.end()
  }
}
