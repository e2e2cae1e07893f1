/**
 * An HLR batch's results applied (`docs/hlr.md`): the provider's results CSV and the cached results of
 * the numbers not sent, classified and written to the lists, `api_hlr_live_numbers`, the lookup cache
 * and the clean file.
 *
 * Classification by `live_status` (upper-cased; `docs/original-api.md` "HLR"): `LIVE` is **risky** when the
 * current network is on the risky-operators list, else **live**; the dead statuses are **dead**;
 * absent / inconclusive / no coverage are **monitor**; anything else is **unknown**: counted and
 * reported, written nowhere. Columns are read by name, so their order and extra columns do not matter.
 *
 * How it stays fast and flat in memory for a million rows: the CSV is split in one plain loop and its
 * rows go as COPY text into a temporary staging table on one connection (with the numbers of the
 * cleaned file beside it); everything else is set-based SQL over the two tables, and the list
 * entries stream back out of a COPY into `Lists.applyStream`. Nothing is held per row in JS.
 *
 * Idempotent: applying the same results again changes nothing (live rows and list entries are kept
 * when present, the cache is upserted with the same values), so a retried job may apply twice.
 */
import { Effect, Stream } from "effect"
import type pg from "pg"
import { RiskyOperators } from "../classification/RiskyOperators.ts"
import { Lists } from "../lists/Lists.ts"
import type { ApplyCounts, ListEntry } from "../lists/ListSchemas.ts"
import { CopyIn, copyOut, textField } from "../platform/CopyText.ts"
import { dedicatedClient, PgBulk, toDatabaseError } from "../platform/Database.ts"
import {
  UnreadableFile,
  type DatabaseError,
  type NotFound,
  type StorageError,
  type ValidationError
} from "../platform/Errors.ts"
import { FileStore } from "../platform/FileStore.ts"
import { csvRecords } from "./HlrResultsCsv.ts"

export { splitCsvRecord } from "./HlrResultsCsv.ts"

export type HlrCategory = "live" | "risky" | "dead" | "monitor" | "unknown"

const DEAD = ["NOT_AVAILABLE_NETWORK_ONLY", "NOT_APPLICABLE", "NO_TELESERVICE_PROVISIONED", "DEAD"]
const MONITOR = ["NO_COVERAGE", "INCONCLUSIVE", "ABSENT_SUBSCRIBER"]
/** How a LIVE result on a risky network is cached, so a reuse classifies it the same without the network. */
export const CACHED_RISKY = "LIVE_RISKY_NETWORK"
const DEAD_SET: ReadonlySet<string> = new Set(DEAD)
const MONITOR_SET: ReadonlySet<string> = new Set(MONITOR)

export const categoryOf = (status: string, risky: boolean): HlrCategory =>
  status === "LIVE"
    ? risky
      ? "risky"
      : "live"
    : status === CACHED_RISKY
      ? "risky"
      : DEAD_SET.has(status)
        ? "dead"
        : MONITOR_SET.has(status)
          ? "monitor"
          : "unknown"

const sqlList = (values: ReadonlyArray<string>) => values.map((v) => `'${v}'`).join(", ")
/** `categoryOf` for a cached status, in SQL. */
const CACHED_CATEGORY = `CASE
  WHEN c.live_status = 'LIVE' THEN 'live'
  WHEN c.live_status = '${CACHED_RISKY}' THEN 'risky'
  WHEN c.live_status IN (${sqlList(DEAD)}) THEN 'dead'
  WHEN c.live_status IN (${sqlList(MONITOR)}) THEN 'monitor'
  ELSE 'unknown' END`

