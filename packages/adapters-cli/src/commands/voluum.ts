/**
 * Voluum from the command line (the file commands are `fileCommands.ts`'s):
 *
 *   npx optimizer voluum sync-reports --from 2025-05-01T00:00:00Z --to 2025-05-02T00:00:00Z [--json]
 *   npx optimizer voluum sync-conversions --from … --to … [--json]
 *   npx optimizer voluum sync-reports-range|sync-conversions-range --year 2025 --month 5 --start-day 1 --end-day 8 [--json]
 *   npx optimizer voluum offers|campaigns [--from … --to …] [--json]
 *   npx optimizer smart-cleaning create --country GB [--from-date 2025-05-01] [--to-date …]
 *   npx optimizer smart-cleaning upload clickers.csv | list [--status …] | process <id> --offer "Offer A" [--filter-regs]
 *       [--filter-last-24h] [--wait] | download <id> [--out file.csv] | archive <id> | delete <id>
 *   npx optimizer reg-search search --country GB [--from-date …] [--to-date …] | list | process <id> --offer … [--wait]
 *       | download <id> [--out …] | archive <id> | delete <id>
 *
 * The syncs run in this process (the HTTP endpoints queue them as jobs); processing a smart-cleaning
 * entry or a REG search queues a job, which a worker runs (`npx optimizer worker`, or the quick start);
 * `--wait` waits for it and prints its outcome.
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import {
  ConversionsSync,
  RegSearch,
  ReportsSync,
  SmartCleaning,
  VoluumClient,
  VoluumSyncJobs,
  type JobInfo
} from "@optimizer/core"
import { downloadCommand, entryCommand, listCommand, switchFlag, uploadCommand } from "../fileCommands.ts"
import { printJson, printLines, printTable } from "../output.ts"
import { followJob } from "../jobWait.ts"
import { progressFlag, withProgress, type ProgressMode } from "../progress.ts"
import { withServices } from "../runtime.ts"

const json = switchFlag("json", "print the result as JSON")
const from = Flag.String("from").pipe(
  Flag.withDescription("start of the window: an ISO date-time on a whole hour, e.g. 2025-05-01T00:00:00Z")
)
const to = Flag.String("to").pipe(Flag.withDescription("end of the window (exclusive), e.g. 2025-05-02T00:00:00Z"))
const id = Argument.String("id").pipe(Argument.withDescription("the entry's id"))
const country = Flag.String("country").pipe(Flag.withDescription("ISO2 country code, e.g. GB"))
const fromDate = Flag.String("from-date").pipe(Flag.optional, Flag.withDescription("first day (YYYY-MM-DD, UTC)"))
const toDate = Flag.String("to-date").pipe(Flag.optional, Flag.withDescription("last day, inclusive (YYYY-MM-DD, UTC)"))
const offers = Flag.String("offer").pipe(Flag.atLeast(1), Flag.withDescription("an offer name (repeat for several)"))
const wait = switchFlag("wait", "wait for the processing job (a worker must be running) and print its outcome")

const optional = <K extends string>(key: K, value: Option.Option<string>): { [P in K]?: string } =>
  (Option.isSome(value) ? { [key]: value.value } : {}) as { [P in K]?: string }

/** Follows a job to its end, with its progress on stderr (`progress.ts`). */
const waitForJob = (jobId: string, mode: ProgressMode, json: boolean) =>
  withProgress({ label: `job ${jobId.slice(0, 8)}`, mode, json }, (p) => followJob(jobId, p))

const printResult = (asJson: boolean, value: object, lines: () => ReadonlyArray<string>) =>
  asJson ? printJson(value) : printLines(...lines())

// ---- voluum -------------------------------------------------------------------------------------

const syncReports = Command.make("sync-reports", { from, to, json }, ({ from, to, json }) =>
  withServices(
    Effect.gen(function* () {
      const result = yield* ReportsSync.use((s) => s.syncReports({ from, to }, { actor: "cli:voluum-sync-reports" }))
      yield* printResult(json, result, () => [
        `${result.from} → ${result.to}: ${result.rows_fetched} report rows, ${result.phones} phones`,
        `blacklist ${result.row_counts.blacklist_rows}, whitelist ${result.row_counts.whitelist_rows}, monitor ${result.row_counts.monitor_rows}, unknown ${result.unknown_rows}`,
        `invalid phones ${result.invalid_phones}, undecryptable tokens ${result.undecryptable_tokens}, sticky entries kept ${result.kept_sticky}`
      ])
    })
  )
).pipe(Command.withDescription("Sync the Voluum traffic-source reports of a window into the history and the lists"))

