/**
 * Where uploaded lists, cleaned lists and exports live: a local directory (the default,
 * `.optimizer/files`) or an S3 bucket (`S3_BUCKET`), behind one interface. This file is the service:
 * its types, key validation, and what every backend gets on top (errors, size limits, spans, the
 * batching writer); the backends are `file-store/LocalFileStore.ts` and `file-store/S3FileStore.ts`.
 *
 * - Files are addressed by keys the product builds (`raw/<uuid>.csv`, `exports/<table>_<ts>.csv`),
 *   never by a client-supplied path; a key that could escape the root is a `ValidationError`.
 * - Everything streams both ways, so memory stays flat whatever the file size: `put` and
 *   `openWriter` consume their input as it comes, `get` / `stream` / `webStream` hand out chunks.
 * - A write is all or nothing: the local backend writes a hidden temporary file next to the target
 *   and renames it (atomic on one file system); S3 only shows an object once its upload completed.
 *   A failed or aborted write leaves the previous content of the key (or no file) — never half a file.
 */
import { Context, Effect, Layer, Stream } from "effect"
import type { Scope } from "effect"
import { AppConfig } from "./Config.ts"
import { NotFound, PayloadTooLarge, StorageError, ValidationError } from "./Errors.ts"
import {
  type Backend,
  batchingWriter,
  type FileWriter,
  Missing,
  storageError,
  type StoredFile,
  TooLarge
} from "./file-store/Backend.ts"

export type { FileWriter, StoredFile } from "./file-store/Backend.ts"
import { type LocalStoreOptions, makeLocalBackend } from "./file-store/LocalFileStore.ts"
import type { S3Options } from "./file-store/S3FileStore.ts"

export type { S3Options } from "./file-store/S3FileStore.ts"

/**
 * The S3 backend, loaded when a store on S3 is built: the AWS SDK is a large module graph that a
 * process keeping its files on local disk (or using no file store) never loads.
 */
const makeS3Backend = (options: S3Options): Effect.Effect<Backend, never, Scope.Scope> =>
  Effect.flatMap(
    Effect.promise(() => import("./file-store/S3FileStore.ts")),
    (s3) => s3.makeS3Backend(options)
  )
export { localFileWriter, type LocalStoreOptions, type LocalWriteOptions } from "./file-store/LocalFileStore.ts"

/** Settings of the FileStore layer that are not in the environment (`AppConfig.storage`). */
export interface FileStoreOptions {
  /** The local backend's sweep of temporary files left by crashed writes (default: 1 hour, hourly). */
  readonly local?: LocalStoreOptions
}

/** What `put` accepts: a whole body, or chunks as they arrive (a Node Readable, a web ReadableStream, a generator). */
export type FileBody = AsyncIterable<Uint8Array | string> | Uint8Array | string

export interface PutOptions {
  /** Stop reading and fail with `PayloadTooLarge` once the body is longer than this. */
  readonly maxBytes?: number
  /** Stored as the object's Content-Type on S3; ignored by the local backend. */
  readonly contentType?: string
}

export interface WriterOptions {
  readonly contentType?: string
}

export class FileStore extends Context.Service<
  FileStore,
  {
    /** Streams `body` into the file `key`, replacing it when present. */
    readonly put: (
      key: string,
      body: FileBody,
      options?: PutOptions
    ) => Effect.Effect<StoredFile, ValidationError | StorageError | PayloadTooLarge>
    /**
     * The file's bytes as they are read. Iterate it to the end or stop early (`break` releases the
     * file); an iterable that is never iterated holds a file handle or connection. Errors while
     * iterating are `StorageError`. Effect code should prefer `stream`.
     */
    readonly get: (key: string) => Effect.Effect<AsyncIterable<Uint8Array>, ValidationError | NotFound | StorageError>
    /** The file's bytes as an Effect stream; the file is released when the stream ends or is interrupted. */
    readonly stream: (key: string) => Stream.Stream<Uint8Array, ValidationError | NotFound | StorageError>
    /** The file as a web `ReadableStream` (an HTTP download body), read as the client consumes it. */
    readonly webStream: (
      key: string
    ) => Effect.Effect<ReadableStream<Uint8Array>, ValidationError | NotFound | StorageError>
    /** The whole file as UTF-8 text: for small files only. */
    readonly readText: (key: string) => Effect.Effect<string, ValidationError | NotFound | StorageError>
    readonly exists: (key: string) => Effect.Effect<boolean, ValidationError | StorageError>
    /** Size in bytes. */
    readonly size: (key: string) => Effect.Effect<number, ValidationError | NotFound | StorageError>
    /** Removes the file; a missing file is not an error. */
    readonly delete: (key: string) => Effect.Effect<void, ValidationError | StorageError>
    /** Every key starting with `prefix` (a plain string prefix: `raw/` lists everything under raw), sorted. */
    readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<string>, ValidationError | StorageError>
    /** A writer for `key`; closing the scope before `close` discards the file. */
    readonly openWriter: (
      key: string,
      options?: WriterOptions
    ) => Effect.Effect<FileWriter, ValidationError | StorageError, Scope.Scope>
  }
