/**
 * List cleaning from the command line.
 *
 * - `optimizer clean <file> --out clean.csv [--include-…] [--country GB] [--phone-column NAME]
 *   [--rejects r.csv] [--annotated a.csv] [--json]`: a local file through the same pipeline as the
 *   job, synchronously; prints the stats (the original's keys + the new ones).
 * - `optimizer files upload|list|process|stats|download|archive|delete`: the stored-file flow of
 *   the HTTP API (`process` queues the job a worker runs; `--wait` follows it to the end).
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Cleaning, StorageError, type CleaningOptions, type PipelineResult } from "@optimizer/core"
import { entryCommand, listCommand, switchFlag, uploadCommand, writeDownload } from "../fileCommands.ts"
import { printJson, printLines } from "../output.ts"
import { countLines, progressFlag, resolveMode, withProgress } from "../progress.ts"
import { followJob } from "../jobWait.ts"
import { withServices } from "../runtime.ts"

const json = switchFlag("json", "print the result as JSON")
const includeBlacklist = switchFlag("include-blacklist", "remove numbers on the blacklist")
const includeMonitor = switchFlag("include-monitor", "remove numbers on the monitor list")
const includeConversion = switchFlag("include-conversion", "remove converters (api_voluum_conversions)")
const includeMainDatabase = switchFlag(
  "include-main-database",
  "remove numbers already sent to (main_database) and add the kept ones to it"
)
const country = Flag.String("country").pipe(
  Flag.optional,
  Flag.withDescription("ISO2 default country for national numbers, e.g. GB (a country column wins per row)")
)
const phoneColumn = Flag.String("phone-column").pipe(
  Flag.optional,
  Flag.withDescription("header name or 1-based position of the phone column (default: found by name or content)")
)

/** The stats as printed: the original's keys first, then the new ones. */
const statsJson = (r: PipelineResult) => ({
  total_records: r.total_records,
  removed_blacklist: r.removed_blacklist,
  removed_monitor: r.removed_monitor,
  removed_conversion: r.removed_conversion,
  removed_maindatabase: r.removed_maindatabase,
  final_clean_count: r.final_clean_count,
  removed_duplicates: r.removed_duplicates,
  removed_invalid: r.removed_invalid,
  phone_metadata_version: r.phone_metadata_version,
  added_to_main_database: r.added_to_main_database,
  dialect: r.dialect
})

const statsLines = (s: {
  total_records: number
  removed_blacklist: number
  removed_monitor: number
  removed_conversion: number
  removed_maindatabase: number
  removed_duplicates: number
  removed_invalid: number
  final_clean_count: number
}) => [
  `total records        ${s.total_records}`,
  `removed: invalid     ${s.removed_invalid}`,
  `removed: duplicates  ${s.removed_duplicates}`,
  `removed: blacklist   ${s.removed_blacklist}`,
  `removed: monitor     ${s.removed_monitor}`,
  `removed: conversion  ${s.removed_conversion}`,
  `removed: main db     ${s.removed_maindatabase}`,
  `kept                 ${s.final_clean_count}`
]

export const cleanCommand = Command.make(
  "clean",
  {
    file: Argument.String("file").pipe(Argument.withDescription("the list to clean (CSV or one number per line)")),
    includeBlacklist,
    includeMonitor,
    includeConversion,
    includeMainDatabase,
    country,
    phoneColumn,
    out: Flag.String("out").pipe(Flag.withDescription("where to write the cleaned list (one number per line)")),
    rejects: Flag.String("rejects").pipe(
      Flag.optional,
      Flag.withDescription("also write the removed rows with their reason to this file")
    ),
    annotated: Flag.String("annotated").pipe(
      Flag.optional,
      Flag.withDescription("also write every row with phone_e164, status and reason to this file")
    ),
    json,
    progress: progressFlag
  },
  (flags) =>
    withServices(
      Effect.gen(function* () {
        const show = resolveMode(flags.progress, flags.json, process.stderr.isTTY === true) !== "none"
        // The total for the ETA: the file's lines, counted first (a fast read) when progress is shown.
        const total = show ? yield* countLines(flags.file) : undefined
        const result = yield* withProgress({ label: "clean", mode: flags.progress, json: flags.json }, (p) => {
          p.update(0, total)
          return Cleaning.use((cleaning) =>
            cleaning
              .cleanLocalFile(flags.file, {
                onProgress: (rows) => p.update(rows, total),
                includeBlacklist: flags.includeBlacklist,
                includeMonitor: flags.includeMonitor,
                includeConversion: flags.includeConversion,
                includeMainDatabase: flags.includeMainDatabase,
                country: Option.getOrUndefined(flags.country),
                phoneColumn: Option.getOrUndefined(flags.phoneColumn),
                out: flags.out,
                rejectsOut: Option.getOrUndefined(flags.rejects),
                annotatedOut: Option.getOrUndefined(flags.annotated)
              })
              .pipe(Effect.tap((r) => Effect.sync(() => p.update(r.total_records, r.total_records))))
          )
        })
        if (flags.json) return yield* printJson(statsJson(result))
        yield* printLines(...statsLines(result), "", `cleaned list written to ${flags.out}`)
      })
    )
).pipe(Command.withDescription("Clean a local list synchronously (same pipeline as the job) and print its stats"))