const syncConversions = Command.make("sync-conversions", { from, to, json }, ({ from, to, json }) =>
  withServices(
    Effect.gen(function* () {
      const result = yield* ConversionsSync.use((s) => s.syncConversions({ from, to }))
      yield* printResult(json, result, () => [
        `${result.from} → ${result.to}: ${result.fetched} conversions, ${result.inserted} new`,
        `pushed to Ongage ${result.pushed}, failed ${result.push_failed}, invalid phones ${result.invalid_phones}, other countries ${result.other_countries}`,
        `ongage: ${result.ongage}${result.ongage_error === undefined ? "" : ` (${result.ongage_error})`}`
      ])
    })
  )
).pipe(Command.withDescription("Sync the Voluum conversions of a window and push new converters to Ongage"))

/** One sync job per day of [start-day, end-day) of a month, queued for a worker (as the `…for_range` routes). */
const rangeSync = (kind: "reports" | "conversions") =>
  Command.make(
    `sync-${kind}-range`,
    {
      year: Flag.Int("year").pipe(Flag.withDescription("the year, e.g. 2025")),
      month: Flag.Int("month").pipe(Flag.withDescription("the month, 1–12")),
      startDay: Flag.Int("start-day").pipe(Flag.withDescription("the first day")),
      endDay: Flag.Int("end-day").pipe(Flag.withDescription("the day after the last (rolls over the month's end)")),
      json
    },
    ({ year, month, startDay, endDay, json }) =>
      withServices(
        Effect.gen(function* () {
          const range = { year, month, startDay, endDay }
          const queued = yield* VoluumSyncJobs.use((s) =>
            kind === "reports" ? s.syncReportsForRange(range) : s.syncConversionsForRange(range)
          )
          yield* printResult(json, queued, () => [
            `queued ${queued.job_ids.length} ${kind} syncs (a worker runs them):`,
            ...queued.windows.map((w, i) => `  ${w.from} → ${w.to}  job ${queued.job_ids[i]}`)
          ])
        })
      )
  ).pipe(
    Command.withDescription(
      kind === "reports"
        ? "Queue one reports sync per day of a month (as POST /sync-voluum-reports_for_range)"
        : "Queue one conversions sync per day of a month (as POST /sync-voluum-conversions-for-range)"
    )
  )

const entities = (kind: "offers" | "campaigns") =>
  Command.make(
    kind,
    {
      from: from.pipe(Flag.optional),
      to: to.pipe(Flag.optional),
      json
    },
    ({ from, to, json }) =>
      withServices(
        Effect.gen(function* () {
          const window = Option.isSome(from) && Option.isSome(to) ? { from: from.value, to: to.value } : undefined
          const names = yield* VoluumClient.use((v) => (kind === "offers" ? v.offers(window) : v.campaigns(window)))
          const rows = [...names].map(([entityId, name]) => ({ id: entityId, name }))
          if (json) return yield* printJson(rows)
          yield* printTable(rows, ["id", "name"])
        })
      )
  ).pipe(
    Command.withDescription(
      `Voluum ${kind}: id → name, for those with traffic in the window (default: the last 90 days)`
    )
  )

export const voluumCommand = Command.make("voluum").pipe(
  Command.withDescription("Voluum: report and conversion syncs, offers and campaigns"),
  Command.withSubcommands([
    syncReports,
    syncConversions,
    rangeSync("reports"),
    rangeSync("conversions"),
    entities("offers"),
    entities("campaigns")
  ])
)

// ---- smart cleaning -----------------------------------------------------------------------------

const ENTRY_COLUMNS = [
  "id",
  "original_filename",
  "status",
  "record_count_total",
  "record_count_clean",
  "offer_count",
  "uploaded_at",
  "error_message"
] as const

const processed = (job: JobInfo, asJson: boolean) =>
  asJson
    ? printJson(job)
    : printLines(
        job.state === "completed"
          ? `job ${job.id} completed: ${JSON.stringify(job.result)}`
          : `job ${job.id} ${job.state}: ${job.error ?? ""}`
      )

const smartCreate = Command.make("create", { country, fromDate, toDate, json }, ({ country, fromDate, toDate, json }) =>
  withServices(
    Effect.gen(function* () {
      const entry = yield* SmartCleaning.use((s) =>
        s.createFromCountry({ countryCode: country, ...optional("fromDate", fromDate), ...optional("toDate", toDate) })
      )
      yield* printResult(json, entry, () => [
        `${entry.id}  ${entry.original_filename}: ${entry.record_count_total} numbers, ${entry.offer_count} offers`,
        ...entry.offers
          .split("^")
          .filter((o) => o !== "")
          .map((o) => `  offer: ${o}`)
      ])
    })
  )
).pipe(Command.withDescription("New smart-cleaning entry from the whitelist numbers of a country"))

