/**
 * Where uploaded lists, cleaned lists and exports live: a local directory (the default,
 * `.optimizer/files`) or an S3 bucket (`S3_BUCKET`), behind one interface (SPEC.md §3.3).
 *
 * - Files are addressed by keys the product builds (`raw/<uuid>.csv`, `exports/<table>_<ts>.csv`),
 *   never by a client-supplied path; a key that could escape the root is a `ValidationError`.
 * - Everything streams both ways, so memory stays flat whatever the file size: `put` and
 *   `openWriter` consume their input as it comes, `get` / `stream` / `webStream` hand out chunks.
 * - A write is all or nothing: the local backend writes a hidden temporary file next to the target
 *   and renames it (atomic on one file system); S3 only shows an object once its upload completed.
 *   A failed or aborted write leaves the previous content of the key (or no file) — never half a file.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client
} from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import { Context, Effect, Layer, Stream } from "effect"
import type { Scope } from "effect"
import { randomUUID } from "node:crypto"
import { createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { PassThrough, Readable, type Writable } from "node:stream"
import { finished, pipeline } from "node:stream/promises"
import { AppConfig } from "./Config.ts"
import { NotFound, PayloadTooLarge, StorageError, ValidationError } from "./Errors.ts"

/** What `put` accepts: a whole body, or chunks as they arrive (a Node Readable, a web ReadableStream, a generator). */
export type FileBody = AsyncIterable<Uint8Array | string> | Uint8Array | string

export interface PutOptions {
  /** Stop reading and fail with `PayloadTooLarge` once the body is longer than this. */
  readonly maxBytes?: number
  /** Stored as the object's Content-Type on S3; ignored by the local backend. */
  readonly contentType?: string
}

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
  /** Resolves when the chunk is buffered; waits while the storage is behind (backpressure). */
  readonly write: (chunk: string | Uint8Array) => Promise<void>
  /** Finishes the file and makes it visible under the key. */
  readonly close: () => Promise<StoredFile>
  /** Discards what was written. Does nothing after `close` or a previous `abort`. */
  readonly abort: () => Promise<void>
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
  static readonly layer: Layer.Layer<FileStore, StorageError, AppConfig> = Layer.effect(
    FileStore,
    Effect.gen(function* () {
      const { storage } = yield* AppConfig
      if (storage.kind === "s3" && storage.s3Bucket !== undefined) {
        return yield* makeS3({
          bucket: storage.s3Bucket,
          region: storage.s3Region,
          prefix: storage.s3Prefix,
          ...(storage.s3Endpoint === undefined ? {} : { endpoint: storage.s3Endpoint })
        })
      }
      return yield* makeLocal(storage.dir)
    })
  )

  /** Files under `dir` (resolved against the working directory, created when missing). */
  static readonly layerLocal = (dir: string): Layer.Layer<FileStore, StorageError> =>
    Layer.effect(FileStore, makeLocal(dir))

  static readonly layerS3 = (options: S3Options): Layer.Layer<FileStore> => Layer.effect(FileStore, makeS3(options))
}

export interface S3Options {
  readonly bucket: string
  readonly region: string
  /** An S3-compatible endpoint (fauxqs, MinIO); switches to path-style addressing. */
  readonly endpoint?: string
  /** Folder inside the bucket that holds every key (no leading or trailing slash). */
  readonly prefix?: string
  /** Default: the standard AWS chain (environment, profile, instance role). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string }
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
// What each backend implements, in plain Promises; `fromBackend` adds validation, error mapping and spans.

interface Backend {
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

interface RawWriter {
  /** Accepts a chunk; resolves at once unless the destination asks to wait. */
  readonly write: (chunk: Uint8Array) => Promise<void>
  readonly close: () => Promise<void>
  readonly abort: () => Promise<void>
}

/** Thrown inside a backend for a missing file; becomes `NotFound`. */
class Missing extends Error {}
/** Thrown by the byte counter once a body passes `maxBytes`; becomes `PayloadTooLarge`. */
class TooLarge extends Error {
  readonly limitBytes: number
  constructor(limitBytes: number) {
    super(`the file is larger than the limit of ${limitBytes} bytes`)
    this.limitBytes = limitBytes
  }
}

const errorText = (cause: unknown): string => {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    return typeof code === "string" && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message
  }
  return String(cause)
}

const storageError = (what: string, cause: unknown): StorageError =>
  cause instanceof StorageError ? cause : new StorageError({ message: `${what}: ${errorText(cause)}`, cause })

