/**
 * `npx optimizer lists …`: the phone lists for operators.
 *
 *   lists import <blacklist|whitelist|monitor> <file> [--reason R] [--source S] [--country GB] [--json]
 *   lists remove <phone…> [--list L] [--reason R] [--json]
 *   lists explain <phone> [--json]
 *   lists export <list> <file>
 *   lists counts [--json]
 *
 * `import` reads either a plain file of numbers (one per line; the first CSV column is used) or a
 * CSV whose header names a `phone` column (also `phone_number`, `custom_variable_1`, `number`,
 * `mobile`, `msisdn`), with optional `reason`, `source`, `ip`, `os_version`, `browser_version` /
 * `user_agent` and `country_code` columns; `--reason` / `--source` fill rows that have none.
 * Numbers may be typed in any format; `--country` lets national numbers (`07700 900123`) through.
 * It is an admin's write: numbers are moved off the other lists (sticky entries too), and
 * blacklist entries become sticky. Every change is audited with actor `cli`.
 */
import { createWriteStream, statSync } from "node:fs"
import { once } from "node:events"
import { Effect, Option, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { isSupportedCountry, Lists, StorageError, ValidationError, type ListExplanation } from "@optimizer/core"
import { printJson, printLines } from "../output.ts"
import { progressFlag, readWithProgress, withProgress } from "../progress.ts"
import { withServices } from "../runtime.ts"
import { manualImportCommands } from "./manualImports.ts"

const ACTOR = "cli"
const LIST_NAMES = ["blacklist", "whitelist", "monitor"] as const

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))

const countryHint = (country: Option.Option<string>) =>
  Option.match(country, {
    onNone: () => Effect.succeed(undefined),
    onSome: (raw) => {
      const upper = raw.trim().toUpperCase()
      return isSupportedCountry(upper)
        ? Effect.succeed(upper)
        : Effect.fail(new ValidationError({ message: `unknown country code "${raw}"`, field: "country" }))
    }
  })

const importCommand = Command.make(
  "import",
  {
    list: Argument.Literals("list", LIST_NAMES).pipe(Argument.withDescription("the list to write to")),
    file: Argument.File("file", { mustExist: true }).pipe(
      Argument.withDescription("numbers, one per line, or a CSV with a phone column")
    ),
    reason: Flag.String("reason").pipe(Flag.optional, Flag.withDescription("reason of rows that have none")),
    source: Flag.String("source").pipe(Flag.optional, Flag.withDescription("source of rows that have none")),
    country: Flag.String("country").pipe(
      Flag.optional,
      Flag.withDescription("ISO country of national numbers (07700 900123 with GB)")
    ),
    json,
    progress: progressFlag
  },
  ({ list, file, reason, source, country, json, progress }) =>
    withServices(
      Effect.gen(function* () {
        const defaultCountry = yield* countryHint(country)
        const size = statSync(file).size
        const counts = yield* withProgress({ label: `import ${list}`, unit: "bytes", mode: progress, json }, (p) =>
          Lists.use((lists) =>
            lists.importCsv(list, () => readWithProgress(file, size, p), {
              actor: ACTOR,
              mode: "manual",
              ...(defaultCountry === undefined ? {} : { defaultCountry }),
              ...(Option.isSome(reason) ? { reason: reason.value } : {}),
              ...(Option.isSome(source) ? { source: source.value } : {})
            })
          )
        )
        if (json) return yield* printJson({ list, ...counts })
        yield* printLines(
          `${counts.total} rows read into ${list}: ${counts.added} added, ${counts.moved} moved from another list, ` +
            `${counts.updated} updated, ${counts.unchanged} unchanged, ${counts.repeated} repeated in the file, ` +
            `${counts.invalid} invalid`,
          ...(counts.invalid > 0
            ? [`invalid numbers (first ${counts.invalidSamples.length}): ${counts.invalidSamples.join(", ")}`]
            : [])
        )
      })
    )
).pipe(Command.withDescription("Import numbers into a list (moving them off the others; audited as 'cli')"))