/** The live table's columns besides the phone, each read from the dotted header of the same name. */
const LIVE_COLUMNS = [
  "error",
  "request_parameters_telephone_number",
  "request_parameters_cache_days_private",
  "request_parameters_cache_days_global",
  "request_parameters_save_to_cache",
  "request_parameters_output_format",
  "credits_spent",
  "detected_telephone_number",
  "formatted_telephone_number",
  "telephone_number_type",
  "live_status",
  "original_network",
  "original_network_details_name",
  "original_network_details_mccmnc",
  "original_network_details_country_name",
  "original_network_details_country_iso3",
  "original_network_details_area",
  "original_network_details_country_prefix",
  "current_network",
  "current_network_details_name",
  "current_network_details_mccmnc",
  "current_network_details_country_name",
  "current_network_details_country_iso3",
  "current_network_details_country_prefix",
  "is_ported",
  "timestamp"
] as const
const INTEGER_COLUMNS: ReadonlySet<string> = new Set([
  "request_parameters_cache_days_private",
  "request_parameters_cache_days_global"
])
const INTEGER = /^-?\d{1,9}$/
const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/
const CANONICAL = /^[1-9]\d{6,14}$/
const quoted = (c: string) => `"${c}"`

/** A cell as its column's COPY field: blank is NULL, and a value its column's type cannot take is NULL too. */
const cellField = (column: string, value: string | undefined): string => {
  if (value === undefined || value === "") return "\\N"
  if (INTEGER_COLUMNS.has(column)) return INTEGER.test(value) ? value : "\\N"
  if (column === "credits_spent") return NUMBER.test(value) ? value : "\\N"
  if (column === "timestamp") return TIMESTAMP.test(value) ? value : "\\N"
  return textField(value)
}

/** The number of a result as a canonical key: digits, no `+` or `00`; undefined when it is not one. */
export const resultKey = (formatted: string | undefined, detected: string | undefined): string | undefined => {
  const raw = formatted !== undefined && formatted.trim() !== "" ? formatted : detected
  if (raw === undefined) return undefined
  const digits = raw.replace(/[\s()+.-]/g, "").replace(/^00/, "")
  return CANONICAL.test(digits) ? digits : undefined
}

export interface HlrApplyInput {
  readonly fileId: string
  /** FileStore key of the provider's results CSV (absent when every number came from the cache). */
  readonly rawKey: string | null
  /** FileStore key of the cleaned file that was checked (one number per line). */
  readonly numbersKey: string
  /** FileStore key the clean file (`phone_number` header, live numbers) is written to. */
  readonly cleanKey: string
  /** Audit actor of the list writes (`hlr:<file_id>`). */
  readonly actor: string
}

export interface HlrApplyResult {
  /** Result rows in the provider's file. */
  readonly results: number
  /** Numbers answered from the cache instead of being sent. */
  readonly reused: number
  /** Result rows without a usable number (skipped, as the original did). */
  readonly skipped: number
  /** Numbers of the file with neither a result nor a cached one. */
  readonly missing: number
  readonly categories: Record<HlrCategory, number>
  /** Per `live_status` (upper-cased; blank as `""`), results and reused together. */
  readonly statuses: Record<string, number>
  readonly liveRowsAdded: number
  readonly clean: number
  readonly blacklist: ApplyCounts
  readonly monitor: ApplyCounts
}

const columnType = (column: string) =>
  INTEGER_COLUMNS.has(column)
    ? "integer"
    : column === "credits_spent"
      ? "double precision"
      : column === "timestamp"
        ? "timestamptz"
        : "text"

// Phones compare byte-wise (COLLATE "C", as the phone keys of the real tables, sql/0002): the temporary
// tables' indexes and the deduplicating sort otherwise call strcoll() per comparison (~0.6 s a million).
const STAGE = `CREATE TEMP TABLE hlr_stage (
  seq bigint NOT NULL, phone text COLLATE "C" NOT NULL, category text NOT NULL, status text NOT NULL,
  reused boolean NOT NULL DEFAULT false,
  ${LIVE_COLUMNS.map((c) => `${quoted(c)} ${columnType(c)}`).join(", ")})`

