/**
 * What a FileStore backend implements, in plain Promises, and what backends and the service share:
 * the error mapping, Node stream writes with backpressure, and the batching `FileWriter` over a
 * backend's raw writer. `FileStore.ts` adds key validation, error types and spans on top.
 */
import type { Writable } from "node:stream"
import { StorageError } from "../Errors.ts"

export interface StoredFile {
  readonly key: string
  readonly bytes: number
}

/**
 * Writes one file piece by piece (the cleaning job writes millions of lines). Nothing is visible
 * under the key until `close` resolves; `abort`, a failure, or closing the scope first discards it.
 * The Promises reject with `StorageError`.
 */
export interface FileWriter {
  /**
   * Resolves when the chunk is buffered; waits while the storage is behind (backpressure). Bytes are
   * copied (the caller may reuse its buffer once the write resolves) unless `handOver` says the caller
   * will never touch them again: then the writer keeps the chunk itself.
   */
  readonly write: (chunk: string | Uint8Array, options?: { readonly handOver?: boolean }) => Promise<void>
  /** Finishes the file and makes it visible under the key. */
  readonly close: () => Promise<StoredFile>
  /** Discards what was written. Does nothing after `close` or a previous `abort`. */
  readonly abort: () => Promise<void>
}

export interface Backend {
  readonly describe: string
  readonly put: (
    key: string,
    body: AsyncIterable<Uint8Array>,
    contentType: string | undefined,
    signal: AbortSignal
  ) => Promise<void>
  /** Rejects with `Missing` when there is no such file. */
  readonly open: (key: string) => Promise<AsyncIterable<Uint8Array>>
  /** `undefined` when there is no such file. */
  readonly size: (key: string) => Promise<number | undefined>
  readonly delete: (key: string) => Promise<void>
  readonly list: (prefix: string) => Promise<Array<string>>
  readonly openWriter: (key: string, contentType: string | undefined) => Promise<RawWriter>
}

export interface RawWriter {
  /** Accepts a chunk; resolves at once unless the destination asks to wait. */
  readonly write: (chunk: Uint8Array) => Promise<void>
  readonly close: () => Promise<void>
  readonly abort: () => Promise<void>
}

/** Thrown inside a backend for a missing file; becomes `NotFound`. */
export class Missing extends Error {}

/** Thrown by the byte counter once a body passes `maxBytes`; becomes `PayloadTooLarge`. */
export class TooLarge extends Error {
  readonly limitBytes: number
  constructor(limitBytes: number) {
    super(`the file is larger than the limit of ${limitBytes} bytes`)
    this.limitBytes = limitBytes
  }
}

/**
 * A short name of what went wrong that carries no path, bucket or key: Node's error code (`ENOSPC`,
 * `EACCES`) or the S3 error's name (`NoSuchBucket`, `AccessDenied`). Node's and S3's messages are
 * left out on purpose: they name the local path (`open '/srv/files/raw/…'`) or the bucket.
 */
const failureCode = (cause: unknown): string | undefined => {
  if (typeof cause !== "object" || cause === null) return undefined
  const { code, name } = cause as { code?: unknown; name?: unknown }
  const candidate = typeof code === "string" ? code : typeof name === "string" && name !== "Error" ? name : undefined
  return candidate !== undefined && /^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(candidate) ? candidate : undefined
}

/**
 * The `StorageError` for a failure of the file store. Its message says what failed and why in a few
 * words, never where (it reaches API responses and `job_status.error`); the failure itself, with
 * the local path or the S3 location, stays in `cause` for the logs.
 */
export const storageError = (what: string, cause: unknown): StorageError => {
  if (cause instanceof StorageError) return cause
  const code = failureCode(cause)
  return new StorageError({ message: code === undefined ? what : `${what} (${code})`, cause })
}

/** Resolves once `stream` accepted more data after a full buffer, or rejects if it failed meanwhile. */
const waitForDrain = (stream: Writable): Promise<void> =>
  new Promise((resolve, reject) => {
    const done = (error?: unknown) => {
      stream.off("drain", onDrain)
      stream.off("error", onError)
      stream.off("close", onClose)
      if (error === undefined) resolve()
      else reject(error)
    }
    const onDrain = () => done()
    const onError = (error: unknown) => done(error)
    const onClose = () => done(stream.errored ?? new Error("the stream closed before the write finished"))
    stream.on("drain", onDrain)
    stream.on("error", onError)
    stream.on("close", onClose)
  })

/** Writes a chunk to a Node stream, waiting for "drain" when its buffer is full. */
export const writeTo = async (stream: Writable, chunk: Uint8Array): Promise<void> => {
  if (stream.errored) throw stream.errored
  if (stream.destroyed) throw new Error("the stream is closed")
  if (!stream.write(chunk)) await waitForDrain(stream)
}

const RESOLVED: Promise<void> = Promise.resolve()
const WRITE_BATCH_BYTES = 64 * 1024

/**
 * The `FileWriter` over a backend's raw writer, for the file `key`: counts the bytes, refuses writes
 * after close or abort, and turns every failure into `StorageError`. Writes are gathered and handed
 * down ~64 KiB at a time: a stream write per line would cost more than the line. Strings are joined
 * as strings and encoded once per batch (about 3x faster than encoding each line into a buffer).
 */
export const batchingWriter = (key: string, raw: RawWriter): FileWriter => {
  let state: "open" | "closing" | "closed" | "aborted" = "open"
  let bytes = 0
  let text = ""
  let parts: Array<Uint8Array> = []
  let partsBytes = 0
  let failure: StorageError | undefined
  const refuse = (what: string) => Promise.reject(new StorageError({ message: `the file is ${state}: cannot ${what}` }))
  const handDown = (data: Uint8Array): Promise<void> =>
    raw.write(data).catch((cause: unknown) => {
      failure ??= storageError("could not write a file", cause)
      throw failure
    })
  const keep = (data: Uint8Array) => {
    parts.push(data)
    partsBytes += data.byteLength
    bytes += data.byteLength
  }
  const encodeText = () => {
    if (text === "") return
    keep(Buffer.from(text, "utf8"))
    text = ""
  }
  const flush = (): Promise<void> => {
    encodeText()
    if (partsBytes === 0) return RESOLVED
    const batch = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partsBytes)
    parts = []
    partsBytes = 0
    return handDown(batch)
  }
  return {
    write: (chunk, options) => {
      if (state !== "open") return refuse("write to it")
      if (failure !== undefined) return Promise.reject(failure)
      if (typeof chunk === "string") {
        text += chunk
        return text.length < WRITE_BATCH_BYTES ? RESOLVED : flush()
      }
      encodeText()
      // A copy: the caller may reuse its buffer as soon as the write resolves (unless handed over).
      keep(options?.handOver === true ? chunk : Buffer.from(chunk))
      return partsBytes < WRITE_BATCH_BYTES ? RESOLVED : flush()
    },
    close: async (): Promise<StoredFile> => {
      if (state !== "open") return refuse("close it")
      state = "closing"
      try {
        await flush()
        if (failure !== undefined) throw failure
        await raw.close()
        state = "closed"
        return { key, bytes }
      } catch (cause) {
        state = "aborted"
        await raw.abort().catch(() => undefined)
        throw storageError("could not write a file", cause)
      }
    },
    abort: async () => {
      if (state !== "open") return
      state = "aborted"
      await raw.abort().catch(() => undefined)
    }
  }
}