// ---------------------------------------------------------------------------------------------
// files …

const fileId = Argument.String("file-id").pipe(Argument.withDescription("the file's id (from `files list`)"))

const upload = uploadCommand({
  description: "Upload a list to clean (as POST /upload)",
  file: "the list to upload",
  run: (name, body) => Cleaning.use((cleaning) => cleaning.upload(name, body)),
  lines: (uploaded) => [`uploaded ${uploaded.original_filename} as ${uploaded.id}`]
})

const list = listCommand({
  description: "List uploaded files, newest first",
  run: (status) =>
    Cleaning.use((cleaning) => cleaning.list(Option.match(status, { onNone: () => [], onSome: (s) => s.split(",") }))),
  columns: [
    "id",
    "original_filename",
    "status",
    "record_count_total",
    "record_count_clean",
    "progress_processed",
    "uploaded_at",
    "processed_at",
    "error_message"
  ]
})

const processFile = Command.make(
  "process",
  {
    id: fileId,
    includeBlacklist,
    includeMonitor,
    includeConversion,
    includeMainDatabase,
    country,
    phoneColumn,
    rejects: switchFlag("rejects", "also write a rejects file"),
    annotated: switchFlag("annotated", "also write an annotated file"),
    wait: switchFlag(
      "wait",
      "wait until a worker has finished the file (its progress on stderr), then print its stats"
    ),
    json,
    progress: progressFlag
  },
  (flags) =>
    withServices(
      Effect.gen(function* () {
        const cleaning = yield* Cleaning
        const options: CleaningOptions = {
          includeBlacklist: flags.includeBlacklist,
          includeMonitor: flags.includeMonitor,
          includeConversion: flags.includeConversion,
          includeMainDatabase: flags.includeMainDatabase,
          country: Option.getOrUndefined(flags.country),
          phoneColumn: Option.getOrUndefined(flags.phoneColumn),
          rejects: flags.rejects,
          annotated: flags.annotated
        }
        const started = yield* cleaning.process(flags.id, options)
        if (!flags.wait) {
          if (flags.json) return yield* printJson(started)
          return yield* printLines(
            `processing ${started.file_id} as job ${started.job_id} (a worker runs it: npx optimizer worker)`
          )
        }
        yield* withProgress({ label: "clean", mode: flags.progress, json: flags.json }, (p) =>
          followJob(started.job_id, p)
        )
        const file = yield* cleaning.get(flags.id)
        if (file.status !== "processed") {
          return yield* new StorageError({ message: `the file ended ${file.status}: ${file.error_message ?? ""}` })
        }
        const stats = yield* cleaning.stats(flags.id)
        if (flags.json) return yield* printJson(stats)
        yield* printLines(...statsLines(stats))
      })
    )
).pipe(Command.withDescription("Clean a stored file as a job (as POST /{file_id}/process)"))

const stats = Command.make("stats", { id: fileId, json }, ({ id, json }) =>
  withServices(
    Effect.gen(function* () {
      const s = yield* Cleaning.use((cleaning) => cleaning.stats(id))
      if (json) return yield* printJson(s)
      yield* printLines(...statsLines(s), `phone metadata       ${s.phone_metadata_version ?? "?"}`)
    })
  )
).pipe(Command.withDescription("Counts of a file's last cleaning run"))

const download = Command.make(
  "download",
  {
    id: fileId,
    kind: Flag.Literals("kind", ["default", "rejects", "annotated"]).pipe(
      Flag.withDefault("default" as const),
      Flag.withDescription("which file: the cleaned list (default), the rejects or the annotated file")
    ),
    out: Flag.String("out").pipe(Flag.optional, Flag.withDescription("where to write it (default: stdout)"))
  },
  ({ id, kind, out }) =>
    withServices(
      Effect.flatMap(
        Cleaning.use((cleaning) => cleaning.download(id, kind)),
        (file) => writeDownload(file, out)
      )
    )
).pipe(Command.withDescription("Download a processed file"))

const archive = entryCommand("archive", fileId, {
  description: "Archive a file",
  run: (id) => Cleaning.use((cleaning) => cleaning.archive(id))
})

const remove = entryCommand("delete", fileId, {
  description: "Delete a file, its stats and its stored files",
  run: (id) => Cleaning.use((cleaning) => cleaning.delete(id))
})

export const filesCommand = Command.make("files").pipe(
  Command.withDescription("Uploaded lists to clean: upload, list, process, stats, download, archive, delete"),
  Command.withSubcommands([upload, list, processFile, stats, download, archive, remove])
)
