/**
 * Multipart uploads (form field `file`, as the original) read as a stream: the file's bytes go
 * straight from the socket to the core operation (which writes them to the FileStore with its own
 * size limit), so a 1 GB upload never sits in memory. Fields other than `file` are ignored.
 */
import { Readable } from "node:stream"
import busboy from "busboy"
import { Effect } from "effect"
import type { Context as HonoContext } from "hono"
import { ValidationError } from "@optimizer/core"
import type { AppEnv } from "./http.ts"

export interface UploadedFile {
  /** The client's file name (only kept as a label: storage keys are ids). */
  readonly filename: string
  readonly mimeType: string
  /** The file's bytes, streamed from the request. Consume it once. */
  readonly stream: Readable
}

/** The request's `file` part, or a ValidationError naming what is wrong with the request. */
export const uploadedFile = (c: HonoContext<AppEnv>, options: { maxBytes?: number } = {}) =>
  Effect.callback<UploadedFile, ValidationError>((resume) => {
    const contentType = c.req.header("content-type") ?? ""
    if (!/^multipart\/form-data/i.test(contentType) || c.req.raw.body === null) {
      resume(
        Effect.fail(
          new ValidationError({ message: "expected a multipart/form-data upload with a 'file' field", field: "file" })
        )
      )
      return
    }
    let parser: busboy.Busboy
    try {
      parser = busboy({
        headers: { "content-type": contentType },
        // One byte over the limit is enough for the store to notice and answer 413.
        limits: { files: 1, fileSize: options.maxBytes === undefined ? Infinity : options.maxBytes + 1 }
      })
    } catch (e) {
      resume(
        Effect.fail(
          new ValidationError({ message: `malformed multipart request: ${(e as Error).message}`, field: "file" })
        )
      )
      return
    }
    let found = false
    parser.on("file", (name, stream, info) => {
      if (name !== "file" || found) {
        stream.resume()
        return
      }
      found = true
      resume(Effect.succeed({ filename: info.filename ?? "upload.csv", mimeType: info.mimeType, stream }))
    })
    parser.on("error", (e: Error) => {
      if (!found)
        resume(
          Effect.fail(new ValidationError({ message: `malformed multipart request: ${e.message}`, field: "file" }))
        )
    })
    parser.on("close", () => {
      if (!found) resume(Effect.fail(new ValidationError({ message: "the upload has no 'file' field", field: "file" })))
    })
    const body = Readable.fromWeb(c.req.raw.body as import("node:stream/web").ReadableStream<Uint8Array>)
    body.on("error", (e) => parser.destroy(e))
    body.pipe(parser)
  })
