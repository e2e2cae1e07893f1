/**
 * `npx optimizer mmd …`: MessageWhiz (`docs/mmd.md`) from a shell, in this process.
 *
 * - `mmd snapshot [--date YYYY-MM-DD]`: the day snapshot (default yesterday UTC), as `/save-data-for-…`.
 * - `mmd costs [--date] [--dry-run]`: the cost push to Voluum, as `/update-costs-for-mmd`.
 * - `mmd live [--search]`: today's broadcasts, each row printed as it arrives (JSON lines with `--json`).
 * - `mmd files`: the snapshot files, newest first; `mmd download <file-id> [--out f]` one of them.
 */
import { Effect, Option, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Mmd } from "@optimizer/core"
import { writeDownload } from "../fileCommands.ts"
import { printJson, printLines, printTable } from "../output.ts"
import { withServices } from "../runtime.ts"

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))
const date = Flag.String("date").pipe(
  Flag.optional,
  Flag.withDescription("the UTC day, YYYY-MM-DD (default yesterday)")
)

const snapshotCommand = Command.make("snapshot", { date, json }, ({ date, json }) =>
  withServices(
    Effect.gen(function* () {
      const result = yield* Mmd.use((m) => m.snapshot(Option.getOrUndefined(date)))
      if (json) return yield* printJson(result)
      yield* printLines(
        `saved ${result.broadcast_count} broadcasts of ${result.date} to ${result.filename} (file ${result.file_id})`,
        ...result.skipped.map((s) => `skipped broadcast ${s.broadcast_id} (${s.name}): ${s.reason}`)
      )
    })
  )
).pipe(Command.withDescription("Snapshot a day's sent MessageWhiz broadcasts with their Voluum totals (file + stats)"))

const costsCommand = Command.make(
  "costs",
  {
    date,
    dryRun: Flag.Boolean("dry-run").pipe(Flag.withDefault(false), Flag.withDescription("show what would be sent")),
    json
  },
  ({ date, dryRun, json }) =>
    withServices(
      Effect.gen(function* () {
        const result = yield* Mmd.use((m) => m.pushCosts(Option.getOrUndefined(date), { dryRun }))
        if (json) return yield* printJson(result)
        yield* printTable(
          result.updates.map((u) => ({ ...u, currency: result.currency, error: u.error ?? "" })),
          ["campaign_id", "rows", "total_cost", "currency", "chunk", "response", "error"]
        )
        yield* printLines(
          `${result.dry_run ? "would set" : "set"} the costs of ${result.total_rows} campaigns for ${result.date} (${result.broadcasts} broadcasts, ${result.failed} refused)`,
          ...result.skipped.map((s) => `skipped broadcast ${s.broadcast_id} (${s.name}): ${s.reason}`)
        )
      })
    )
).pipe(Command.withDescription("Set a day's MessageWhiz costs per Voluum campaign (default yesterday UTC)"))

const liveCommand = Command.make(
  "live",
  {
    search: Flag.String("search").pipe(Flag.optional, Flag.withDescription("only broadcasts whose name contains this")),
    json
  },
  ({ search, json }) =>
    withServices(
      Effect.gen(function* () {
        const events = yield* Mmd.use((m) => m.live(Option.getOrUndefined(search)))
        yield* events.pipe(
          Stream.runForEach((event) => {
            if (json) return printLines(JSON.stringify(event))
            switch (event.type) {
              case "row": {
                const r = event.row
                return printLines(
                  `${event.broadcast}  ${r["Broadcast ID"]}  ${r["Send Date"]}  sent ${r["DLR Sent Count"]}  clicks ${r["BC Unique Clicks"]}  CTR ${r.CTR}  visits ${r["Voluum Visits"]}  click2reg ${r["Click 2 REG"]}`
                )
              }
              case "error":
                return printLines(`${event.broadcast}  error: ${event.error}`)
              case "broadcast_done":
                return printLines(`${event.broadcast}  done`)
            }
          })
        )
      })
    )
).pipe(Command.withDescription("Today's (UTC) broadcasts with their Voluum totals, printed as they arrive"))

const filesCommand = Command.make("files", { json }, ({ json }) =>
  withServices(
    Effect.gen(function* () {
      const files = yield* Mmd.use((m) => m.files())
      if (json) return yield* printJson({ items: files })
      yield* printTable(files, ["id", "filename", "data_date", "number_of_broadcasts", "uploaded_at"])
    })
  )
).pipe(Command.withDescription("The MessageWhiz snapshot files, newest first"))

const downloadCommand = Command.make(
  "download",
  {
    id: Argument.String("file-id").pipe(Argument.withDescription("the snapshot file's id (from `mmd files`)")),
    out: Flag.String("out").pipe(Flag.optional, Flag.withDescription("where to write it (default: stdout)"))
  },
  ({ id, out }) =>
    withServices(
      Effect.flatMap(
        Mmd.use((m) => m.download(id)),
        (file) => writeDownload(file, out)
      )
    )
).pipe(
  Command.withDescription(
    "Download a snapshot file, MMD_Data_<date>.csv (as GET /{file_id}/download-broadcasts-history)"
  )
)

export const mmdCommand = Command.make("mmd").pipe(
  Command.withDescription("MessageWhiz: day snapshots, the cost push to Voluum, the live broadcasts"),
  Command.withSubcommands([snapshotCommand, costsCommand, liveCommand, filesCommand, downloadCommand])
)
