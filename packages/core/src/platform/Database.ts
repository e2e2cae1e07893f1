/**
 * PostgreSQL access.
 *
 * - `Database.layer`: the `@effect/sql-pg` pool (`SqlClient` / `PgClient`) used by every repository,
 *   built from `AppConfig.database`.
 * - `PgBulk`: a small `pg` pool for what the native driver cannot do — `COPY … FROM STDIN` /
 *   `COPY … TO STDOUT` (bulk list writes, exports, the cleaning pipeline; ~3× the rows/s of batched
 *   INSERTs, see `docs/performance.md` "Reference measurements") and multi-statement scripts.
 * - `toDatabaseError`: the one translation of driver errors into the domain's `DatabaseError`.
 */
import * as Net from "node:net"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Exit, Layer, Option, Redacted, Schema, Scope } from "effect"
import { SqlClient } from "effect/sql"
import pg from "pg"
import { AppConfig, requireDatabase } from "./Config.ts"
import { DatabaseError } from "./Errors.ts"
import { maskPhones } from "./Logging.ts"
import { checkSchemaVersion } from "./SchemaVersion.ts"

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
      // A statement or an idle transaction past its limit is ended by the server (57014 / 25P03):
      // the request fails with 503 instead of holding a connection. AppLayer picks the job limit
      // for processes that run jobs.
      startupParameters: timeoutParameters(db.timeouts.statementMs, db.timeouts.idleInTransactionMs),
      // Statements of concurrent fibers are pipelined on shared connections (up to 32 each), several
      // per socket write: on this 2-core machine a loopback write costs more than a short query, and
      // pipelining halves the driver's CPU per statement (select 1: ~120 → ~35 µs; /find_records
      // doubles its req/s). Transactions and streams still reserve a connection of their own.
      multiplex: true,
      ...coalescedTcp(Redacted.value(db.url))
    })
  })
)

/** PostgreSQL's session settings for the limits (milliseconds; 0 leaves the server's default: none). */
const timeoutParameters = (statementMs: number, idleInTransactionMs: number): Record<string, string> => ({
  ...(statementMs > 0 ? { statement_timeout: String(statementMs) } : {}),
  ...(idleInTransactionMs > 0 ? { idle_in_transaction_session_timeout: String(idleInTransactionMs) } : {})
})

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

/**
 * The one translation of a database failure into the domain's `DatabaseError`: an `effect/sql`
 * `SqlError`, a `pg` driver error (from the bulk pool or a COPY stream), or anything thrown on the
 * way. A `DatabaseError` passes through unchanged; `what` says what was being done ("the cleaning
 * run", "export of blacklist") and prefixes the message. Phone numbers in driver text are masked.
 */
export const toDatabaseError = (cause: unknown, what = "database error"): DatabaseError => {
  if (cause instanceof DatabaseError) return cause
  const message = `${what}: ${maskPhones(describeDatabaseFailure(cause))}`
  return isDatabaseUnavailable(cause)
    ? new DatabaseError({ message, unavailable: true, cause })
    : new DatabaseError({ message, cause })
}

/** `effect/sql`'s classified reasons that mean "not now" rather than "wrong". */
const UNAVAILABLE_REASONS = new Set([
  "ConnectionError",
  "AuthenticationError",
  "StatementTimeoutError",
  "LockTimeoutError"
])
/**
 * SQLSTATEs of the same kind: connection exceptions (08…), shutdown / cannot connect now (57P01-03),
 * too many connections (53300), the database gone (3D000), a statement, lock or idle-transaction
 * timeout (57014, 55P03, 25P03).
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300|3D000|57014|55P03|25P03)$/
const UNAVAILABLE_SOCKET = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN"
])
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Connection ended unexpectedly/i

/**
 * Is `cause` (or what it wraps: a `SqlError`'s reason and its cause, an error's `cause`) a database
 * that cannot be reached or does not answer in time, rather than a statement that is wrong?
 */
