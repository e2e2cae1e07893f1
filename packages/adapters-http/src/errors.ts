/**
 * The one table from core's typed errors to HTTP (SPEC.md §3.6). The body is FastAPI-compatible —
 * `{"detail": "<message>"}` — plus a stable `code` and the `request_id` to quote in a support
 * ticket. Never a stack trace or a secret: a defect is logged with its cause and answered with a
 * generic 500.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status"

export interface ErrorBody {
  readonly detail: string
  readonly code: string
  readonly request_id: string
}

const TABLE: Record<string, { readonly status: ContentfulStatusCode; readonly code: string }> = {
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
  StorageError: { status: 500, code: "STORAGE_ERROR" }
}

export const INTERNAL = { status: 500 as ContentfulStatusCode, code: "INTERNAL_ERROR" }

/** Status and code for an error tag; unknown tags are internal errors. */
export const httpErrorOf = (tag: string): { readonly status: ContentfulStatusCode; readonly code: string } =>
  TABLE[tag] ?? INTERNAL

export const knownErrorTags = (): ReadonlyArray<string> => Object.keys(TABLE)
