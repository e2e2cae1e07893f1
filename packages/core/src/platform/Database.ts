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
import * as Net from "node:net"
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
      multiplex: true,
      ...coalescedTcp(Redacted.value(db.url))
    })
  })
)

/**
 * The TCP connection of a URL whose server is reached over TCP (a Unix-socket URL keeps the driver's
 * own connection): a socket whose writes of one event-loop turn leave in ONE syscall.
 *
 * Why: the driver pipelines the statements submitted within one microtask flush, but an HTTP server
 * receives each request in its own I/O callback, so under load every statement still cost its own
 * `write()` of ~120 bytes — and a loopback write runs the receiver's TCP path and wakes a backend
 * inside the syscall. In a CPU profile of `/find_records` at 50 connections those writes were the
 * largest single item (~16 % of samples). Corking on the first write and uncorking in
 * `setImmediate` — after the poll phase has handed over every request that arrived together — sends
 * them as one `writev` (~11 statements per write there); PostgreSQL's CPU per request fell from
 * ~120 to ~95 µs and Node's by ~5-10 %. An idle server pays one event-loop hop (microseconds).
 * Host and port are read as the driver reads them (`?host=` and `?port=` win over the authority;
 * `localhost:5432` by default).
 */
const coalescedTcp = (url: string): { stream?: () => Net.Socket } => {
  const u = new URL(url)
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : decodeURIComponent(u.hostname)
  const host = u.searchParams.get("host") ?? (hostname || "localhost")
  if (host.startsWith("/")) return {}
  const port = Number(u.searchParams.get("port") ?? (u.port || 5432))
  return { stream: () => coalescingSocket(Net.connect({ host, port, noDelay: true })) }
}

/** Buffers a socket's writes until the end of the current event-loop turn (see `coalescedTcp`). */
export const coalescingSocket = (socket: Net.Socket): Net.Socket => {
  const write = socket.write
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  socket.write = function (this: Net.Socket, ...args: Parameters<Net.Socket["write"]>) {
    if (!corked) {
      corked = true
      socket.cork()
      setImmediate(uncork)
    }
    return write.apply(this, args as never)
  } as Net.Socket["write"]
  return socket
}

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