const RESOLVED: Promise<void> = Promise.resolve()
const WRITE_BATCH_BYTES = 64 * 1024

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

/** Turns errors raised while a caller iterates into `StorageError`. */
async function* readingErrorsAsStorageError(
  key: string,
  source: AsyncIterable<Uint8Array>
): AsyncGenerator<Uint8Array> {
  try {
    yield* source
  } catch (cause) {
    throw storageError(`could not read file ${key}`, cause)
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
          : storageError(`could not store file ${key}`, cause)
    }).pipe(
      Effect.onInterrupt(() => Effect.promise(() => running)),
      Effect.map((): StoredFile => ({ key, bytes: counter.bytes }))
    )
  })

  const openFile = (key: string): Effect.Effect<AsyncIterable<Uint8Array>, NotFound | StorageError> =>
    Effect.tryPromise({
      try: () => backend.open(key),
      catch: (cause) => (cause instanceof Missing ? notFound(key) : storageError(`could not read file ${key}`, cause))
    })

  const get = Effect.fn("FileStore.get")(function* (key: string) {
    yield* validateKey(key)
    const source = yield* openFile(key)
    return readingErrorsAsStorageError(key, source) as AsyncIterable<Uint8Array>
  })

  const stream = (key: string): Stream.Stream<Uint8Array, ValidationError | NotFound | StorageError> =>
    Stream.unwrap(
      validateKey(key).pipe(
        Effect.andThen(openFile(key)),
        Effect.map((source) =>
          Stream.fromAsyncIterable(source, (cause) => storageError(`could not read file ${key}`, cause))
        )
      )
    )

  const webStream = Effect.fn("FileStore.webStream")(function* (key: string) {
    const source = yield* get(key)
    return toWebStream(source)
  })

  const readText = Effect.fn("FileStore.readText")(function* (key: string) {
    const source = yield* get(key)
    return yield* attempt(`could not read file ${key}`, async () => {
      const chunks: Array<Uint8Array> = []
      for await (const chunk of source) chunks.push(chunk)
      return Buffer.concat(chunks).toString("utf8")
    })
  })

  const size = Effect.fn("FileStore.size")(function* (key: string) {
    yield* validateKey(key)
    const bytes = yield* attempt(`could not read the size of file ${key}`, () => backend.size(key))
    if (bytes === undefined) return yield* notFound(key)
    return bytes
  })

  const exists = Effect.fn("FileStore.exists")(function* (key: string) {
    yield* validateKey(key)
    const bytes = yield* attempt(`could not look up file ${key}`, () => backend.size(key))
    return bytes !== undefined
  })

  const del = Effect.fn("FileStore.delete")(function* (key: string) {
    yield* validateKey(key)
    yield* attempt(`could not delete file ${key}`, () => backend.delete(key))
  })

  const list = Effect.fn("FileStore.list")(function* (prefix: string) {
    yield* validatePrefix(prefix)
    const keys = yield* attempt(`could not list files under ${prefix}`, () => backend.list(prefix))
    return keys.sort() as ReadonlyArray<string>
  })

  const openWriter = Effect.fn("FileStore.openWriter")(function* (key: string, options?: WriterOptions) {
    yield* validateKey(key)
    const raw = yield* attempt(`could not open file ${key} for writing`, () =>
      backend.openWriter(key, options?.contentType)
    )
    let state: "open" | "closing" | "closed" | "aborted" = "open"
    let bytes = 0
    // Writes are gathered and handed down ~64 KiB at a time: a stream write per line would cost more
    // than the line. Strings are joined as strings and encoded once per batch (about 3x faster than
    // encoding each line into a buffer).
    let text = ""
    let parts: Array<Uint8Array> = []
    let partsBytes = 0
    let failure: StorageError | undefined
    const refuse = (what: string) =>
      Promise.reject(new StorageError({ message: `file ${key} is ${state}: cannot ${what}` }))
    const handDown = (data: Uint8Array): Promise<void> =>
      raw.write(data).catch((cause: unknown) => {
        failure ??= storageError(`could not write file ${key}`, cause)
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
    const writer: FileWriter = {
      write: (chunk) => {
        if (state !== "open") return refuse("write to it")
        if (failure !== undefined) return Promise.reject(failure)
        if (typeof chunk === "string") {
          text += chunk
          return text.length < WRITE_BATCH_BYTES ? RESOLVED : flush()
        }
        encodeText()
        // A copy: the caller may reuse its buffer as soon as the write resolves.
        keep(Buffer.from(chunk))
        return partsBytes < WRITE_BATCH_BYTES ? RESOLVED : flush()
      },
      close: async () => {
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
          throw storageError(`could not write file ${key}`, cause)
        }
      },
      abort: async () => {
        if (state !== "open") return
        state = "aborted"
        await raw.abort().catch(() => undefined)
      }
    }
    yield* Effect.addFinalizer(() => Effect.promise(() => writer.abort()))
    return writer
  })

  return { put, get, stream, webStream, readText, exists, size, delete: del, list, openWriter }
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

const writeTo = async (stream: Writable, chunk: Uint8Array): Promise<void> => {
  if (stream.errored) throw stream.errored
  if (stream.destroyed) throw new Error("the stream is closed")
  if (!stream.write(chunk)) await waitForDrain(stream)
}

// ---------------------------------------------------------------------------------------------
// Local directory

const isCode = (cause: unknown, ...codes: Array<string>): boolean =>
  codes.includes((cause as { code?: unknown } | undefined)?.code as string)

const temporaryPathFor = (target: string): string =>
  path.join(path.dirname(target), `.${path.basename(target)}.${randomUUID()}.tmp`)

const makeLocal = (dir: string): Effect.Effect<FileStore["Service"], StorageError> =>
  Effect.gen(function* () {
    const root = path.resolve(dir)
    yield* Effect.tryPromise({
      try: () => fs.mkdir(root, { recursive: true }),
      catch: (cause) => storageError(`could not create the storage folder ${root}`, cause)
    })
    // Keys are validated first, so the joined path always stays under root.
    const pathOf = (key: string) => path.join(root, ...key.split("/"))

    const backend: Backend = {
      describe: "local",
      put: async (key, body, _contentType, signal) => {
        const target = pathOf(key)
        await fs.mkdir(path.dirname(target), { recursive: true })
        const temporary = temporaryPathFor(target)
        try {
          // flush: fsync before close, so a crash after the rename cannot leave an empty file.
          await pipeline(body, createWriteStream(temporary, { flush: true }), { signal })
          await fs.rename(temporary, target)
        } catch (cause) {
          await fs.rm(temporary, { force: true })
          throw cause
        }
      },
      open: async (key) => {
        let handle: fs.FileHandle
        try {
          handle = await fs.open(pathOf(key), "r")
        } catch (cause) {
          if (isCode(cause, "ENOENT", "ENOTDIR")) throw new Missing()
          throw cause
        }
        // An open handle keeps reading the same file even if a newer version is renamed over it.
        if (!(await handle.stat()).isFile()) {
          await handle.close()
          throw new Missing()
        }
        return handle.createReadStream({ highWaterMark: 64 * 1024 })
      },
      size: async (key) => {
        try {
          const stat = await fs.stat(pathOf(key))
          return stat.isFile() ? stat.size : undefined
        } catch (cause) {
          if (isCode(cause, "ENOENT", "ENOTDIR")) return undefined
          throw cause
        }
      },
      delete: async (key) => {
        try {
          await fs.unlink(pathOf(key))
        } catch (cause) {
          if (!isCode(cause, "ENOENT", "ENOTDIR")) throw cause
        }
      },
      list: async (prefix) => {
        const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : ""
        const start = folder === "" ? root : pathOf(folder)
        let entries
        try {
          entries = await fs.readdir(start, { recursive: true, withFileTypes: true })
        } catch (cause) {
          if (isCode(cause, "ENOENT", "ENOTDIR")) return []
          throw cause
        }
        const keys: Array<string> = []
        for (const entry of entries) {
          if (!entry.isFile()) continue
          const key = path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join("/")
          // Hidden names are temporary files of writes in progress.
          if (key.startsWith(prefix) && !key.split("/").some((segment) => segment.startsWith("."))) keys.push(key)
        }
        return keys
      },
      openWriter: async (key) => {
        const target = pathOf(key)
        await fs.mkdir(path.dirname(target), { recursive: true })
        const temporary = temporaryPathFor(target)
        const file = createWriteStream(temporary, { flush: true, highWaterMark: 256 * 1024 })
        file.on("error", () => undefined) // surfaced through write/close
        return {
          write: (chunk) => writeTo(file, chunk),
          close: async () => {
            file.end()
            await finished(file)
            await fs.rename(temporary, target)
          },
          abort: async () => {
            file.destroy()
            await finished(file).catch(() => undefined)
            await fs.rm(temporary, { force: true })
          }
        }
      }
    }
    return fromBackend(backend)
  })

// ---------------------------------------------------------------------------------------------
// S3

/**
 * 5 MiB is S3's smallest part; with two parts in flight an upload holds ~15-25 MiB whatever the file
 * size. A failed or interrupted upload is aborted (`leavePartsOnError: false`), but a killed process
 * leaves its parts behind: give the bucket an AbortIncompleteMultipartUpload lifecycle rule.
 */
const PART_SIZE = 5 * 1024 * 1024
const PARTS_IN_FLIGHT = 2

/** A 404 for the object; a missing bucket is a configuration problem (StorageError), not a missing file. */
const isMissingObject = (cause: unknown): boolean => {
  const error = cause as { name?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined
  return error?.name !== "NoSuchBucket" && error?.$metadata?.httpStatusCode === 404
}

const makeS3 = (options: S3Options): Effect.Effect<FileStore["Service"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const client = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new S3Client({
            region: options.region,
            ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint, forcePathStyle: true }),
            ...(options.credentials === undefined ? {} : { credentials: { ...options.credentials } })
          })
      ),
      (c) => Effect.sync(() => c.destroy())
    )
    const bucket = options.bucket
    const root = (options.prefix ?? "").replace(/^\/+|\/+$/g, "")
    const objectKey = (key: string) => (root === "" ? key : `${root}/${key}`)

    const upload = (key: string, body: Readable, contentType: string | undefined) =>
      new Upload({
        client,
        params: {
          Bucket: bucket,
          Key: objectKey(key),
          Body: body,
          ...(contentType === undefined ? {} : { ContentType: contentType })
        },
        partSize: PART_SIZE,
        queueSize: PARTS_IN_FLIGHT,
        leavePartsOnError: false
      })

    const backend: Backend = {
      describe: "s3",
      put: async (key, body, contentType, signal) => {
        const source = Readable.from(body, { objectMode: false, highWaterMark: 64 * 1024 })
        const task = upload(key, source, contentType)
        const onAbort = () => void task.abort().catch(() => undefined)
        signal.addEventListener("abort", onAbort, { once: true })
        // An error of the body (TooLarge) makes the upload fail and abort its multipart upload.
        let sourceError: unknown
        source.on("error", (error) => {
          sourceError = error
        })
        try {
          await task.done()
        } catch (cause) {
          throw sourceError ?? cause
        } finally {
          signal.removeEventListener("abort", onAbort)
          source.destroy()
        }
      },
      open: async (key) => {
        try {
          const output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(key) }))
          return output.Body as Readable
        } catch (cause) {
          if (isMissingObject(cause)) throw new Missing()
          throw cause
        }
      },
      size: async (key) => {
        try {
          const output = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(key) }))
          return output.ContentLength ?? 0
        } catch (cause) {
          if (isMissingObject(cause)) return undefined
          throw cause
        }
      },
      delete: async (key) => {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }))
      },
      list: async (prefix) => {
        const keys: Array<string> = []
        const strip = root === "" ? 0 : root.length + 1
        let continuationToken: string | undefined
        do {
          const page = await client.send(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: objectKey(prefix),
              ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken })
            })
          )
          for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key.slice(strip))
          continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
        } while (continuationToken !== undefined)
        return keys
      },
      openWriter: async (key, contentType) => {
        const pipe = new PassThrough({ highWaterMark: 256 * 1024 })
        const task = upload(key, pipe, contentType)
        let failure: unknown
        const done = task.done().then(
          () => undefined,
          (cause: unknown) => {
            failure ??= cause
            // Wakes a writer waiting for "drain" that would otherwise wait forever.
            pipe.destroy(cause instanceof Error ? cause : new Error(String(cause)))
          }
        )
        pipe.on("error", () => undefined) // surfaced through write/close
        return {
          write: async (chunk) => {
            if (failure !== undefined) throw failure
            try {
              await writeTo(pipe, chunk)
            } catch (cause) {
              throw failure ?? cause
            }
          },
          close: async () => {
            pipe.end()
            await done
            if (failure !== undefined) throw failure
          },
          abort: async () => {
            failure ??= new Error("aborted")
            await task.abort().catch(() => undefined)
            pipe.destroy()
            await done
          }
        }
      }
    }
    return fromBackend(backend)
  })
