/**
 * `npx optimizer export <table> [--out file]`: a table as CSV with a header (`COPY … TO STDOUT WITH
 * CSV HEADER`), synchronously. With `--out` the CSV streams into that file; without, the export is
 * stored and recorded as `/process_db` would (`exports/<table>_<YYYYmmdd_HHMMSS>.csv`) and the
 * command prints where. Only the allow-listed tables (docs/exports.md).
 *
 *   export <table> [--out file] [--json] [--progress …]   (POST /process_db, run in this process)
 *   export latest <table> [--json]                        (POST /fetch-latest-db-export)
 *   export download <table> [--out file]                  (GET /db-download)
 */
import { createWriteStream } from "node:fs"
import { once } from "node:events"
import * as path from "node:path"
import { Effect, Option, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { AppConfig, EXPORTABLE_TABLES, Exports, StorageError } from "@optimizer/core"
import { writeDownload } from "../fileCommands.ts"
import { printJson, printLines } from "../output.ts"
import { progressFlag, withProgress, type Progress } from "../progress.ts"
import { withServices } from "../runtime.ts"

const toFile = (table: string, out: string, progress: Progress) =>
  Effect.gen(function* () {
    const exports = yield* Exports
    const file = createWriteStream(out)
    const failed = (cause: unknown) =>
      new StorageError({ message: `could not write ${out}: ${(cause as Error)?.message ?? String(cause)}`, cause })
    let bytes = 0
    let rows = 0
    yield* exports.stream(table).pipe(
      Stream.runForEach((chunk) =>
        Effect.tryPromise({
          try: async () => {
            bytes += chunk.byteLength
            rows += countLines(chunk)
            progress.update(Math.max(0, rows - 1))
            if (!file.write(chunk)) await once(file, "drain")
          },
          catch: failed
        })
      ),
      Effect.onError(() => Effect.sync(() => file.destroy()))
    )
    yield* Effect.tryPromise({
      try: () =>
        new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve()))),
      catch: failed
    })
    return { table, out, bytes }
  })

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))
const tableArgument = Argument.String("table").pipe(Argument.withDescription(`one of: ${EXPORTABLE_TABLES.join(", ")}`))

/** Newlines in a chunk: the rows COPY has written so far (the header is one). */
const countLines = (chunk: Uint8Array): number => {
  let n = 0
  for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++
  return n
}

const latestCommand = Command.make("latest", { table: tableArgument, json }, ({ table, json }) =>
  withServices(
    Effect.gen(function* () {
      const latest = yield* Exports.use((exports) => exports.latest(table))
      if (json) return yield* printJson(latest)
      if (latest === null) return yield* printLines(`no export of ${table} yet`)
      yield* printLines(
        `export ${latest.id} of ${table}: ${latest.status}, ${latest.row_count ?? "?"} rows, ${latest.file_path ?? ""}`
      )
    })
  )
).pipe(Command.withDescription("The latest export of a table, or null (as POST /fetch-latest-db-export)"))

const downloadCommand = Command.make(
  "download",
  {
    table: tableArgument,
    out: Flag.String("out").pipe(Flag.optional, Flag.withDescription("where to write it (default: stdout)"))
  },
  ({ table, out }) =>
    withServices(
      Effect.flatMap(
        Exports.use((exports) => exports.download(table)),
        (file) => writeDownload(file, out)
      )
    )
).pipe(Command.withDescription("Download the latest export of a table (as GET /db-download)"))

export const exportCommand = Command.make(
  "export",
  {
    table: tableArgument,
    out: Flag.String("out").pipe(
      Flag.optional,
      Flag.withDescription("write the CSV to this file instead of the store")
    ),
    json,
    progress: progressFlag
  },
  ({ table, out, json, progress }) =>
    withServices(
      Effect.gen(function* () {
        if (Option.isSome(out)) {
          const written = yield* withProgress({ label: `export ${table}`, mode: progress, json }, (p) =>
            toFile(table, out.value, p)
          )
          if (json) return yield* printJson(written)
          return yield* printLines(`exported ${table} to ${written.out} (${written.bytes} bytes)`)
        }
        const done = yield* withProgress({ label: `export ${table}`, mode: progress, json }, (p) =>
          Exports.use((exports) => exports.exportNow(table, { onRows: (rows) => p.update(rows) }))
        )
        const { storage } = yield* AppConfig
        const location =
          storage.kind === "s3"
            ? `s3://${storage.s3Bucket}/${storage.s3Prefix === "" ? "" : `${storage.s3Prefix}/`}${done.file_path}`
            : path.resolve(storage.dir, done.file_path)
        if (json) return yield* printJson({ ...done, location })
        yield* printLines(`exported ${done.row_count ?? 0} rows of ${table} to ${location} (export ${done.id})`)
      })
    )
).pipe(
  Command.withDescription("Export a table as CSV (COPY … WITH CSV HEADER), to a file or to the store"),
  Command.withSubcommands([latestCommand, downloadCommand])
)