export const isDatabaseUnavailable = (cause: unknown): boolean => {
  let current: unknown = cause
  for (let depth = 0; depth < 6 && current !== null && typeof current === "object"; depth++) {
    const e = current as { _tag?: unknown; code?: unknown; message?: unknown; reason?: unknown; cause?: unknown }
    if (e instanceof DatabaseError) return e.unavailable === true
    if (typeof e._tag === "string" && UNAVAILABLE_REASONS.has(e._tag)) return true
    if (typeof e.code === "string" && (UNAVAILABLE_SQLSTATE.test(e.code) || UNAVAILABLE_SOCKET.has(e.code))) return true
    if (typeof e.message === "string" && UNAVAILABLE_MESSAGE.test(e.message)) return true
    current = e._tag === "SqlError" && e.reason !== undefined ? e.reason : e.cause
  }
  return false
}

/** `Effect.mapError(databaseErrorOf("…"))`: the same translation with what was being done. */
export const databaseErrorOf =
  (what: string) =>
  (cause: unknown): DatabaseError =>
    toDatabaseError(cause, what)

/** The driver's reason, as short as it says it: `effect/sql`'s classified reason, else the message. */
export const describeDatabaseFailure = (cause: unknown): string => {
  const e = cause as {
    _tag?: unknown
    message?: unknown
    reason?: { _tag?: string; message?: string; cause?: unknown }
  }
  if (e?._tag === "SqlError" && e.reason !== undefined) {
    const inner = e.reason.cause as { message?: string } | undefined
    const parts = [e.reason._tag, e.reason.message, inner?.message].filter((s) => typeof s === "string" && s !== "")
    if (parts.length > 0) return parts.join(": ")
  }
  if (typeof e?.message === "string" && e.message !== "") return e.message
  return String(cause)
}

/**
 * Runs a query and decodes its rows with `schema`: repositories return typed rows, never casts. A
 * driver failure and a row that does not match (a schema out of step with the SQL) are both
 * `DatabaseError`s.
 *
 *   const files = yield* sql`SELECT * FROM uploaded_csv_files`.pipe(decodeRows(CleaningFileRow))
 */
export const decodeRows =
  <S extends Schema.Top>(schema: S) =>
  <E, R>(
    query: Effect.Effect<ReadonlyArray<unknown>, E, R>
  ): Effect.Effect<ReadonlyArray<S["Type"]>, DatabaseError, R | S["DecodingServices"]> =>
    query.pipe(
      Effect.mapError((cause) => toDatabaseError(cause)),
      Effect.flatMap((rows) =>
        Schema.decodeUnknownEffect(Schema.Array(schema))(rows).pipe(
          Effect.mapError((cause) => toDatabaseError(cause, "unexpected row from the database"))
        )
      )
    )

/** `decodeRows` for a query that returns at most one row: `Option` of it. */
export const decodeOptionalRow =
  <S extends Schema.Top>(schema: S) =>
  <E, R>(
    query: Effect.Effect<ReadonlyArray<unknown>, E, R>
  ): Effect.Effect<Option.Option<S["Type"]>, DatabaseError, R | S["DecodingServices"]> =>
    decodeRows(schema)(query).pipe(Effect.map((rows) => Option.fromNullishOr(rows[0])))

/** `pg` pool for COPY streams and other work the native driver does not support. */
export class PgBulk extends Context.Service<
  PgBulk,
  {
    readonly pool: pg.Pool
    /** Runs `f` with a dedicated connection, released afterwards (also on failure or interruption). */
    readonly withClient: <A>(f: (client: pg.PoolClient) => Promise<A>) => Effect.Effect<A, DatabaseError>
    /**
     * A dedicated connection for the scope. Released to the pool when the scope succeeds; destroyed
     * when it fails or is interrupted (a statement may still be running on it, its state is unknown).
     */
    readonly connection: Effect.Effect<pg.PoolClient, DatabaseError, Scope.Scope>
  }
>()("@optimizer/core/platform/PgBulk") {
  static readonly make = (url: string, max = 4) =>
    Effect.gen(function* () {
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() => {
          // Keep-alive: a connection whose peer vanished (a dropped network path) fails instead of
          // holding one of the few bulk connections forever; a connect that cannot finish gives up.
          const p = new pg.Pool({
            connectionString: url,
            max,
            application_name: "optimizer-bulk",
            keepAlive: true,
            connectionTimeoutMillis: 10_000
          })
          // An idle client that loses its connection emits "error" on the pool; without a listener it kills the process.
          p.on("error", () => undefined)
          return p
        }),
        (p) => Effect.promise(() => p.end())
      )
      const withClient = <A>(f: (client: pg.PoolClient) => Promise<A>) =>
        Effect.tryPromise({
          try: async () => {
            const client = await checkOut(pool)
            let clean = false
            try {
              const result = await f(client)
              clean = true
              return result
            } finally {
              checkIn(client, clean)
            }
          },
          catch: (cause) => toDatabaseError(cause)
        })
      return PgBulk.of({ pool, withClient, connection: pooledConnection(pool) })
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
/**
 * Start-up fails with `SchemaVersionMismatch` (naming the applied and the expected version) on an
 * unmigrated or older database, instead of `relation "…" does not exist` at the first query.
 */
export const SchemaCheck = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) => checkSchemaVersion(sql))
).pipe(Layer.provide(DatabaseLive))