>()("@optimizer/core/platform/FileStore") {
  /** The backend chosen by `AppConfig.storage`: S3 when `S3_BUCKET` is set, else the local directory. */
  static readonly layerWith = (options: FileStoreOptions): Layer.Layer<FileStore, StorageError, AppConfig> =>
    Layer.effect(
      FileStore,
      Effect.gen(function* () {
        const { storage } = yield* AppConfig
        if (storage.kind === "s3" && storage.s3Bucket !== undefined) {
          return fromBackend(
            yield* makeS3Backend({
              bucket: storage.s3Bucket,
              region: storage.s3Region,
              prefix: storage.s3Prefix,
              ...(storage.s3Endpoint === undefined ? {} : { endpoint: storage.s3Endpoint })
            })
          )
        }
        return fromBackend(yield* makeLocalBackend(storage.dir, options.local))
      })
    )

  /** `layerWith` with the default options. */
  static readonly layer: Layer.Layer<FileStore, StorageError, AppConfig> = FileStore.layerWith({})

  /** Files under `dir` (resolved against the working directory, created when missing). */
  static readonly layerLocal = (dir: string, options?: LocalStoreOptions): Layer.Layer<FileStore, StorageError> =>
    Layer.effect(FileStore, Effect.map(makeLocalBackend(dir, options), fromBackend))

  static readonly layerS3 = (options: S3Options): Layer.Layer<FileStore> =>
    Layer.effect(FileStore, Effect.map(makeS3Backend(options), fromBackend))
}

// ---------------------------------------------------------------------------------------------
// Keys

const SEGMENT = "[A-Za-z0-9_-][A-Za-z0-9._-]*"
/** Segments may not start with a dot: this rules out `.` and `..` and keeps the temporary files (`.name.tmp`) out of reach. */
const KEY_PATTERN = new RegExp(`^${SEGMENT}(/${SEGMENT})*$`)
const PREFIX_PATTERN = new RegExp(`^(${SEGMENT}/)*(${SEGMENT})?$`)
/** S3's limit on key length. */
const MAX_KEY_LENGTH = 1024

const invalidKey = (key: string, what: string) =>
  new ValidationError({
    message: `invalid file ${what} ${JSON.stringify(key.slice(0, 200))}: use relative paths of letters, digits, ".", "_", "-" and "/" with no empty, "." or ".." segments`,
    field: what
  })

const validateKey = (key: string): Effect.Effect<string, ValidationError> =>
  typeof key === "string" && key.length <= MAX_KEY_LENGTH && KEY_PATTERN.test(key)
    ? Effect.succeed(key)
    : Effect.fail(invalidKey(String(key), "key"))

const validatePrefix = (prefix: string): Effect.Effect<string, ValidationError> =>
  typeof prefix === "string" && prefix.length <= MAX_KEY_LENGTH && PREFIX_PATTERN.test(prefix)
    ? Effect.succeed(prefix)
    : Effect.fail(invalidKey(String(prefix), "prefix"))

// ---------------------------------------------------------------------------------------------
// The service over a backend

const toBytes = (chunk: Uint8Array | string): Uint8Array =>
  typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk

/** Normalises a body to chunks of bytes, counting them and giving up past `maxBytes`. */
async function* countedChunks(
  body: FileBody,
  maxBytes: number | undefined,
  counter: { bytes: number }
): AsyncGenerator<Uint8Array> {
  const source: Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string> =
    typeof body === "string" || body instanceof Uint8Array ? [body] : body
  for await (const chunk of source) {
    const bytes = toBytes(chunk)
    counter.bytes += bytes.byteLength
    // Returning from the loop by throwing calls the source's `return()`: a request body stops being read.
    if (maxBytes !== undefined && counter.bytes > maxBytes) throw new TooLarge(maxBytes)
    if (bytes.byteLength > 0) yield bytes
  }
}

/**
 * StorageError messages say what failed, never where: they reach API responses and job errors. The
 * path or S3 location stays in the error's `cause` (see `storageError`).
 */
const READ_FAILED = "could not read a stored file"

/** Turns errors raised while a caller iterates into `StorageError`. */
async function* readingErrorsAsStorageError(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* source
  } catch (cause) {
    throw storageError(READ_FAILED, cause)
  }
}