/** Streams the cleaned file's numbers into `hlr_file` (seq, phone). */
const stageFileNumbers = async (client: pg.ClientBase, body: AsyncIterable<Uint8Array>): Promise<number> => {
  const copy = new CopyIn(client, "COPY hlr_file (seq, phone) FROM STDIN")
  const decoder = new TextDecoder()
  let rest = ""
  let seq = 0
  let out = ""
  const line = (raw: string) => {
    const phone = raw.trim()
    if (phone !== "" && CANONICAL.test(phone)) out += `${seq++}\t${phone}\n`
  }
  for await (const chunk of body) {
    const text = rest + decoder.decode(chunk, { stream: true })
    const lines = text.split("\n")
    rest = lines.pop() ?? ""
    for (const l of lines) line(l)
    if (out.length >= 256 * 1024) {
      await copy.write(out)
      out = ""
    }
  }
  line(rest + decoder.decode())
  await copy.end(out)
  return seq
}

/** The live columns of a row that is not live: it only needs its phone, category and status. */
const NO_LIVE_COLUMNS = "\t\\N".repeat(LIVE_COLUMNS.length)

/** Parses the results CSV into `hlr_stage`; the rows staged and the rows skipped. */
const stageResults = async (
  client: pg.ClientBase,
  body: AsyncIterable<Uint8Array>,
  isRisky: (name: string | undefined) => boolean
): Promise<{ results: number; skipped: number }> => {
  const columns = ["seq", "phone", "category", "status", ...LIVE_COLUMNS].map(quoted).join(", ")
  const copy = new CopyIn(client, `COPY hlr_stage (${columns}) FROM STDIN`)
  let header: Array<number> | undefined
  let statusAt = -1
  let formattedAt = -1
  let detectedAt = -1
  let networkAt = -1
  let results = 0
  let skipped = 0
  let out = ""
  for await (const rows of csvRecords(body)) {
    for (const row of rows) {
      if (header === undefined) {
        const names = row.map((h) => h.replace(/\./g, "_"))
        statusAt = names.indexOf("live_status")
        formattedAt = names.indexOf("formatted_telephone_number")
        detectedAt = names.indexOf("detected_telephone_number")
        networkAt = names.indexOf("current_network_details_name")
        if (statusAt < 0 || (formattedAt < 0 && detectedAt < 0)) {
          throw new UnreadableFile({
            message: "the HLR results have no live_status or telephone number column: not hlrlookup's results CSV"
          })
        }
        header = LIVE_COLUMNS.map((c) => names.indexOf(c))
        continue
      }
      const phone = resultKey(row[formattedAt], row[detectedAt])
      if (phone === undefined) {
        skipped++
        continue
      }
      const status = (row[statusAt] ?? "").toUpperCase()
      const category = categoryOf(status, status === "LIVE" && isRisky(networkAt < 0 ? undefined : row[networkAt]))
      let line = `${results}\t${phone}\t${category}\t${textField(status)}`
      if (category === "live") {
        for (let i = 0; i < LIVE_COLUMNS.length; i++) {
          const at = header[i]!
          line += `\t${cellField(LIVE_COLUMNS[i]!, at < 0 ? undefined : row[at])}`
        }
      } else line += NO_LIVE_COLUMNS
      out += `${line}\n`
      results++
    }
    if (out.length >= 256 * 1024) {
      const wait = copy.write(out)
      out = ""
      if (wait !== undefined) await wait
    }
  }
  await copy.end(out)
  return { results, skipped }
}

/** Lines of a COPY TO STDOUT of `phone\treason`, as list entries. */
async function* entriesOf(client: pg.ClientBase, statement: string): AsyncGenerator<ReadonlyArray<ListEntry>> {
  let rest = ""
  for await (const chunk of copyOut(client, statement)) {
    const lines = (rest + chunk.toString("utf8")).split("\n")
    rest = lines.pop() ?? ""
    const batch: Array<ListEntry> = []
    for (const l of lines) {
      const tab = l.indexOf("\t")
      batch.push({ phone: l.slice(0, tab), reason: l.slice(tab + 1), source: "CSV_CLEAN_UPLOAD" })
    }
    yield batch
  }
}

