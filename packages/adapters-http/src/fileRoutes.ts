/**
 * The routes of a file resource (cleaning, encryption files, smart cleaning, REG search): upload,
 * list, process, stats, download, archive, delete, declared from a small description that keeps
 * each kind's original paths and answers. What they share is written here once: the upload read as
 * a stream with `UPLOAD_MAX_BYTES`, `{"items": [...]}` listings with a `?status=a,b` filter, CSV
 * downloads, the `file_id` path parameter, and the roles (viewer reads, operator changes).
 */
import { Effect, Schema } from "effect"
import {
  AppConfig,
  FILE_JOB_STATUSES,
  fileJobStatusFilter,
  type ValidationError,
  type AppServices,
  type FileDownload,
  type FileJobStatus
} from "@optimizer/core"
import { csvDownload } from "./download.ts"
import type { HandlerInput, Routes } from "./http.ts"
import type { Principal } from "@optimizer/core"
import { uploadedFile, type UploadedFile } from "./upload.ts"
import { Items, ProcessingStarted } from "./responses.ts"

type Run<A> = Effect.Effect<A, unknown, AppServices>

interface Doc {
  readonly path: string
  readonly summary: string
  readonly description?: string
  readonly returns?: string
  /** The JSON answer's schema (`RouteSpec.response`); a listing gives its item's (`item`) instead. */
  readonly response?: Schema.Top
}

/** A route of the resource with its own query and body schemas (process). */
interface Operation<Q, B> extends Doc {
  readonly query?: Schema.Codec<Q, unknown>
  readonly body?: Schema.Codec<B, unknown>
  readonly run: (input: HandlerInput<Q, B> & { readonly fileId: string }) => Run<unknown>
}

export interface FileResource<PQ, PB, DQ> {
  /** The OpenAPI tag. */
  readonly tag: string
  readonly upload?: Doc & { readonly run: (file: UploadedFile, maxBytes: number) => Run<unknown> }
  /** Answered as `{"items": [...]}`, each an `item`; `status` is the raw `?status=` value. */
  readonly list?: Doc & {
    readonly item: Schema.Top
    readonly run: (status: string | undefined) => Run<ReadonlyArray<unknown>>
  }
  /** Answers `{"ok": true, "file_id", "status": "processing", "job_id"}` (`ProcessingStarted`). */
  readonly process?: Operation<PQ, PB>
  readonly stats?: Doc & { readonly run: (fileId: string) => Run<unknown> }
  readonly download?: Doc & {
    readonly query?: Schema.Codec<DQ, unknown>
    /** `principal`: who asks (a download may reveal what only some roles may read). */
    readonly run: (fileId: string, query: DQ, principal: Principal | undefined) => Run<FileDownload>
  }
  readonly archive?: Doc & { readonly run: (fileId: string) => Run<unknown> }
  readonly delete?: Doc & { readonly run: (fileId: string) => Run<unknown> }
}

const StatusQuery = Schema.Struct({ status: Schema.optionalKey(Schema.String) })

/** `?status=a,b` → the statuses, or a ValidationError naming the unknown one. */
export const statusesOf = (raw: string | undefined): Effect.Effect<ReadonlyArray<FileJobStatus>, ValidationError> =>
  fileJobStatusFilter(
    raw,
    (unknown) => `query.status: unknown status "${unknown.slice(0, 40)}" (one of ${FILE_JOB_STATUSES.join(", ")})`
  )

const docOf = (tag: string, doc: Doc) => ({
  path: doc.path,
  tag,
  summary: doc.summary,
  ...(doc.description === undefined ? {} : { description: doc.description }),
  ...(doc.returns === undefined ? {} : { returns: doc.returns }),
  ...(doc.response === undefined ? {} : { response: doc.response })
})

/** Adds the resource's routes, in the order upload, list, process, stats, download, archive, delete. */
export const fileRoutes = <PQ = undefined, PB = undefined, DQ = undefined>(
  routes: Routes<AppServices>,
  resource: FileResource<PQ, PB, DQ>
): Routes<AppServices> => {
  const { tag, upload, list, process, stats, download, archive } = resource
  if (upload !== undefined) {
    routes.add({ ...docOf(tag, upload), method: "post", role: "operator", upload: true }, ({ c }) =>
      Effect.gen(function* () {
        const { uploadMaxBytes } = yield* AppConfig
        const file = yield* uploadedFile(c, { maxBytes: uploadMaxBytes })
        return yield* upload.run(file, uploadMaxBytes).pipe(
          // An upload refused before its bytes were all read: drain them, so the request completes.
          Effect.tapError(() => Effect.sync(() => file.stream.resume()))
        )
      })
    )
  }
  if (list !== undefined) {
    routes.add(
      { ...docOf(tag, list), method: "get", role: "viewer", query: StatusQuery, response: Items(list.item) },
      ({ query }) => list.run(query.status).pipe(Effect.map((items) => ({ items })))
    )
  }
  if (process !== undefined) {
    routes.add<PQ, PB>(
      {
        ...docOf(tag, process),
        method: "post",
        role: "operator",
        response: ProcessingStarted,
        ...(process.query === undefined ? {} : { query: process.query }),
        ...(process.body === undefined ? {} : { body: process.body })
      },
      (input) =>
        process.run({
          c: input.c,
          query: input.query,
          body: input.body,
          principal: input.principal,
          requestId: input.requestId,
          params: input.params,
          fileId: input.params.file_id!
        })
    )
  }
  if (stats !== undefined) {
    routes.add({ ...docOf(tag, stats), method: "get", role: "viewer" }, ({ params }) => stats.run(params.file_id!))
  }
  if (download !== undefined) {
    routes.add<DQ>(
      {
        ...docOf(tag, download),
        method: "get",
        role: "viewer",
        produces: "text/csv",
        ...(download.query === undefined ? {} : { query: download.query })
      },
      ({ params, query, principal }) =>
        download
          .run(params.file_id!, query, principal)
          .pipe(Effect.map((file) => csvDownload(file.body, file.filename)))
    )
  }
  if (archive !== undefined) {
    routes.add({ ...docOf(tag, archive), method: "post", role: "operator" }, ({ params }) =>
      archive.run(params.file_id!)
    )
  }
  const remove = resource.delete
  if (remove !== undefined) {
    routes.add({ ...docOf(tag, remove), method: "post", role: "operator" }, ({ params }) => remove.run(params.file_id!))
  }
  return routes
}
