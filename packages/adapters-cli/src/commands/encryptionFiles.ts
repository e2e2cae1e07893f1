/**
 * `npx optimizer encryption-files …`: the stored encryption files of the HTTP API (docs/encryption.md)
 * — upload, list, process as a job (encrypt, or `--decrypt`), download, archive, delete — with the
 * routes' JSON keys. `process --wait` follows the job (a worker runs it) with its progress.
 * (`encrypt --file` / `decrypt --file` transform a local file in this process instead.)
 */
import { Effect, Option } from "effect"
import { Argument, Command } from "effect/cli"
import { EncryptionFiles, fileJobStatusFilter, FILE_JOB_STATUSES } from "@optimizer/core"
import { downloadCommand, entryCommand, listCommand, switchFlag, uploadCommand } from "../fileCommands.ts"
import { followJob } from "../jobWait.ts"
import { printJson, printLines } from "../output.ts"
import { progressFlag, withProgress } from "../progress.ts"
import { withServices } from "../runtime.ts"

const json = switchFlag("json", "print the result as JSON")
const fileId = Argument.String("file-id").pipe(Argument.withDescription("the file's id (from `encryption-files list`)"))

const upload = uploadCommand({
  description: "Upload a CSV of values to encrypt or tokens to decrypt (as POST /upload-encrypted)",
  file: "the CSV (the value is the first column of each row)",
  run: (name, body) => EncryptionFiles.use((files) => files.upload(name, body as AsyncIterable<Uint8Array>)),
  lines: (uploaded) => [`uploaded ${uploaded.original_filename} as ${uploaded.id}`]
})

const list = listCommand({
  description: "Encryption files, newest first (as GET /encrypted-files)",
  run: (status) =>
    fileJobStatusFilter(
      Option.getOrUndefined(status),
      (unknown) => `--status: unknown status "${unknown}" (one of ${FILE_JOB_STATUSES.join(", ")})`
    ).pipe(Effect.flatMap((statuses) => EncryptionFiles.use((files) => files.list(statuses)))),
  columns: [
    "id",
    "original_filename",
    "status",
    "direction",
    "record_count_total",
    "record_count_failed",
    "uploaded_at",
    "processed_at",
    "error_message"
  ]
})

const processFile = Command.make(
  "process",
  {
    id: fileId,
    decrypt: switchFlag("decrypt", "decrypt the file's tokens (default: encrypt its values)"),
    wait: switchFlag("wait", "wait until a worker has processed the file, showing its progress, then print the file"),
    json,
    progress: progressFlag
  },
  ({ id, decrypt, wait, json, progress }) =>
    withServices(
      Effect.gen(function* () {
        const files = yield* EncryptionFiles
        const started = yield* files.process(id, decrypt ? "decrypt" : "encrypt")
        if (!wait) {
          if (json) return yield* printJson(started)
          return yield* printLines(`processing ${started.file_id} as job ${started.job_id} (a worker runs it)`)
        }
        yield* withProgress({ label: decrypt ? "decrypt" : "encrypt", mode: progress, json }, (p) =>
          followJob(started.job_id, p)
        )
        const file = yield* files.get(id)
        if (json) yield* printJson(file)
        else
          yield* printLines(
            `${file.original_filename}: ${file.status}, ${file.record_count_total ?? 0} records` +
              `${file.record_count_failed ? `, ${file.record_count_failed} failed` : ""}` +
              `${file.error_message ? ` (${file.error_message})` : ""}`
          )
        if (file.status !== "processed") return yield* Effect.fail(new Error(`the file ended ${file.status}`))
      })
    )
).pipe(Command.withDescription("Encrypt (or --decrypt) a stored file as a job (as POST /{file_id}/process-encrypted)"))

const download = downloadCommand(fileId, {
  description: "Download a processed file (as GET /{file_id}/download-encrypted)",
  run: (id) => EncryptionFiles.use((files) => files.download(id, { mayReveal: true }))
})

const archive = entryCommand("archive", fileId, {
  description: "Archive a file (as POST /{file_id}/archive-encrypted)",
  run: (id) => EncryptionFiles.use((files) => files.archive(id))
})

const remove = entryCommand("delete", fileId, {
  description: "Delete a file and its stored upload and output (as POST /{file_id}/delete-encrypted)",
  run: (id) => EncryptionFiles.use((files) => files.delete(id))
})

export const encryptionFilesCommand = Command.make("encryption-files").pipe(
  Command.withDescription("Stored encryption files: upload, list, process (a job), download, archive, delete"),
  Command.withSubcommands([upload, list, processFile, download, archive, remove])
)