const REASONS = `CASE category WHEN 'dead' THEN 'HLR_FAILED' WHEN 'risky' THEN 'HLR_RISKY_NETWORK' ELSE 'HLR_MONITORED' END`
/** One row per phone (its first), narrow: deduplicated once, sorted once, for every statement after it. */
const FIRST_PER_PHONE = `hlr_first s`
const MAKE_FIRST = `CREATE TEMP TABLE hlr_first AS
  SELECT DISTINCT ON (phone) seq, phone, category, status, reused FROM hlr_stage ORDER BY phone, seq`

export const applyHlrResults = (
  input: HlrApplyInput
): Effect.Effect<
  HlrApplyResult,
  UnreadableFile | NotFound | DatabaseError | StorageError | ValidationError,
  PgBulk | FileStore | Lists | RiskyOperators
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const bulk = yield* PgBulk
      const files = yield* FileStore
      const lists = yield* Lists
      const risky = yield* RiskyOperators
      // A session of its own: the temporary tables need room in its local buffers (`temp_buffers`, 8 MB
      // by default, can only be raised before a session's first temporary table), else a million
      // staged rows go to disk and back on every statement.
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => dedicatedClient(bulk, "optimizer-hlr"),
          catch: (cause) => toDatabaseError(cause, "could not connect for the HLR results")
        }),
        (c) => Effect.promise(() => c.end().catch(() => undefined))
      )
      const run = <A>(what: string, f: () => Promise<A>) =>
        Effect.tryPromise({
          try: f,
          catch: (cause) => (cause instanceof UnreadableFile ? cause : toDatabaseError(cause, what))
        })
      const query = <R extends object = Record<string, unknown>>(text: string) =>
        run(text.slice(0, 60), () => client.query<R>(text).then((r) => r.rows))

      yield* query("SET temp_buffers = '256MB'")
      yield* query(STAGE)
      yield* query(`CREATE TEMP TABLE hlr_file (seq bigint NOT NULL, phone text COLLATE "C" NOT NULL)`)
      const numbers = yield* files.get(input.numbersKey)
      yield* run("staging the checked numbers", () => stageFileNumbers(client, numbers))
      yield* query("CREATE INDEX ON hlr_file (phone)")
      const staged =
        input.rawKey === null
          ? { results: 0, skipped: 0 }
          : yield* Effect.flatMap(files.get(input.rawKey), (body) =>
              run("staging the HLR results", () => stageResults(client, body, risky.isRisky))
            )
      yield* query("CREATE INDEX ON hlr_stage (phone)")
      // The numbers not sent: their cached result, as if returned (after every result, in file order).
      const reusedRows = yield* query<{ n: string }>(`
        WITH r AS (
          INSERT INTO hlr_stage (seq, phone, category, status, reused)
          SELECT 1000000000000 + f.seq, f.phone, ${CACHED_CATEGORY}, c.live_status, true
          FROM hlr_file f JOIN hlr_lookups_cache c ON c.custom_variable_1 = f.phone
          WHERE NOT EXISTS (SELECT 1 FROM hlr_stage s WHERE s.phone = f.phone)
          RETURNING 1)
        SELECT count(*)::text AS n FROM r`)
      const missingRows = yield* query<{ n: string }>(`
        SELECT count(*)::text AS n FROM hlr_file f WHERE NOT EXISTS (SELECT 1 FROM hlr_stage s WHERE s.phone = f.phone)`)
      const counted = yield* query<{ category: HlrCategory; status: string; n: string }>(
        "SELECT category, status, count(*)::text AS n FROM hlr_stage GROUP BY 1, 2"
      )
      yield* query(MAKE_FIRST)
      const liveCols = LIVE_COLUMNS.map(quoted).join(", ")
      const live = yield* query<{ n: string }>(`
        WITH i AS (
          INSERT INTO api_hlr_live_numbers (custom_variable_1, ${liveCols})
          SELECT phone, ${LIVE_COLUMNS.map((c) => (c === "timestamp" ? `coalesce(s."timestamp", now())` : `s.${quoted(c)}`)).join(", ")}
          FROM hlr_stage s WHERE s.category = 'live' AND NOT s.reused
          -- a phone answered twice: the first row (insertion follows the staging order) is kept
          ON CONFLICT (custom_variable_1) DO NOTHING RETURNING 1)
        SELECT count(*)::text AS n FROM i`)
      // The cache: the phones it has are updated, the others inserted plainly, in one transaction. An
      // `INSERT … ON CONFLICT DO UPDATE` of the same rows costs twice a plain insert (speculative
      // insertion: 2.8 s against 1.4 s a million); it stays as the fallback should a phone be inserted
      // by another session between the two statements (a unique violation).
      const cached = `CASE WHEN category = 'risky' THEN '${CACHED_RISKY}' ELSE status END`
      yield* run("updating the HLR lookup cache", async () => {
        try {
          await client.query("BEGIN")
          await client.query(`
            UPDATE hlr_lookups_cache c SET live_status = ${cached}, looked_up_at = now()
            FROM ${FIRST_PER_PHONE} WHERE NOT s.reused AND c.custom_variable_1 = s.phone`)
          await client.query(`
            INSERT INTO hlr_lookups_cache (custom_variable_1, live_status, looked_up_at)
            SELECT phone, ${cached}, now() FROM ${FIRST_PER_PHONE}
            WHERE NOT s.reused AND NOT EXISTS (SELECT 1 FROM hlr_lookups_cache c WHERE c.custom_variable_1 = s.phone)`)
          await client.query("COMMIT")
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined)
          if (!(error instanceof Error && "code" in error && error.code === "23505")) throw error
          await client.query(`
            INSERT INTO hlr_lookups_cache (custom_variable_1, live_status, looked_up_at)
            SELECT phone, ${cached}, now() FROM ${FIRST_PER_PHONE} WHERE NOT s.reused
            ON CONFLICT (custom_variable_1) DO UPDATE SET live_status = EXCLUDED.live_status, looked_up_at = EXCLUDED.looked_up_at`)
        }
      })

      // The clean file: the header, then the live numbers.
      const writer = yield* files.openWriter(input.cleanKey)
      const clean = yield* run("writing the HLR clean file", async () => {
        try {
          await writer.write("phone_number\n")
          const copy = copyOut(
            client,
            `COPY (SELECT phone FROM ${FIRST_PER_PHONE} WHERE s.category = 'live' ORDER BY s.seq) TO STDOUT`
          )
          for await (const chunk of copy) await writer.write(chunk)
          await writer.close()
          return copy.rowCount ?? 0
        } catch (error) {
          await writer.abort()
          throw error
        }
      })

      const options = { actor: input.actor, mode: "hlr" as const }
      const entries = (categories: string) =>
        Stream.fromAsyncIterable(
          entriesOf(
            client,
            `COPY (SELECT phone, ${REASONS} FROM ${FIRST_PER_PHONE}
               WHERE s.category IN (${categories}) ORDER BY s.seq) TO STDOUT`
          ),
          (cause) => toDatabaseError(cause, "reading the HLR list entries")
        ).pipe(Stream.flattenIterable)
      const blacklist = yield* lists.applyStream("blacklist", entries("'dead', 'risky'"), options)
      const monitor = yield* lists.applyStream("monitor", entries("'monitor'"), options)
      yield* query("DROP TABLE IF EXISTS hlr_stage, hlr_file, hlr_first")

      const categories: Record<HlrCategory, number> = { live: 0, risky: 0, dead: 0, monitor: 0, unknown: 0 }
      const statuses: Record<string, number> = {}
      for (const row of counted) {
        categories[row.category] += Number(row.n)
        statuses[row.status] = (statuses[row.status] ?? 0) + Number(row.n)
      }
      return {
        results: staged.results,
        reused: Number(reusedRows[0]?.n ?? 0),
        skipped: staged.skipped,
        missing: Number(missingRows[0]?.n ?? 0),
        categories,
        statuses,
        liveRowsAdded: Number(live[0]?.n ?? 0),
        clean,
        blacklist,
        monitor
      }
    })
  )