export const DatabaseLayer = Layer.mergeAll(DatabaseLive, PgBulk.layer, SchemaCheck)

/** While a connection is held, a lost (or cut) connection emits "error" on its client; see `checkOut`. */
const ignoreClientError = (): void => undefined

/**
 * A connection of `pool`, held until `checkIn`. While it is held the pool does not listen for its
 * "error" event, and a connection lost then (a reset socket) would crash the process with an
 * unhandled error: it is absorbed here, and the failure reaches the holder through its pending
 * query instead.
 */
export const checkOut = async (pool: pg.Pool): Promise<pg.PoolClient> => {
  const client = await pool.connect()
  client.on("error", ignoreClientError)
  return client
}

/** Gives a `checkOut` connection back: to the pool when its work ended cleanly, else destroyed (its state is unknown). */
export const checkIn = (client: pg.PoolClient, clean: boolean): void => {
  client.off("error", ignoreClientError)
  client.release(clean ? undefined : true)
}

/**
 * A dedicated connection from `pool` for the scope: `PgBulk.connection` for code that is handed a
 * `pg` pool (the cleaning engine). Released to the pool when the scope succeeds; destroyed when it
 * fails or is interrupted. While held, a connection that is lost emits "error" on its client, which
 * without a listener would crash the process: it is absorbed, and the failure reaches the holder
 * through its pending query instead.
 */
export const pooledConnection = (pool: pg.Pool): Effect.Effect<pg.PoolClient, DatabaseError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => checkOut(pool), catch: databaseErrorOf("could not connect to the database") }),
    (client, exit) => Effect.sync(() => checkIn(client, Exit.isSuccess(exit)))
  )

/**
 * `use` between `BEGIN` and `COMMIT` on `client`, for work whose result must not be reported unless
 * it is committed: a failed `COMMIT` fails the effect. When `use` fails or is
 * interrupted no `ROLLBACK` is sent — a COPY may still be running on the connection, and a ROLLBACK
 * would wait behind it forever — the connection's socket is cut instead, which makes PostgreSQL roll
 * back; its scope (`PgBulk.connection`, `pooledConnection`) then discards it. `what` names the
 * transaction in error messages.
 */
export const committedTransaction = <A, E, R>(
  client: pg.Client,
  use: Effect.Effect<A, E, R>,
  what = "the transaction"
): Effect.Effect<A, E | DatabaseError, R> =>
  Effect.acquireUseRelease(
    Effect.tryPromise({ try: () => client.query("BEGIN"), catch: databaseErrorOf(`could not begin ${what}`) }),
    () => use,
    (_, exit) =>
      Exit.isSuccess(exit)
        ? Effect.tryPromise({
            try: () => client.query("COMMIT"),
            catch: databaseErrorOf(`could not commit ${what}`)
          }).pipe(Effect.asVoid)
        : Effect.sync(() => client.connection.stream.destroy())
  )

/**
 * A connection of its own, outside `PgBulk`'s pool but with its settings, named `applicationName`
 * in `pg_stat_activity`; the caller ends it. For work that keeps session state (session-level
 * advisory locks) or must never wait for the pool: a list write holds open COPYs while it waits for
 * its next connection, and writers doing that on a shared pool could deadlock.
 */
export const dedicatedClient = async (bulk: PgBulk["Service"], applicationName: string): Promise<pg.Client> => {
  const client = new pg.Client({ ...bulk.pool.options, application_name: applicationName })
  // A connection that dies while idle emits "error"; without a listener it kills the process.
  client.on("error", () => undefined)
  await client.connect()
  return client
}
