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
}

/**
 * Tags the HTTP layer meets beside core's: a request that fails Schema decoding, and the
 * authentication outcomes the middleware answers (listed so a handler failing with them gets the
 * same status).
 */
export type AdapterErrorTag = "SchemaError" | "Unauthorized"

export type HttpErrorTag = CoreErrorTag | AdapterErrorTag

export const INTERNAL: HttpError = { status: 500, code: "INTERNAL_ERROR" }

export const HTTP_ERRORS: Readonly<Record<HttpErrorTag, HttpError>> = {
  ValidationError: { status: 400, code: "VALIDATION_ERROR" },
  SchemaError: { status: 400, code: "VALIDATION_ERROR" },
  InvalidToken: { status: 400, code: "INVALID_TOKEN" },
  DecryptionFailed: { status: 400, code: "DECRYPTION_FAILED" },
  Unauthorized: { status: 401, code: "UNAUTHORIZED" },
  Forbidden: { status: 403, code: "FORBIDDEN" },
  NotFound: { status: 404, code: "NOT_FOUND" },
  Conflict: { status: 409, code: "CONFLICT" },
  PayloadTooLarge: { status: 413, code: "PAYLOAD_TOO_LARGE" },
  UnreadableFile: { status: 422, code: "UNREADABLE_FILE" },
  UpstreamError: { status: 502, code: "UPSTREAM_ERROR" },
  SyncJobFailed: { status: 502, code: "SYNC_FAILED" },
  NotConfigured: { status: 503, code: "NOT_CONFIGURED" },
  DatabaseError: { status: 500, code: "DATABASE_ERROR" },
  StorageError: { status: 500, code: "STORAGE_ERROR" },
  // A schedule naming an operation this build lacks: the scheduler's own failure, not the caller's.
  OperationUnavailable: INTERNAL
}

/** By tag, for run-time lookups of whatever tag an error carries. */
const BY_TAG: ReadonlyMap<string, HttpError> = new Map(Object.entries(HTTP_ERRORS))

/** Status and code for an error tag; unknown tags are internal errors. */
export const httpErrorOf = (tag: string): HttpError => BY_TAG.get(tag) ?? INTERNAL

/** The tags answered with a status of their own (not the generic internal error). */
export const knownErrorTags = (): ReadonlyArray<string> =>
  Object.entries(HTTP_ERRORS)
    .filter(([, mapped]) => mapped !== INTERNAL)
    .map(([tag]) => tag)
