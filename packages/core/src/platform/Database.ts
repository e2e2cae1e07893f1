/**
 * PostgreSQL access.
 *
 * - `Database.layer`: the `@effect/sql-pg` pool (`SqlClient` / `PgClient`) used by every repository,
 *   built from `AppConfig.database`.
 * - `PgBulk`: a small `pg` pool for what the native driver cannot do — `COPY … FROM STDIN` /
 *   `COPY … TO STDOUT` (bulk list writes, exports, the cleaning pipeline; ~3× the rows/s of batched
 *   INSERTs, see `INFRA.md`) and multi-statement scripts.
 * - `toDatabaseError`: the one translation of driver errors into the domain's `DatabaseError`.
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted } from "effect"
import type { SqlError } from "effect/sql"
import pg from "pg"
import { AppConfig, requireDatabase } from "./Config.ts"
import { DatabaseError } from "./Errors.ts"

/** The `@effect/sql-pg` pool for the configured database. Fails start-up when no database is configured. */
export const DatabaseLive = Layer.unwrap(
  Effect.gen(function* () {
    const settings = yield* AppConfig
    const db = yield* requireDatabase(settings)
    return PgClient.layer({
      url: db.url,
      maxConnections: db.poolMax,
      minConnections: 1,
      idleTimeout: "60 seconds",
      connectionTTL: "30 minutes",
      connectTimeout: "5 seconds",
      applicationName: "optimizer",
      // Statements of concurrent fibers are pipelined on shared connections (up to 32 each), several
      // per socket write: on this 2-core machine a loopback write costs more than a short query, and
      // pipelining halves the driver's CPU per statement (select 1: ~120 → ~35 µs; /find_records
      // doubles its req/s). Transactions and streams still reserve a connection of their own.
      multiplex: true
    })
  })
)

/** Turns a driver failure into the domain's `DatabaseError`, keeping the classified reason for the logs. */
export const toDatabaseError = (error: SqlError.SqlError): DatabaseError =>
  new DatabaseError({ message: `database error: ${describeSqlError(error)}`, cause: error })

export const describeSqlError = (error: SqlError.SqlError): string => {
  const reason = (error as { reason?: { _tag?: string; message?: string; cause?: unknown } }).reason
  const cause = reason?.cause as { message?: string } | undefined
  return [reason?._tag, reason?.message, cause?.message].filter((s) => typeof s === "string" && s !== "").join(": ")
}

/** `pg` pool for COPY streams and other work the native driver does not support. */
export class PgBulk extends Context.Service<
  PgBulk,
  {
    readonly pool: pg.Pool
    /** Runs `f` with a dedicated connection, released afterwards (also on failure or interruption). */
    readonly withClient: <A>(f: (client: pg.PoolClient) => Promise<A>) => Effect.Effect<A, DatabaseError>
  }
>()("@optimizer/core/platform/PgBulk") {
  static readonly make = (url: string, max = 4) =>
    Effect.gen(function* () {
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const p = new pg.Pool({ connectionString: url, max, application_name: "optimizer-bulk" })
          // An idle client that loses its connection emits "error" on the pool; without a listener it kills the process.
          p.on("error", () => undefined)
          return p
        }),
        (p) => Effect.promise(() => p.end())
      )
      const withClient = <A>(f: (client: pg.PoolClient) => Promise<A>) =>
        Effect.tryPromise({
          try: async () => {
            const client = await pool.connect()
            try {
              return await f(client)
            } finally {
              client.release()
            }
          },
          catch: (cause) =>
            cause instanceof DatabaseError
              ? cause
              : new DatabaseError({ message: `database error: ${(cause as Error)?.message ?? String(cause)}`, cause })
        })
      return PgBulk.of({ pool, withClient })
    })

  static readonly layer = Layer.effect(
    PgBulk,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const db = yield* requireDatabase(settings)
      return yield* PgBulk.make(Redacted.value(db.url))
    })
  )
}

/** Both pools. */
export const DatabaseLayer = Layer.mergeAll(DatabaseLive, PgBulk.layer)
