/**
 * The S3 backend of FileStore (`S3_BUCKET`; any S3-compatible endpoint such as fauxqs or MinIO).
 * Uploads are multipart and stream their body; S3 only shows an object once its upload completed,
 * so a failed or aborted write leaves the previous object (or none).
 *
 * Crashes and the bucket's lifecycle rule. A body larger than one part (5 MiB) is uploaded as a
 * multipart upload (`@aws-sdk/lib-storage`; a smaller one is a single PutObject). A failed, aborted
 * or interrupted upload is aborted here (`leavePartsOnError: false`, `abort` on the writer), but a
 * process killed mid-upload (SIGKILL, OOM, lost host) leaves its multipart upload open: its parts are
 * invisible (never an object, never listed by `list`) yet stored and billed until aborted. So the
 * bucket NEEDS a lifecycle rule that aborts incomplete multipart uploads, for example
 * `{"Rules":[{"ID":"abort-incomplete-uploads","Status":"Enabled","Filter":{"Prefix":""},
 * "AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}}]}`
 * (`aws s3api put-bucket-lifecycle-configuration --bucket <bucket> --lifecycle-configuration file://rule.json`).
 * One day is safe: no upload of this product stays open that long. There is no temporary object to
 * sweep otherwise: the local backend's hidden `.tmp` files have no S3 counterpart.
 *
 * Errors. The SDK's failures are wrapped in `S3Failure`, which names the object (`s3://bucket/key`)
 * for the logs; FileStore's `StorageError` keeps it as `cause` and shows only the error's name.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client
} from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import { Effect } from "effect"
import type { Scope } from "effect"
import { PassThrough, Readable } from "node:stream"
import { type Backend, Missing, writeTo } from "./Backend.ts"

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

/**
 * 5 MiB is S3's smallest part; with two parts in flight an upload holds ~15-25 MiB whatever the file
 * size. A killed process leaves its parts behind: see the lifecycle rule at the top of this file.
 */
const PART_SIZE = 5 * 1024 * 1024
const PARTS_IN_FLIGHT = 2

/** A 404 for the object; a missing bucket is a configuration problem (StorageError), not a missing file. */
const isMissingObject = (cause: unknown): boolean => {
  const error = cause as { name?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined
  return error?.name !== "NoSuchBucket" && error?.$metadata?.httpStatusCode === 404
}

/** An S3 service error with the object it was about, for the logs; `code` is the SDK error's name. */
export class S3Failure extends Error {
  readonly code: string
  constructor(location: string, cause: Error) {
    super(`${location}: ${cause.name}: ${cause.message}`, { cause })
    this.name = "S3Failure"
    this.code = cause.name
  }
}

/** Wraps an S3 service error (it has `$metadata`) in `S3Failure`; anything else (a body's own error) passes. */
const locatedAt = (location: string, cause: unknown): unknown =>
  cause instanceof Error && "$metadata" in cause ? new S3Failure(location, cause) : cause

/** The backend over `options.bucket`; its client is destroyed when the scope closes. */
export const makeS3Backend = (options: S3Options): Effect.Effect<Backend, never, Scope.Scope> =>
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
    const at = (key: string) => (cause: unknown) => locatedAt(`s3://${bucket}/${objectKey(key)}`, cause)

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
          throw sourceError ?? at(key)(cause)
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
          throw at(key)(cause)
        }
      },
      size: async (key) => {
        try {
          const output = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(key) }))
          return output.ContentLength ?? 0
        } catch (cause) {
          if (isMissingObject(cause)) return undefined
          throw at(key)(cause)
        }
      },
      delete: async (key) => {
        await client
          .send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }))
          .catch((cause: unknown) => Promise.reject(at(key)(cause)))
      },
      list: async (prefix) => {
        const keys: Array<string> = []
        const strip = root === "" ? 0 : root.length + 1
        let continuationToken: string | undefined
        do {
          const page = await client
            .send(
              new ListObjectsV2Command({
                Bucket: bucket,
                Prefix: objectKey(prefix),
                ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken })
              })
            )
            .catch((cause: unknown) => Promise.reject(at(prefix)(cause)))
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
            failure ??= at(key)(cause)
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
    return backend
  })