const toWebStream = (source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> => {
  const iterator = source[Symbol.asyncIterator]()
  // Pull-based: the next chunk is read only when the consumer asks for it.
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next()
        if (next.done) controller.close()
        else controller.enqueue(next.value)
      } catch (cause) {
        controller.error(cause)
      }
    },
    async cancel() {
      await iterator.return?.()
    }
  })
}

/** The service over a backend: validation, error mapping and spans. */
const fromBackend = (backend: Backend): FileStore["Service"] => {
  const attempt = <A>(what: string, run: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, StorageError> =>
    Effect.tryPromise({ try: run, catch: (cause) => storageError(what, cause) })

  const notFound = (key: string) => new NotFound({ message: `file ${key} not found` })

  const put = Effect.fn("FileStore.put")(function* (key: string, body: FileBody, options?: PutOptions) {
    yield* validateKey(key)
    yield* Effect.annotateCurrentSpan({ key, backend: backend.describe })
    const counter = { bytes: 0 }
    // Interruption aborts the write through the signal; it then waits for the backend's own clean-up
    // (removing the temporary file, aborting the multipart upload), so nothing is left behind once
    // the interrupted fiber has finished.
    let running: Promise<unknown> = Promise.resolve()
    return yield* Effect.tryPromise({
      try: (signal) => {
        const written = backend.put(key, countedChunks(body, options?.maxBytes, counter), options?.contentType, signal)
        running = written.catch(() => undefined)
        return written
      },
      catch: (cause): StorageError | PayloadTooLarge =>
        cause instanceof TooLarge
          ? new PayloadTooLarge({ message: cause.message, limitBytes: cause.limitBytes })
          : storageError("could not store a file", cause)
    }).pipe(
      Effect.onInterrupt(() => Effect.promise(() => running)),
      Effect.map((): StoredFile => ({ key, bytes: counter.bytes }))
    )
  })

  const openFile = (key: string): Effect.Effect<AsyncIterable<Uint8Array>, NotFound | StorageError> =>
    Effect.tryPromise({
      try: () => backend.open(key),
      catch: (cause) => (cause instanceof Missing ? notFound(key) : storageError(READ_FAILED, cause))
    })

  const get = Effect.fn("FileStore.get")(function* (key: string) {
    yield* validateKey(key)
    const source = yield* openFile(key)
    return readingErrorsAsStorageError(source) as AsyncIterable<Uint8Array>
  })

  const stream = (key: string): Stream.Stream<Uint8Array, ValidationError | NotFound | StorageError> =>
    Stream.unwrap(
      validateKey(key).pipe(
        Effect.andThen(openFile(key)),
        Effect.map((source) => Stream.fromAsyncIterable(source, (cause) => storageError(READ_FAILED, cause)))
      )
    )

  const webStream = Effect.fn("FileStore.webStream")(function* (key: string) {
    const source = yield* get(key)
    return toWebStream(source)
  })

  const readText = Effect.fn("FileStore.readText")(function* (key: string) {
    const source = yield* get(key)
    return yield* attempt(READ_FAILED, async () => {
      const chunks: Array<Uint8Array> = []
      for await (const chunk of source) chunks.push(chunk)
      return Buffer.concat(chunks).toString("utf8")
    })
  })

  const size = Effect.fn("FileStore.size")(function* (key: string) {
    yield* validateKey(key)
    const bytes = yield* attempt("could not read the size of a stored file", () => backend.size(key))
    if (bytes === undefined) return yield* notFound(key)
    return bytes
  })

  const exists = Effect.fn("FileStore.exists")(function* (key: string) {
    yield* validateKey(key)
    const bytes = yield* attempt("could not look up a stored file", () => backend.size(key))
    return bytes !== undefined
  })

  const del = Effect.fn("FileStore.delete")(function* (key: string) {
    yield* validateKey(key)
    yield* attempt("could not delete a stored file", () => backend.delete(key))
  })

  const list = Effect.fn("FileStore.list")(function* (prefix: string) {
    yield* validatePrefix(prefix)
    const keys = yield* attempt("could not list the stored files", () => backend.list(prefix))
    return keys.sort() as ReadonlyArray<string>
  })

  const openWriter = Effect.fn("FileStore.openWriter")(function* (key: string, options?: WriterOptions) {
    yield* validateKey(key)
    const raw = yield* attempt("could not open a file for writing", () => backend.openWriter(key, options?.contentType))
    const writer = batchingWriter(key, raw)
    yield* Effect.addFinalizer(() => Effect.promise(() => writer.abort()))
    return writer
  })

  return { put, get, stream, webStream, readText, exists, size, delete: del, list, openWriter }
}
