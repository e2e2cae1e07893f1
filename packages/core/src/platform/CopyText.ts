/**
 * PostgreSQL's COPY text format, and the COPY streams that carry it (`pg-copy-streams` on a `pg`
 * connection from `PgBulk`): with `Database.ts`, the only module that drives the raw driver. Used by
 * the lists' bulk writes, the cleaning engine, the Voluum report sync and the table exports.
 *
 * The text format: one row per line ending in "\n", fields separated by tabs, `\N` for NULL, and
 * backslash, tab, newline and carriage return escaped — the only special characters.
 */
import { Effect, Stream } from "effect"
import type pg from "pg"
import { from as copyFrom, to as copyTo, type CopyToStreamQuery } from "pg-copy-streams"
import { checkIn, checkOut, toDatabaseError } from "./Database.ts"
import type { DatabaseError } from "./Errors.ts"

/** A value as a COPY text field (not NULL): its special characters escaped. */
export const escapeCopy = (value: string): string =>
  /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"))
    : value

/** A value as a COPY text field, `\N` for null or undefined. */
export const textField = (value: string | null | undefined): string =>
  value === null || value === undefined ? "\\N" : escapeCopy(value)

/** `count` lines as COPY text of ~256 KiB per chunk. */
export function* linesInChunks(count: number, line: (index: number) => string): Generator<string> {
  let buffer = ""
  for (let i = 0; i < count; i++) {
    buffer += line(i)
    if (buffer.length >= 256 * 1024) {
      yield buffer
      buffer = ""
    }
  }
  if (buffer.length > 0) yield buffer
}

/**
 * A `COPY … FROM STDIN` on `client`, fed chunk by chunk with backpressure. Its failure is kept:
 * `done` rejects with it (it is also handled, so an unawaited failure does not crash the process),
 * and every later `write` rejects with it.
 */
export class CopyIn {
  private failure: unknown
  /** The driver's stream (`errored` tells whether it has failed without waiting for `done`). */
  readonly stream: ReturnType<typeof copyFrom>
  /** Settles when the COPY has ended (after `end`) or failed. */
  readonly done: Promise<void>

  constructor(client: pg.ClientBase, statement: string) {
    this.stream = client.query(copyFrom(statement))
    this.done = new Promise<void>((resolve, reject) => {
      this.stream.on("finish", () => resolve())
      this.stream.on("error", (error) => {
        this.failure ??= error
        reject(error)
      })
    })
    this.done.catch(() => undefined)
  }

  /** Undefined when the connection took the chunk at once; else a promise of when it has room again. */
  write(chunk: string | Uint8Array): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    if (this.stream.write(chunk)) return undefined
    return new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.stream.off("error", onError)
        resolve()
      }
      const onError = (error: unknown) => {
        this.stream.off("drain", onDrain)
        reject(error)
      }
      this.stream.once("drain", onDrain)
      this.stream.once("error", onError)
    })
  }

  /** Ends the COPY (with a last chunk) and waits for the server to have taken it. */
  end(chunk?: string | Uint8Array): Promise<void> {
    if (chunk === undefined || chunk.length === 0) this.stream.end()
    else this.stream.end(chunk)
    return this.done
  }
}

/** Streams chunks of COPY text into a `COPY … FROM STDIN`, honouring backpressure. */
export const copyChunks = async (
  client: pg.ClientBase,
  statement: string,
  chunks: Iterable<string | Uint8Array>
): Promise<void> => {
  const copy = new CopyIn(client, statement)
  for (const chunk of chunks) {
    const wait = copy.write(chunk)
    if (wait !== undefined) await wait
  }
  await copy.end()
}

/** The output of a `COPY … TO STDOUT` on `client`, chunk by chunk (`rowCount` once it has ended). */
export const copyOut = (client: pg.ClientBase, statement: string): CopyToStreamQuery & AsyncIterable<Buffer> =>
  client.query(copyTo(statement))

/**
 * A `COPY … TO STDOUT` as a Stream, on a connection of `pool` held while it runs. A COPY stopped
 * half-way leaves the connection mid-protocol, so it is then discarded instead of returned to the pool.
 */
export const copyOutStream = (pool: pg.Pool, statement: string): Stream.Stream<Uint8Array, DatabaseError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      let finished = false
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => checkOut(pool), catch: (cause) => toDatabaseError(cause) }),
        (c) => Effect.sync(() => checkIn(c, finished))
      )
      const copy = copyOut(client, statement)
      copy.on("end", () => {
        finished = true
      })
      return Stream.fromAsyncIterable(copy, (cause) => toDatabaseError(cause))
    })
  )

/**
 * A `COPY … TO STDOUT` into `write`, chunk by chunk, on a connection of `pool` (discarded if the COPY
 * stops half-way, as in `copyOutStream`); the number of rows copied.
 */
export const copyOutTo = async (
  pool: pg.Pool,
  statement: string,
  write: (chunk: Uint8Array) => Promise<void>
): Promise<number> => {
  const client = await checkOut(pool)
  let clean = false
  try {
    const copy = copyOut(client, statement)
    for await (const chunk of copy) await write(chunk)
    clean = true
    return copy.rowCount ?? 0
  } finally {
    checkIn(client, clean)
  }
}