const removeCommand = Command.make(
  "remove",
  {
    phones: Argument.String("phone").pipe(
      Argument.variadic({ min: 1 }),
      Argument.withDescription("numbers, any format")
    ),
    list: Flag.Literals("list", LIST_NAMES).pipe(Flag.optional, Flag.withDescription("only this list (default: all)")),
    reason: Flag.String("reason").pipe(Flag.optional, Flag.withDescription("why, for the audit")),
    json
  },
  ({ phones, list, reason, json }) =>
    withServices(
      Effect.gen(function* () {
        const result = yield* Lists.use((lists) =>
          lists.remove(phones, {
            actor: ACTOR,
            ...(Option.isSome(list) ? { list: list.value } : {}),
            ...(Option.isSome(reason) ? { reason: reason.value } : {})
          })
        )
        // The HTTP answer's keys (POST /lists/{list}/remove).
        if (json)
          return yield* printJson({ removed: result.removed, not_listed: result.notListed, invalid: result.invalid })
        yield* printLines(
          `removed ${result.removed} entries; ${result.notListed} numbers were not listed` +
            (result.invalid.length > 0 ? `; not phone numbers: ${result.invalid.join(", ")}` : "")
        )
      })
    )
).pipe(Command.withDescription("Take numbers off the lists (sticky entries too)"))

/** GET /lists/explain's keys: the history in snake_case, as the HTTP API names them. */
const explanationJson = (e: ListExplanation) => ({
  ...e,
  history: e.history.map(({ fromList, toList, createdAt, ...entry }) => ({
    ...entry,
    from_list: fromList,
    to_list: toList,
    created_at: createdAt
  }))
})

const describeExplanation = (e: ListExplanation): ReadonlyArray<string> => [
  e.list === null
    ? `${e.phone}: on no list`
    : `${e.phone}: on the ${e.list} since ${e.since?.toISOString() ?? "?"}` +
      `${e.reason === null ? "" : `, reason ${e.reason}`}${e.source === null ? "" : `, source ${e.source}`}` +
      (e.sticky ? " (sticky: a Voluum classification does not move it)" : ""),
  ...(e.history.length === 0 ? [] : ["history (newest first):"]),
  ...e.history.map(
    (h) =>
      `  ${h.createdAt.toISOString()}  ${h.action.padEnd(6)} ${h.fromList ?? "-"} -> ${h.toList ?? "-"}` +
      `${h.reason === null ? "" : `  reason ${h.reason}`}${h.source === null ? "" : `  source ${h.source}`}  by ${h.actor}`
  )
]

const explainCommand = Command.make(
  "explain",
  { phone: Argument.String("phone").pipe(Argument.withDescription("the number, any format")), json },
  ({ phone, json }) =>
    withServices(
      Effect.gen(function* () {
        const explained = yield* Lists.use((lists) => lists.explain(phone))
        if (json) return yield* printJson(explanationJson(explained))
        yield* printLines(...describeExplanation(explained))
      })
    )
).pipe(Command.withDescription("Where a number is, why, since when, and its history"))

const exportCommand = Command.make(
  "export",
  {
    list: Argument.Literals("list", LIST_NAMES),
    file: Argument.String("file").pipe(Argument.withDescription("the CSV file to write"))
  },
  ({ list, file }) =>
    withServices(
      Effect.gen(function* () {
        const out = createWriteStream(file)
        const failed = (cause: unknown) =>
          new StorageError({ message: `could not write ${file}: ${(cause as Error)?.message ?? String(cause)}`, cause })
        let bytes = 0
        yield* Lists.use((lists) =>
          lists.exportList(list).pipe(
            Stream.runForEach((chunk) =>
              Effect.tryPromise({
                try: async () => {
                  bytes += chunk.byteLength
                  if (!out.write(chunk)) await once(out, "drain")
                },
                catch: failed
              })
            )
          )
        ).pipe(Effect.onError(() => Effect.sync(() => out.destroy())))
        yield* Effect.tryPromise({
          try: () =>
            new Promise<void>((resolve, reject) =>
              out.end((error?: Error | null) => (error ? reject(error) : resolve()))
            ),
          catch: failed
        })
        yield* printLines(`exported the ${list} to ${file} (${bytes} bytes)`)
      })
    )
).pipe(Command.withDescription("Write a list to a CSV file (with a header)"))

const countsCommand = Command.make("counts", { json }, ({ json }) =>
  withServices(
    Effect.gen(function* () {
      const counts = yield* Lists.use((lists) => lists.counts)
      if (json) return yield* printJson(counts)
      yield* printLines(...LIST_NAMES.map((l) => `${l.padEnd(10)} ${counts[l]}`))
    })
  )
).pipe(Command.withDescription("How many numbers each list holds"))

export const listsCommand = Command.make("lists").pipe(
  Command.withDescription(
    "The phone lists: import, remove, explain, export, counts; the manual imports (manual-import, history, result, import-blacklist-csv)"
  ),
  Command.withSubcommands([
    importCommand,
    removeCommand,
    explainCommand,
    exportCommand,
    countsCommand,
    ...manualImportCommands
  ])
)