const smartUpload = uploadCommand({
  description: "New smart-cleaning entry from a CSV file",
  file: "a .csv: phone, or phone,timestamp per line",
  run: (name, body) => SmartCleaning.use((s) => s.upload({ filename: name, body })),
  lines: (entry) => [`${entry.id}  ${entry.original_filename}: ${entry.status}`]
})

const smartList = listCommand({
  description: "Smart-cleaning entries, newest first",
  run: (status) => SmartCleaning.use((s) => s.list(optional("status", status))),
  columns: ENTRY_COLUMNS
})

const smartProcess = Command.make(
  "process",
  {
    id,
    offers,
    filterRegs: switchFlag("filter-regs", "also remove numbers with a REG on the offers"),
    filterLast24h: switchFlag(
      "filter-last-24h",
      "also remove numbers with a live click on the offers in the last 24 hours"
    ),
    wait,
    json,
    progress: progressFlag
  },
  ({ id, offers, filterRegs, filterLast24h, wait, json, progress }) =>
    withServices(
      Effect.gen(function* () {
        const started = yield* SmartCleaning.use((s) => s.process(id, { offers, filterRegs, filterLast24h }))
        if (!wait) return yield* printResult(json, started, () => [`processing ${id}: job ${started.job_id}`])
        yield* processed(yield* waitForJob(started.job_id, progress, json), json)
      })
    )
).pipe(Command.withDescription("Remove the numbers that converted on the offers (a job)"))

const smartDownload = downloadCommand(id, {
  description: "The processed list (phone[,timestamp] per line)",
  run: (id) => SmartCleaning.use((s) => s.download(id))
})

const smartArchive = entryCommand("archive", id, {
  description: "Archive a smart-cleaning entry",
  run: (id) => SmartCleaning.use((s) => s.archive(id))
})

const smartDelete = entryCommand("delete", id, {
  description: "Delete a smart-cleaning entry and its files",
  run: (id) => SmartCleaning.use((s) => s.delete(id))
})

export const smartCleaningCommand = Command.make("smart-cleaning").pipe(
  Command.withDescription("Smart cleaning: clickers minus the numbers that already converted on chosen offers"),
  Command.withSubcommands([smartCreate, smartUpload, smartList, smartProcess, smartDownload, smartArchive, smartDelete])
)

// ---- REG search ---------------------------------------------------------------------------------

const regCreate = Command.make("search", { country, fromDate, toDate, json }, ({ country, fromDate, toDate, json }) =>
  withServices(
    Effect.gen(function* () {
      const entry = yield* RegSearch.use((s) =>
        s.search({ countryCode: country, ...optional("fromDate", fromDate), ...optional("toDate", toDate) })
      )
      yield* printResult(json, entry, () => [
        `${entry.id}  ${entry.original_filename}: ${entry.offer_count} offers`,
        ...entry.offers.split("^").map((o) => `  offer: ${o}`)
      ])
    })
  )
).pipe(Command.withDescription("New REG search for a country (offers with conversions in the window)"))

const regList = listCommand({
  description: "REG searches, newest first",
  run: (status) => RegSearch.use((s) => s.list(optional("status", status))),
  columns: [
    "id",
    "original_filename",
    "country_code",
    "status",
    "record_count_clean",
    "offer_count",
    "uploaded_at",
    "error_message"
  ]
})

const regProcess = Command.make(
  "process",
  { id, offers, wait, json, progress: progressFlag },
  ({ id, offers, wait, json, progress }) =>
    withServices(
      Effect.gen(function* () {
        const started = yield* RegSearch.use((s) => s.process(id, { offers }))
        if (!wait) return yield* printResult(json, started, () => [`processing ${id}: job ${started.job_id}`])
        yield* processed(yield* waitForJob(started.job_id, progress, json), json)
      })
    )
).pipe(Command.withDescription("Find the numbers with a REG but no FTD on the offers (a job)"))

const regDownload = downloadCommand(id, {
  description: "The REG-only numbers, one per line",
  run: (id) => RegSearch.use((s) => s.download(id))
})

const regArchive = entryCommand("archive", id, {
  description: "Archive a REG search",
  run: (id) => RegSearch.use((s) => s.archive(id))
})

const regDelete = entryCommand("delete", id, {
  description: "Delete a REG search and its file",
  run: (id) => RegSearch.use((s) => s.delete(id))
})

export const regSearchCommand = Command.make("reg-search").pipe(
  Command.withDescription("REG search: numbers that registered on chosen offers but never deposited"),
  Command.withSubcommands([regCreate, regList, regProcess, regDownload, regArchive, regDelete])
)
