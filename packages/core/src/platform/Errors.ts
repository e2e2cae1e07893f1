/**
 * The error vocabulary shared by every domain. Each class is a `Schema.TaggedError` with a
 * human-readable `message`; the HTTP adapter maps tags to status codes in one table
 * (`adapters-http/src/errors.ts`), the CLI prints the message and exits non-zero.
 *
 * Domains raise these (or their own tagged errors, which the table also lists) instead of throwing:
 * the error channel of every public service method says what can go wrong.
 */
import { Schema } from "effect"

/** Bad input: a parameter, a body field, a header row. HTTP 400. */
export class ValidationError extends Schema.TaggedError<ValidationError>()("ValidationError", {
  message: Schema.String,
  field: Schema.optionalKey(Schema.String)
}) {}

/** The caller's role may not have what it asked for (e.g. a decrypted number for a non-admin). HTTP 403. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
}) {}

/** The addressed row or file does not exist. HTTP 404. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  message: Schema.String
}) {}

/** The request is valid but the state forbids it now (another file is processing, wrong status). HTTP 409. */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  message: Schema.String
}) {}

/** An upload is over `UPLOAD_MAX_BYTES`. HTTP 413. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String,
  limitBytes: Schema.Number
}) {}

/** A file that cannot be read as what it claims to be (binary, empty, not CSV). HTTP 422. */
export class UnreadableFile extends Schema.TaggedError<UnreadableFile>()("UnreadableFile", {
  message: Schema.String
}) {}

/** An external API failed after the retry budget, or answered something we cannot use. HTTP 502. */
export class UpstreamError extends Schema.TaggedError<UpstreamError>()("UpstreamError", {
  message: Schema.String,
  service: Schema.String,
  status: Schema.optionalKey(Schema.Number),
  retryable: Schema.Boolean
}) {}

/** An integration whose settings are absent. HTTP 503 naming the variables. */
export class NotConfigured extends Schema.TaggedError<NotConfigured>()("NotConfigured", {
  message: Schema.String,
  integration: Schema.String,
  missing: Schema.Array(Schema.String)
}) {}

/**
 * The database failed. `unavailable`: it could not be reached, refused connections, or did not
 * answer in time (HTTP 503 with Retry-After: try again later); otherwise an unexpected SQL error
 * (HTTP 500). The message names what was being done and the driver's reason, for the logs; the HTTP
 * API never shows it.
 */
export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  message: Schema.String,
  unavailable: Schema.optionalKey(Schema.Boolean),
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/** The file store (local directory or S3) failed. HTTP 500; the HTTP API does not show the message. */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  message: Schema.String,
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/** Missing or invalid settings at start-up; the process stops with this message. */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  message: Schema.String,
  variables: Schema.Array(Schema.String)
}) {}

export type CommonError =
  | ValidationError
  | NotFound
  | Conflict
  | PayloadTooLarge
  | UnreadableFile
  | UpstreamError
  | NotConfigured
  | DatabaseError
  | StorageError

/**
 * What a failure may tell an API user where it is recorded for later (a job's or a file's error):
 * its message, except a database failure's, which carries the driver's text (SQL, relation names):
 * that stays in the worker's log, under the job's id.
 */
export const publicMessage = (error: unknown): string => {
  if (error instanceof DatabaseError) {
    return error.unavailable === true
      ? "the database was unavailable or too slow (the worker's log has the details)"
      : "the database failed (the worker's log has the details)"
  }
  const message = (error as { message?: unknown } | null)?.message
  return typeof message === "string" && message !== "" ? message : String(error)
}
