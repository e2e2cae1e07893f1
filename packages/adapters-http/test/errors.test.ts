/**
 * The HTTP error table: every status as it has been, and — checked by the type-check, which runs
 * over this file — that a core error tag without an entry does not compile.
 */
import { Schema, type Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { ServiceError } from "@optimizer/core"
import { HTTP_ERRORS, httpErrorOf, INTERNAL, type HttpError, type HttpErrorTag } from "../src/errors.ts"

describe("the HTTP error table", () => {
  it("answers each tag with its status; anything else is an internal error", () => {
    expect(Object.fromEntries(Object.entries(HTTP_ERRORS).map(([tag, m]) => [tag, `${m.status} ${m.code}`]))).toEqual({
      ValidationError: "400 VALIDATION_ERROR",
      SchemaError: "400 VALIDATION_ERROR",
      InvalidToken: "400 INVALID_TOKEN",
      DecryptionFailed: "400 DECRYPTION_FAILED",
      Unauthorized: "401 UNAUTHORIZED",
      Forbidden: "403 FORBIDDEN",
      NotFound: "404 NOT_FOUND",
      Conflict: "409 CONFLICT",
      PayloadTooLarge: "413 PAYLOAD_TOO_LARGE",
      UnreadableFile: "422 UNREADABLE_FILE",
      UpstreamError: "502 UPSTREAM_ERROR",
      SyncJobFailed: "502 SYNC_FAILED",
      HlrBatchFailed: "502 HLR_BATCH_FAILED",
      NotConfigured: "503 NOT_CONFIGURED",
      DatabaseError: "500 DATABASE_ERROR",
      StorageError: "500 STORAGE_ERROR",
      OperationUnavailable: "500 INTERNAL_ERROR"
    })
    expect(httpErrorOf("OperationUnavailable")).toBe(INTERNAL)
    expect(httpErrorOf("SqlError")).toBe(INTERNAL)
    expect(httpErrorOf("toString")).toBe(INTERNAL)
  })

  it("does not compile when a core error tag has no status", () => {
    // A tag left out of the table.
    const { NotFound: _notFound, ...withoutNotFound } = HTTP_ERRORS
    // @ts-expect-error Property 'NotFound' is missing
    const incomplete: Record<HttpErrorTag, HttpError> = withoutNotFound

    // A service that starts failing with a new error class: `ServiceError` (what core derives
    // `CoreErrorTag` from, via its `UnlistedServiceErrors` check) picks the class up from the
    // service's own signature, and the table no longer covers the tags.
    class Teapot extends Schema.TaggedError<Teapot>()("Teapot", { message: Schema.String }) {}
    interface Brewing {
      readonly Service: { readonly brew: (kind: string) => Effect.Effect<void, Teapot> }
    }
    const brewingTag: ServiceError<Brewing>["_tag"] = "Teapot"
    // @ts-expect-error Property 'Teapot' is missing
    const withTeapot: Record<HttpErrorTag | typeof brewingTag, HttpError> = HTTP_ERRORS

    expect([incomplete, withTeapot]).toHaveLength(2)
  })
})
