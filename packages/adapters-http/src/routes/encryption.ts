/**
 * Encryption files (ORIGINAL.md §1.9): upload, list, process as a job (encrypt by default;
 * `direction=decrypt` for admins), download, archive, delete — with the original's response keys.
 */
import { Effect, Schema } from "effect"
import {
  AppConfig,
  ENCRYPTION_FILE_STATUSES,
  EncryptionFiles,
  roleAllows,
  ValidationError,
  type AppServices,
  type EncryptionFileStatus
} from "@optimizer/core"
import { csvDownload } from "../download.ts"
import { errorResponse, type Routes } from "../http.ts"
import { uploadedFile } from "../upload.ts"

const StatusQuery = Schema.Struct({ status: Schema.optionalKey(Schema.String) })
const DirectionQuery = Schema.Struct({ direction: Schema.optionalKey(Schema.Literals(["encrypt", "decrypt"])) })

/** `?status=a,b` → the statuses, or a ValidationError naming the unknown one. */
const statusesOf = (raw: string | undefined): Effect.Effect<ReadonlyArray<EncryptionFileStatus>, ValidationError> => {
  const wanted = (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  const unknown = wanted.find((s) => !(ENCRYPTION_FILE_STATUSES as ReadonlyArray<string>).includes(s))
  return unknown === undefined
    ? Effect.succeed(wanted as ReadonlyArray<EncryptionFileStatus>)
    : Effect.fail(
        new ValidationError({
          message: `query.status: unknown status "${unknown.slice(0, 40)}" (one of ${ENCRYPTION_FILE_STATUSES.join(", ")})`,
          field: "status"
        })
      )
}

export const encryptionRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "post",
        path: "/upload-encrypted",
        role: "operator",
        tag: "encryption",
        summary: "Upload a CSV of values to encrypt (first column of each row; no header detection)",
        upload: true,
        returns: '{"id", "original_filename", "status": "uploaded"}'
      },
      ({ c }) =>
        Effect.gen(function* () {
          const { uploadMaxBytes } = yield* AppConfig
          const file = yield* uploadedFile(c, { maxBytes: uploadMaxBytes })
          return yield* EncryptionFiles.use((files) =>
            files.upload(file.filename, file.stream, { maxBytes: uploadMaxBytes })
          )
        })
    )
    .add(
      {
        method: "get",
        path: "/encrypted-files",
        role: "viewer",
        tag: "encryption",
        summary: "Encryption files, newest first; ?status=a,b filters",
        query: StatusQuery,
        returns:
          '{"items": [{"id", "original_filename", "status", "uploaded_at", "processing_started_at", "processed_at", "error_message", "direction", "record_count_total", "record_count_failed", "job_id"}]}'
      },
      ({ query }) =>
        statusesOf(query.status).pipe(
          Effect.flatMap((statuses) => EncryptionFiles.use((files) => files.list(statuses))),
          Effect.map((items) => ({ items }))
        )
    )
    .add(
      {
        method: "post",
        path: "/:file_id/process-encrypted",
        role: "operator",
        tag: "encryption",
        summary: "Process a file as a job: encrypt (default) or, for admins, ?direction=decrypt",
        description:
          "Output: two columns, no header — value,token (encrypt) or token,plaintext (decrypt; a token that does not decrypt gets an empty second column and counts in record_count_failed). 409 while another file is processing.",
        query: DirectionQuery,
        returns: '{"ok": true, "file_id", "status": "processing", "job_id"}'
      },
      ({ c, params, query, principal }) => {
        const direction = query.direction ?? "encrypt"
        if (direction === "decrypt" && (principal === undefined || !roleAllows(principal.role, "admin"))) {
          return Effect.succeed(
            errorResponse(c, 403, "FORBIDDEN", `Decryption needs the admin role; the key has ${principal?.role}`)
          )
        }
        return EncryptionFiles.use((files) => files.process(params.file_id!, direction))
      }
    )
    .add(
      {
        method: "get",
        path: "/:file_id/download-encrypted",
        role: "viewer",
        tag: "encryption",
        summary: "Download a processed file as encrypted_<original_filename> (400 until processed)"
      },
      ({ params }) =>
        EncryptionFiles.use((files) => files.download(params.file_id!)).pipe(
          Effect.map((file) => csvDownload(file.body, file.filename))
        )
    )
    .add(
      {
        method: "post",
        path: "/:file_id/archive-encrypted",
        role: "operator",
        tag: "encryption",
        summary: "Archive a file (409 while it is processing)",
        returns: "null"
      },
      ({ params }) => EncryptionFiles.use((files) => files.archive(params.file_id!))
    )
    .add(
      {
        method: "post",
        path: "/:file_id/delete-encrypted",
        role: "operator",
        tag: "encryption",
        summary: "Delete a file and its stored upload and output",
        returns: "null"
      },
      ({ params }) => EncryptionFiles.use((files) => files.delete(params.file_id!))
    )
