/**
 * Encryption files (docs/original-api.md): upload, list, process as a job (encrypt by default;
 * `direction=decrypt` for admins), download, archive, delete — with the original's response keys.
 */
import { Effect, Schema } from "effect"
import { EncryptionFiles, roleAllows, type AppServices } from "@optimizer/core"
import { fileRoutes, statusesOf } from "../fileRoutes.ts"
import { errorResponse, type Routes } from "../http.ts"
import { Count, FileStatus, Null, Timestamp, Uploaded } from "../responses.ts"

/** An item of `/encrypted-files` (`EncryptionFileItem` in core). */
const EncryptionFileItem = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  status: FileStatus,
  uploaded_at: Timestamp,
  processing_started_at: Schema.NullOr(Timestamp),
  processed_at: Schema.NullOr(Timestamp),
  error_message: Schema.NullOr(Schema.String),
  direction: Schema.Literals(["encrypt", "decrypt"]),
  record_count_total: Schema.NullOr(Count).annotate({
    description: "Non-blank lines at upload; rows processed once processed"
  }),
  record_count_failed: Schema.NullOr(Count).annotate({
    description: "Tokens that did not decrypt (decrypt direction); 0 when encrypting"
  }),
  job_id: Schema.NullOr(Schema.String)
}).annotate({ identifier: "EncryptionFileItem" })

const DirectionQuery = Schema.Struct({ direction: Schema.optionalKey(Schema.Literals(["encrypt", "decrypt"])) })

export const encryptionRoutes = (routes: Routes<AppServices>) =>
  fileRoutes(routes, {
    tag: "encryption",
    upload: {
      path: "/upload-encrypted",
      summary: "Upload a CSV of values to encrypt (first column of each row; no header detection)",
      returns: '{"id", "original_filename", "status": "uploaded"}',
      response: Uploaded,
      run: (file, maxBytes) => EncryptionFiles.use((files) => files.upload(file.filename, file.stream, { maxBytes }))
    },
    list: {
      path: "/encrypted-files",
      summary: "Encryption files, newest first; ?status=a,b filters",
      returns:
        '{"items": [{"id", "original_filename", "status", "uploaded_at", "processing_started_at", "processed_at", "error_message", "direction", "record_count_total", "record_count_failed", "job_id"}]}',
      item: EncryptionFileItem,
      run: (status) =>
        statusesOf(status).pipe(Effect.flatMap((statuses) => EncryptionFiles.use((files) => files.list(statuses))))
    },
    process: {
      path: "/:file_id/process-encrypted",
      summary: "Process a file as a job: encrypt (default) or, for admins, ?direction=decrypt",
      description:
        "Output: two columns, no header — value,token (encrypt) or token,plaintext (decrypt; a token that does not decrypt gets an empty second column and counts in record_count_failed). 409 while another file is processing.",
      query: DirectionQuery,
      returns: '{"ok": true, "file_id", "status": "processing", "job_id"}',
      run: ({ c, fileId, query, principal }) => {
        const direction = query.direction ?? "encrypt"
        if (direction === "decrypt" && (principal === undefined || !roleAllows(principal.role, "admin"))) {
          return Effect.succeed(
            errorResponse(c, 403, "FORBIDDEN", `Decryption needs the admin role; the key has ${principal?.role}`)
          )
        }
        return EncryptionFiles.use((files) => files.process(fileId, direction))
      }
    },
    download: {
      path: "/:file_id/download-encrypted",
      summary:
        "Download a processed file as encrypted_<original_filename> (decrypted_… for a decrypt job: admins only, 403 for others); 400 until processed",
      run: (fileId, _query, principal) =>
        EncryptionFiles.use((files) =>
          files.download(fileId, { mayReveal: principal !== undefined && roleAllows(principal.role, "admin") })
        )
    },
    archive: {
      path: "/:file_id/archive-encrypted",
      summary: "Archive a file (409 while it is processing)",
      returns: "null",
      response: Null,
      run: (fileId) => EncryptionFiles.use((files) => files.archive(fileId))
    },
    delete: {
      path: "/:file_id/delete-encrypted",
      summary: "Delete a file and its stored upload and output",
      returns: "null",
      response: Null,
      run: (fileId) => EncryptionFiles.use((files) => files.delete(fileId))
    }
  })
