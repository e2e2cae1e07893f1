/**
 * The one pass over an HLR batch's results (`HlrResults.ts`): each row parsed, classified and counted,
 * and the first row per phone sent where it goes as it is read — its live row straight into
 * `api_hlr_live_numbers`, its cache row and list entry into COPY streams of temporary tables, its
 * number into the clean file. Then the cleaned file's numbers that were not sent: their cached
 * result, as if returned. What is kept per row in JS is a few bits in a `PhoneTable`.
 */
import type pg from "pg"
import { escapeCopy } from "../platform/CopyText.ts"
import { UnreadableFile } from "../platform/Errors.ts"
import type { FileWriter } from "../platform/FileStore.ts"
import type { EntryQueue } from "./EntryQueue.ts"
import type { KeyedCopy } from "./HlrKeyedCopy.ts"
import { csvRecords, splitCsvRecord } from "./HlrResultsCsv.ts"
import { PhoneTable } from "./PhoneTable.ts"

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

/** The live table's columns besides the phone, each read from the dotted header of the same name. */
export const LIVE_COLUMNS = [
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

const INTEGER = /^-?\d{1,9}$/
const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/
const CANONICAL = /^[1-9]\d{6,14}$/

/** How a cell becomes its column's COPY field: a value the column's type cannot take is NULL. */
type Kind = "text" | "integer" | "number" | "timestamp"
const KINDS: ReadonlyArray<Kind> = LIVE_COLUMNS.map((c) =>
  c === "request_parameters_cache_days_private" || c === "request_parameters_cache_days_global"
    ? "integer"
    : c === "credits_spent"
      ? "number"
      : c === "timestamp"
        ? "timestamp"
        : "text"
)

/** The number of a result as a canonical key: digits, no `+` or `00`; undefined when it is not one. */
export const resultKey = (formatted: string | undefined, detected: string | undefined): string | undefined => {
  const raw = formatted !== undefined && formatted.trim() !== "" ? formatted : detected
  if (raw === undefined) return undefined
  if (CANONICAL.test(raw)) return raw
  const digits = raw.replace(/[\s()+.-]/g, "").replace(/^00/, "")
  return CANONICAL.test(digits) ? digits : undefined
}

/** The `source` of the list entries an HLR run writes. */
export const ENTRY_SOURCE = "CSV_CLEAN_UPLOAD"

const REASON: Partial<Record<HlrCategory, string>> = {
  dead: "HLR_FAILED",
  risky: "HLR_RISKY_NETWORK",
  monitor: "HLR_MONITORED"
}

/** Where the columns the pass reads are in the results (by name: order and extra columns do not matter). */
interface Header {
  readonly width: number
  readonly status: number
  readonly formatted: number
  readonly detected: number
  readonly network: number
  /** The index of each of `LIVE_COLUMNS` (-1 when absent). */
  readonly live: ReadonlyArray<number>
  /** The live columns follow one another in the results, in `LIVE_COLUMNS` order. */
  readonly contiguous: boolean
  /** The live columns with a type other than text: their position in `LIVE_COLUMNS`, their kind. */
  readonly typed: ReadonlyArray<readonly [number, Kind]>
}

const headerOf = (cells: ReadonlyArray<string>): Header => {
  const names = cells.map((h) => h.replace(/\./g, "_"))
  const status = names.indexOf("live_status")
  const formatted = names.indexOf("formatted_telephone_number")
  const detected = names.indexOf("detected_telephone_number")
  if (status < 0 || (formatted < 0 && detected < 0)) {
    throw new UnreadableFile({
      message: "the HLR results have no live_status or telephone number column: not hlrlookup's results CSV"
    })
  }
  const live = LIVE_COLUMNS.map((c) => names.indexOf(c))
  return {
    width: names.length,
    status,
    formatted,
    detected,
    network: names.indexOf("current_network_details_name"),
    live,
    contiguous: live.every((index, i) => index >= 0 && index === live[0]! + i),
    typed: KINDS.flatMap((kind, i) => (kind === "text" ? [] : [[i, kind] as const]))
  }
}

/** Both pending writes (either may be none). */
const both = (a: Promise<void> | undefined, b: Promise<void> | undefined): Promise<void> | undefined =>
  a === undefined ? b : b === undefined ? a : Promise.all([a, b]).then(() => undefined)

/** Flags of a phone in the pass's table. */
const FIRST = 1 // its first row (result or reuse) has been taken
const LIVE_ROW = 2 // its live row has been written (or found present)

/**
 * The clean file is written every ~16 Ki characters: a longer rope of short lines would outlive
 * the young generation's collections (and a flattened string over 128 KiB is allocated in the old
 * generation): garbage that only a full collection frees, lifting the worker's peak memory.
 */
const CHUNK = 16 * 1024

/** A text output written in chunks of ~16 KiB, waiting for its sink only when the sink asks to. */
class Chunked {
  private text = ""
  private readonly sink: (text: string) => Promise<void> | undefined
  constructor(sink: (text: string) => Promise<void> | undefined) {
    this.sink = sink
  }
  add(line: string): Promise<void> | undefined {
    this.text += line
    if (this.text.length < CHUNK) return undefined
    const text = this.text
    this.text = ""
    return this.sink(text)
  }
  rest(): string {
    const text = this.text
    this.text = ""
    return text
  }
}

export interface PassSinks {
  /** Into `api_hlr_live_numbers` (present phones kept); its transaction begun. */
  readonly live: KeyedCopy
  /** Into `hlr_lookups_cache` (present phones updated); its transaction begun. */
  readonly cache: KeyedCopy
  /** The entries of the blacklist (dead, risky) and of the monitor list, to their list writes. */
  readonly blacklist: EntryQueue
  readonly monitor: EntryQueue
  /** The clean file (its header already written). */
  readonly clean: FileWriter
  /** The connection the cached results of the numbers not sent are read on. */
  readonly lookup: pg.ClientBase
}

export interface PassCounts {
  results: number
  skipped: number
  reused: number
  missing: number
  clean: number
  readonly categories: Record<HlrCategory, number>
  readonly statuses: Record<string, number>
}

/**
 * Applies the results (when there are), commits the live rows and the cache, then applies the cached
 * results of the numbers not sent and closes the entry queues.
 */
export const resultsPass = async (
  results: AsyncIterable<Uint8Array> | undefined,
  numbers: AsyncIterable<Uint8Array>,
  sinks: PassSinks,
  isRisky: (name: string | undefined) => boolean
): Promise<PassCounts> => {
  const counts: PassCounts = {
    results: 0,
    skipped: 0,
    reused: 0,
    missing: 0,
    clean: 0,
    categories: { live: 0, risky: 0, dead: 0, monitor: 0, unknown: 0 },
    statuses: {}
  }
  const table = new PhoneTable(1 << 20)
  const clean = new Chunked((t) => sinks.clean.write(t))
  const now = new Date().toISOString()
  /** The writes of a phone's first row (result or reuse); a pending write to wait for, if any. */
  const first = (phone: string, category: HlrCategory): Promise<void> | undefined => {
    let wait: Promise<void> | undefined
    if (category === "live") {
      counts.clean++
      wait = clean.add(`${phone}\n`)
    }
    const reason = REASON[category]
    if (reason === undefined) return wait
    const more = (category === "monitor" ? sinks.monitor : sinks.blacklist).add(Number(phone), reason)
    return both(wait, more)
  }

  if (results !== undefined) {
    let header: Header | undefined
    // A plain line's cell boundaries: cell i is line.slice(starts[i], ends[i]).
    let starts = new Int32Array(64)
    let ends = new Int32Array(64)
    /** The cells of a plain line, when it has the header's width; else -1. */
    const bounds = (line: string, width: number): number => {
      if (starts.length < width + 1) {
        starts = new Int32Array(width + 1)
        ends = new Int32Array(width + 1)
      }
      let n = 0
      let from = 0
      for (let comma = line.indexOf(","); comma >= 0; comma = line.indexOf(",", comma + 1)) {
        if (n === width - 1) return -1
        starts[n] = from
        ends[n++] = comma
        from = comma + 1
      }
      starts[n] = from
      ends[n++] = line.length
      return n === width ? n : -1
    }
    const cell = (line: string, i: number): string | undefined =>
      i < 0 ? undefined : line.slice(starts[i]!, ends[i]!).trim()

    /** A result row: counted, and written where it goes; `liveLine` builds its live row's COPY line. */
    const row = (
      phone: string | undefined,
      rawStatus: string | undefined,
      network: () => string | undefined,
      liveLine: (phone: string) => string,
      plain: boolean
    ): Promise<void> | undefined => {
      if (phone === undefined) {
        counts.skipped++
        return undefined
      }
      counts.results++
      const status = (rawStatus ?? "").toUpperCase()
      const category = categoryOf(status, status === "LIVE" && isRisky(network()))
      counts.categories[category]++
      counts.statuses[status] = (counts.statuses[status] ?? 0) + 1
      const key = Number(phone)
      const flags = table.mark(key, FIRST | (category === "live" ? LIVE_ROW : 0))
      const live = category === "live" && (flags & LIVE_ROW) === 0 ? sinks.live.add(key, liveLine(phone)) : undefined
      if ((flags & FIRST) !== 0) return live
      const cached = category === "risky" ? CACHED_RISKY : status
      const cache = sinks.cache.add(key, `${phone}\t${plain ? cached : escapeCopy(cached)}\t${now}\n`)
      return both(both(live, cache), first(phone, category))
    }

    /** The live row of split cells, field by field (NULL is the empty field: the COPY says `NULL ''`). */
    const splitLiveLine = (h: Header, cells: ReadonlyArray<string>, phone: string, plain: boolean): string => {
      let line = phone
      for (let i = 0; i < h.live.length; i++) {
        const index = h.live[i]!
        const value = index < 0 ? undefined : cells[index]
        if (value === undefined || value === "") {
          line += KINDS[i] === "timestamp" ? `\t${now}` : "\t"
          continue
        }
        switch (KINDS[i]) {
          case "text":
            line += `\t${plain ? value : escapeCopy(value)}`
            break
          case "integer":
            line += INTEGER.test(value) ? `\t${value}` : "\t"
            break
          case "number":
            line += NUMBER.test(value) ? `\t${value}` : "\t"
            break
          default:
            line += TIMESTAMP.test(value) ? `\t${value}` : `\t${now}`
        }
      }
      return `${line}\n`
    }

    /**
     * The live row of a plain line whose live columns are contiguous: the line's span of them with
     * its commas turned into tabs, when no cell needs trimming or turns NULL for its type (a blank
     * timestamp takes the time of the run); else undefined.
     */
    const spanLiveLine = (h: Header, line: string, phone: string): string | undefined => {
      if (!h.contiguous) return undefined
      const from = starts[h.live[0]!]!
      const to = ends[h.live[h.live.length - 1]!]!
      const span = line.slice(from, to)
      if (span.includes(", ") || span.includes(" ,") || span.startsWith(" ") || span.endsWith(" ")) return undefined
      for (const [i, kind] of h.typed) {
        const value = line.slice(starts[h.live[i]!]!, ends[h.live[i]!]!)
        if (
          kind === "timestamp"
            ? !TIMESTAMP.test(value)
            : value !== "" && !(kind === "integer" ? INTEGER : NUMBER).test(value)
        )
          return undefined
      }
      return `${phone}\t${span.replaceAll(",", "\t")}\n`
    }

    for await (const { rows, plain } of csvRecords(results)) {
      for (const record of rows) {
        if (header === undefined) {
          header = headerOf(typeof record === "string" ? splitCsvRecord(record) : record)
          continue
        }
        const h = header
        let wait: Promise<void> | undefined
        if (typeof record === "string" && bounds(record, h.width) === h.width) {
          const line = record
          const formatted = cell(line, h.formatted)
          wait = row(
            resultKey(formatted, formatted === undefined || formatted === "" ? cell(line, h.detected) : undefined),
            cell(line, h.status),
            () => cell(line, h.network),
            (phone) => spanLiveLine(h, line, phone) ?? splitLiveLine(h, splitCsvRecord(line), phone, true),
            true
          )
        } else {
          const cells = typeof record === "string" ? splitCsvRecord(record) : record
          wait = row(
            resultKey(cells[h.formatted], cells[h.detected]),
            cells[h.status],
            () => (h.network < 0 ? undefined : cells[h.network]),
            (phone) => splitLiveLine(h, cells, phone, plain),
            plain
          )
        }
        if (wait !== undefined) await wait
      }
    }
  }
  await sinks.live.commit()
  await sinks.cache.commit()

  // The numbers of the file without a result: their cached result (any age) as if returned, in file order.
  const reuse = async (batch: Array<string>) => {
    if (batch.length === 0) return
    const found = await sinks.lookup.query<{ p: string; s: string | null }>(
      "SELECT custom_variable_1 AS p, live_status AS s FROM hlr_lookups_cache WHERE custom_variable_1 = ANY($1::text[])",
      [batch]
    )
    const statuses = new Map(found.rows.map((r) => [r.p, r.s ?? ""]))
    for (const phone of batch) {
      const status = statuses.get(phone)
      if (status === undefined) {
        counts.missing++
        continue
      }
      const category = categoryOf(status, false)
      counts.reused++
      counts.categories[category]++
      counts.statuses[status] = (counts.statuses[status] ?? 0) + 1
      const wait = first(phone, category)
      if (wait !== undefined) await wait
    }
  }
  const decoder = new TextDecoder()
  let rest = ""
  let batch: Array<string> = []
  const take = (raw: string) => {
    const phone = raw.trim()
    if (phone === "" || !CANONICAL.test(phone)) return
    // Each number once: a repeat in the file is neither reused nor missing twice.
    if ((table.mark(Number(phone), FIRST) & FIRST) === 0) batch.push(phone)
  }
  for await (const chunk of numbers) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
    rest = lines.pop() ?? ""
    for (const l of lines) take(l)
    if (batch.length >= 50_000) {
      await reuse(batch)
      batch = []
    }
  }
  take(rest + decoder.decode())
  await reuse(batch)
  await sinks.blacklist.close()
  await sinks.monitor.close()
  const tail = clean.rest()
  if (tail !== "") await sinks.clean.write(tail)
  return counts
}
