/**
 * The one table from core's typed errors to HTTP. The body is FastAPI-compatible —
 * `{"detail": "<message>"}` — plus a stable `code` and the `request_id` to quote in a support
 * ticket. Never a stack trace or a secret: a defect is logged with its cause and answered with a
 * generic 500.
 *
 * The table is a `Record` over every core error tag (`CoreErrorTag`, which core derives from what
 * its services can fail with; see core's CoreError.ts) and the HTTP layer's own tags. A core error
 * with no entry is a type error here ("Property 'Teapot' is missing in type ..."), not a 500 at run
 * time; packages/adapters-http/test/errors.test.ts shows the check firing. An error that is a 500 by design maps
 * to `INTERNAL` itself (its message is then not shown).
 */
import type { ContentfulStatusCode } from "hono/utils/http-status"
import type { CoreErrorTag } from "@optimizer/core"

export interface ErrorBody {
  readonly detail: string
  readonly code: string
  readonly request_id: string
}

export interface HttpError {
  readonly status: ContentfulStatusCode
  readonly code: string
  /**
   * Does the error's message go to the client? Yes for what the caller can act on; no for internal
   * failures, whose message (driver text, SQL, storage paths) stays in the log under the request id.
   */
  readonly expose: boolean
  /** Seconds for a `Retry-After` header: the failure is temporary. */
  readonly retryAfterSeconds?: number
}

/**
 * Tags the HTTP layer meets beside core's: a request that fails Schema decoding, and the
 * authentication outcomes the middleware answers (listed so a handler failing with them gets the
 * same status).
 */
export type AdapterErrorTag = "SchemaError" | "Unauthorized"

export type HttpErrorTag = CoreErrorTag | AdapterErrorTag

export const INTERNAL: HttpError = { status: 500, code: "INTERNAL_ERROR", expose: false }

/** A `DatabaseError` whose database could not be reached or did not answer in time (`unavailable`). */
export const DATABASE_UNAVAILABLE: HttpError = {
  status: 503,
  code: "DATABASE_UNAVAILABLE",
  expose: false,
  retryAfterSeconds: 5
}

/** A handler that did not finish within the request deadline (`REQUEST_DEADLINE_SECONDS`). */
export const DEADLINE_EXCEEDED: HttpError = {
  status: 503,
  code: "DEADLINE_EXCEEDED",
  expose: false,
  retryAfterSeconds: 5
}

/**
 * The deadline's detail for a request that may change something (not GET / HEAD): its work is
 * interrupted, but a transaction already committing when the deadline passed may still commit.
 */
export const DEADLINE_WRITE_DETAIL =
  "The request took too long (the database may be slow or unavailable) and was stopped; a change it was making may still have been saved: check before retrying"

/** What the client reads instead of an unexposed error's message (the request id comes beside it). */
export const detailOf = (mapped: HttpError, message: string | undefined, tag: string): string =>
  mapped.expose
    ? (message ?? tag)
    : mapped === DATABASE_UNAVAILABLE
      ? "The database is unavailable or too slow; retry later"
      : mapped === DEADLINE_EXCEEDED
        ? "The request took too long (the database may be slow or unavailable); retry later"
        : "Internal Server Error"

export const HTTP_ERRORS: Readonly<Record<HttpErrorTag, HttpError>> = {
  ValidationError: { status: 400, code: "VALIDATION_ERROR", expose: true },
  SchemaError: { status: 400, code: "VALIDATION_ERROR", expose: true },
  InvalidToken: { status: 400, code: "INVALID_TOKEN", expose: true },
  DecryptionFailed: { status: 400, code: "DECRYPTION_FAILED", expose: true },
  Unauthorized: { status: 401, code: "UNAUTHORIZED", expose: true },
  Forbidden: { status: 403, code: "FORBIDDEN", expose: true },
  NotFound: { status: 404, code: "NOT_FOUND", expose: true },
  Conflict: { status: 409, code: "CONFLICT", expose: true },
  PayloadTooLarge: { status: 413, code: "PAYLOAD_TOO_LARGE", expose: true },
  UnreadableFile: { status: 422, code: "UNREADABLE_FILE", expose: true },
  UpstreamError: { status: 502, code: "UPSTREAM_ERROR", expose: true },
  SyncJobFailed: { status: 502, code: "SYNC_FAILED", expose: true },
  HlrBatchFailed: { status: 502, code: "HLR_BATCH_FAILED", expose: true },
  NotConfigured: { status: 503, code: "NOT_CONFIGURED", expose: true },
  DatabaseError: { status: 500, code: "DATABASE_ERROR", expose: false },
  StorageError: { status: 500, code: "STORAGE_ERROR", expose: false },
  // A schedule naming an operation this build lacks: the scheduler's own failure, not the caller's.
  OperationUnavailable: INTERNAL
}

/** By tag, for run-time lookups of whatever tag an error carries. */
const BY_TAG: ReadonlyMap<string, HttpError> = new Map(Object.entries(HTTP_ERRORS))

/** Status and code for an error tag; unknown tags are internal errors. */
export const httpErrorOf = (tag: string): HttpError => BY_TAG.get(tag) ?? INTERNAL

/** The mapping of a failure: by its tag, and a database that is unavailable apart from one that failed. */
export const httpErrorFor = (error: { readonly _tag?: unknown; readonly unavailable?: unknown }): HttpError =>
  error._tag === "DatabaseError" && error.unavailable === true
    ? DATABASE_UNAVAILABLE
    : httpErrorOf(typeof error._tag === "string" ? error._tag : "Unknown")

/** The tags answered with a status of their own (not the generic internal error). */
export const knownErrorTags = (): ReadonlyArray<string> =>
  Object.entries(HTTP_ERRORS)
    .filter(([, mapped]) => mapped !== INTERNAL)
    .map(([tag]) => tag)
