/**
 * The original's manual imports (docs/lists.md), as `lists` subcommands — the same core calls and
 * JSON keys as their HTTP routes; audited with actor `cli`:
 *
 *   lists manual-import <blacklist|monitor> <file.csv> [--json]   (POST /db-manual-update/import)
 *   lists history [--json]                                        (GET /db-manual-update/history)
 *   lists result <import-id> [--out file]                         (GET /db-manual-update/{import_id}/download)
 *   lists import-blacklist-csv <file.csv> [--json]                (POST /import-blacklist-csv)
 */
import { stat } from "node:fs/promises"
import { basename } from "node:path"
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ManualImports, NotFound } from "@optimizer/core"
import { switchFlag, writeDownload } from "../fileCommands.ts"
import { printJson, printLines, printTable } from "../output.ts"
import { progressFlag, readWithProgress, withProgress } from "../progress.ts"
import { withServices } from "../runtime.ts"

const ACTOR = "cli"
const json = switchFlag("json", "print the result as JSON")
const csvFile = Argument.String("file").pipe(Argument.withDescription("the CSV file"))

const sizeOf = (file: string) =>
  Effect.tryPromise({
    try: () => stat(file).then((s) => s.size),
    catch: () => new NotFound({ message: `no such file: ${file}` })
  })

const manualImport = Command.make(
  "manual-import",
  {
    target: Argument.Literals("target", ["blacklist", "monitor"] as const).pipe(
      Argument.withDescription("the list to import into")
    ),
    file: csvFile,
    json,
    progress: progressFlag
  },
  ({ target, file, json, progress }) =>
    withServices(
      Effect.gen(function* () {
        const size = yield* sizeOf(file)
        const result = yield* withProgress({ label: "import", unit: "bytes", mode: progress, json }, (p) =>
          ManualImports.use((imports) =>
            imports.importFile({
              target,
              filename: basename(file),
              body: readWithProgress(file, size, p),
              actor: ACTOR
            })
          )
        )
        if (json) return yield* printJson(result)
        yield* printLines(
          `import ${result.id} into the ${result.target}: ${result.uploaded} rows, ${result.accepted} accepted, ${result.rejected} rejected`,
          `per-row results: npx optimizer lists result ${result.id}`
        )
      })
    )
).pipe(
  Command.withDescription(
    "Import a CSV (phone, reason, source; optional os_version, user_agent, ip) into the blacklist or the monitor list, with a per-row result (as POST /db-manual-update/import)"
  )
)

const history = Command.make("history", { json }, ({ json }) =>
  withServices(
    Effect.gen(function* () {
      const items = yield* ManualImports.use((imports) => imports.history)
      if (json) return yield* printJson({ items })
      yield* printTable(items, [
        "id",
        "original_filename",
        "target",
        "uploaded_count",
        "accepted_count",
        "rejected_count",
        "created_at"
      ])
    })
  )
).pipe(Command.withDescription("The latest 50 manual imports, newest first (as GET /db-manual-update/history)"))

const result = Command.make(
  "result",
  {
    id: Argument.String("import-id").pipe(Argument.withDescription("the import's id (from `lists history`)")),
    out: Flag.String("out").pipe(Flag.optional, Flag.withDescription("where to write it (default: stdout)"))
  },
  ({ id, out }) =>
    withServices(
      Effect.flatMap(
        ManualImports.use((imports) => imports.resultFile(id)),
        (file) => writeDownload(file, out)
      )
    )
).pipe(
  Command.withDescription(
    "The result CSV of a manual import (phone,result) (as GET /db-manual-update/{import_id}/download)"
  )
)

const importBlacklistCsv = Command.make(
  "import-blacklist-csv",
  { file: csvFile, json, progress: progressFlag },
  ({ file, json, progress }) =>
    withServices(
      Effect.gen(function* () {
        const size = yield* sizeOf(file)
        const imported = yield* withProgress({ label: "import", unit: "bytes", mode: progress, json }, (p) =>
          ManualImports.use((imports) =>
            imports.importBlacklistCsv({
              filename: basename(file),
              body: readWithProgress(file, size, p),
              actor: ACTOR
            })
          )
        )
        if (json) return yield* printJson(imported)
        yield* printLines(
          `${imported.original_filename}: ${imported.rows_imported} rows written to the blacklist, ${imported.rows_rejected} rejected`
        )
      })
    )
).pipe(
  Command.withDescription(
    "Upsert a CSV whose header names blacklist columns (custom_variable_1, reason, clicks, …) into the blacklist (as POST /import-blacklist-csv)"
  )
)

export const manualImportCommands = [manualImport, history, result, importBlacklistCsv] as const
