/**
 * The one pass over an HLR batch's results (`HlrResults.ts`): each row read (as bytes where it can:
 * `HlrResultLines.ts`), classified and counted (`HlrResultColumns.ts`), and the first row per phone
 * sent where it goes as it is read — its live row and cache row into the COPYs of
 * `api_hlr_live_numbers` and `hlr_lookups_cache` (`HlrKeyedCopy.ts`), its list entry to the list
 * writes (`EntryQueue.ts`), its number into the clean file. Then the cleaned file's numbers without
 * a result: their cached result, as if returned. What is kept per row in JS is a few bits in a
 * `PhoneTable`.
 */
import type pg from "pg"
import { escapeCopy } from "../platform/CopyText.ts"
import type { FileWriter } from "../platform/FileStore.ts"
import type { EntryQueue } from "./EntryQueue.ts"
import type { KeyedCopy } from "./HlrKeyedCopy.ts"
import { canonicalKey, isInteger, isNumber, isTimestamp, keyLength, writeKey } from "./HlrResultBytes.ts"
import { resultBatches } from "./HlrResultLines.ts"
import { splitCsvRecord } from "./HlrResultsCsv.ts"
import { PhoneTable } from "./PhoneTable.ts"
import { CleanLines, numberKeys } from "./PhoneLines.ts"
import {
  CACHED_RISKY,
  categoryOf,
  EDGE_BLANK,
  type HlrCategory,
  type Header,
  headerOf,
  INTEGER,
  KINDS,
  NUMBER,
  REASON,
  resultKey,
  TIMESTAMP
} from "./HlrResultColumns.ts"

/** Both pending writes (either may be none). */
const both = (a: Promise<void> | undefined, b: Promise<void> | undefined): Promise<void> | undefined =>
  a === undefined ? b : b === undefined ? a : Promise.all([a, b]).then(() => undefined)

/** Flags of a phone in the pass's table. */
const FIRST = 1 // its first row (result or reuse) has been taken
const LIVE_ROW = 2 // its live row has been written (or found present)

/** A `live_status` as read (upper-cased), with what the pass needs of it and how often it came. */
interface Status {
  readonly name: string
  /** `LIVE`: live or risky, by the network. */
  readonly live: boolean
  /** Its category when not `LIVE`. */
  readonly category: HlrCategory
  /** As the cache's COPY field. */
  readonly field: Buffer
  count: number
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
  const clean = new CleanLines(sinks.clean)
  const now = new Date().toISOString()
  const nowBytes = Buffer.from(now)

  const statuses = new Map<string, Status>()
  /** The status of an upper-cased `live_status`. */
  const statusOf = (name: string): Status => {
    let status = statuses.get(name)
    if (status === undefined) {
      const field = Buffer.from(escapeCopy(name))
      status = { name, live: name === "LIVE", category: categoryOf(name, false), field, count: 0 }
      statuses.set(name, status)
    }
    return status
  }
  const riskyField = Buffer.from(CACHED_RISKY)
  // Networks repeat: each name is judged once.
  const riskyNetworks = new Map<string, boolean>()
  const risky = (network: string | undefined): boolean => {
    if (network === undefined) return isRisky(undefined)
    let judged = riskyNetworks.get(network)
    if (judged === undefined) {
      judged = isRisky(network)
      if (riskyNetworks.size < 10_000) riskyNetworks.set(network, judged)
    }
    return judged
  }

  /** The writes of a phone's first row (result or reuse); a pending write to wait for, if any. */
  const first = (key: number, category: HlrCategory): Promise<void> | undefined => {
    let wait: Promise<void> | undefined
    if (category === "live") {
      counts.clean++
      wait = clean.add(key)
    }
    const reason = REASON[category]
    if (reason === undefined) return wait
    const more = (category === "monitor" ? sinks.monitor : sinks.blacklist).add(key, reason)
    return both(wait, more)
  }

  /** The cache row of a phone's first result: its status (a risky one as `CACHED_RISKY`) and the time. */
  const cacheRow = (key: number, field: Buffer): Promise<void> | undefined => {
    const length = keyLength(key)
    const size = length + field.length + nowBytes.length + 3
    const at = sinks.cache.row(key, size)
    const out = sinks.cache.out
    writeKey(out, at, key, length)
    out[at + length] = 9
    field.copy(out, at + length + 1)
    out[at + length + 1 + field.length] = 9
    nowBytes.copy(out, at + length + 2 + field.length)
    out[at + size - 1] = 10
    return sinks.cache.endRow()
  }

  /** What a result row of a phone leads to, once counted; its live row, if it is one, is the caller's to write. */
  let category: HlrCategory = "unknown"
  let liveRowDue = false
  /**
   * Counts a result and marks its phone; whether it is the phone's first row (then `finish` it).
   * `onRiskyNetwork`: a `LIVE` result's current network is on the risky list.
   */
  const take = (key: number, status: Status, onRiskyNetwork: boolean): boolean => {
    counts.results++
    status.count++
    category = status.live ? (onRiskyNetwork ? "risky" : "live") : status.category
    counts.categories[category]++
    const flags = table.mark(key, FIRST | (category === "live" ? LIVE_ROW : 0))
    liveRowDue = category === "live" && (flags & LIVE_ROW) === 0
    return (flags & FIRST) === 0
  }
  /** The cache row and the list entry or clean line of a phone's first result. */
  const finish = (key: number, status: Status): Promise<void> | undefined =>
    both(cacheRow(key, category === "risky" ? riskyField : status.field), first(key, category))

  if (results !== undefined) {
    let header: Header | undefined
    // A line's cell boundaries: cell i is [starts[i], ends[i]) (of the line's string or of its bytes).
    let starts = new Int32Array(64)
    let ends = new Int32Array(64)
    const room = (width: number) => {
      if (starts.length < width + 1) {
        starts = new Int32Array(width + 1)
        ends = new Int32Array(width + 1)
      }
    }
    /** The cells of a plain line, when it has the header's width; else -1. */
    const bounds = (line: string, width: number): number => {
      room(width)
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

    /** A result row read as strings (`TextRecords`, or a line the byte path leaves): counted and written. */
    const textRow = (
      phone: string | undefined,
      rawStatus: string | undefined,
      network: () => string | undefined,
      liveLine: (phone: string) => string
    ): Promise<void> | undefined => {
      if (phone === undefined) {
        counts.skipped++
        return undefined
      }
      const key = Number(phone)
      const status = statusOf((rawStatus ?? "").toUpperCase())
      const isFirst = take(key, status, status.live && risky(network()))
      const live = liveRowDue ? sinks.live.add(key, liveLine(phone)) : undefined
      return isFirst ? both(live, finish(key, status)) : live
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
      // Any blank `trim` drops at a cell's edge (`\s` is the same set: a no-break space, a form feed…),
      // not only a space: else the cell went into the live row untrimmed — the lines `byteLine` leaves
      // for their edge blanks come here, and the same line split (`splitLiveLine`) was trimmed.
      if (EDGE_BLANK.test(span)) return undefined
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

    /** A plain line (no quote, backslash, tab or CR) as a string. */
    const plainLine = (h: Header, line: string): Promise<void> | undefined => {
      if (line.trim() === "") return undefined
      if (bounds(line, h.width) !== h.width) return splitRecord(h, splitCsvRecord(line), true)
      const formatted = cell(line, h.formatted)
      return textRow(
        resultKey(formatted, formatted === undefined || formatted === "" ? cell(line, h.detected) : undefined),
        cell(line, h.status),
        () => cell(line, h.network),
        (phone) => spanLiveLine(h, line, phone) ?? splitLiveLine(h, splitCsvRecord(line), phone, true)
      )
    }
    /** A record split into its cells. */
    const splitRecord = (h: Header, cells: ReadonlyArray<string>, plain: boolean): Promise<void> | undefined =>
      textRow(
        resultKey(cells[h.formatted], cells[h.detected]),
        cells[h.status],
        () => (h.network < 0 ? undefined : cells[h.network]),
        (phone) => splitLiveLine(h, cells, phone, plain)
      )

    // The statuses met on the byte path, by their bytes as read (a few kinds, so a short list).
    const seen: Array<{ readonly bytes: Buffer; readonly status: Status }> = []
    const statusAt = (bytes: Buffer, from: number, to: number): Status => {
      const length = to - from
      for (const entry of seen) {
        const known = entry.bytes
        if (known.length !== length) continue
        let i = 0
        while (i < length && known[i] === bytes[from + i]) i++
        if (i === length) return entry.status
      }
      const status = statusOf(bytes.toString("utf8", from, to).toUpperCase())
      if (seen.length < 64) seen.push({ bytes: Buffer.from(bytes.subarray(from, to)), status })
      return status
    }

    /**
     * A line of `ByteLines`: its cells found and read as bytes, and its live row and cache row copied
     * from them into the COPY slabs, without a string made. A line whose cells need trimming (a blank
     * or non-ASCII byte at a cell's edge), of another width, or whose live row cannot be the span of
     * its live cells, is read as a string (`plainLine`).
     */
    const byteLine = (h: Header, bytes: Buffer, start: number, end: number): Promise<void> | undefined => {
      room(h.width)
      let n = 0
      let from = start
      let edge = bytes[start]! <= 32 || bytes[start]! >= 128 || bytes[end - 1]! <= 32 || bytes[end - 1]! >= 128
      for (let i = start; i < end; i++) {
        if (bytes[i] !== 44) continue
        if (n === h.width - 1) return plainLine(h, bytes.toString("utf8", start, end))
        starts[n] = from
        ends[n++] = i
        from = i + 1
        if (i > start) {
          const before = bytes[i - 1]!
          if (before <= 32 || before >= 128) edge = true
        }
        if (i + 1 < end) {
          const after = bytes[i + 1]!
          if (after <= 32 || after >= 128) edge = true
        }
      }
      starts[n] = from
      ends[n++] = end
      if (edge || n !== h.width) return plainLine(h, bytes.toString("utf8", start, end))

      // The number: the formatted one, else the detected one.
      let numberFrom = -1
      let numberTo = -1
      if (h.formatted >= 0 && ends[h.formatted]! > starts[h.formatted]!) {
        numberFrom = starts[h.formatted]!
        numberTo = ends[h.formatted]!
      } else if (h.detected >= 0) {
        numberFrom = starts[h.detected]!
        numberTo = ends[h.detected]!
      }
      let key = numberFrom < 0 ? -1 : canonicalKey(bytes, numberFrom, numberTo)
      if (key < 0) {
        const phone = numberFrom < 0 ? undefined : resultKey(bytes.toString("utf8", numberFrom, numberTo), undefined)
        if (phone === undefined) {
          counts.skipped++
          return undefined
        }
        key = Number(phone)
      }
      const status = statusAt(bytes, starts[h.status]!, ends[h.status]!)
      const isFirst = take(
        key,
        status,
        status.live && risky(h.network < 0 ? undefined : bytes.toString("utf8", starts[h.network]!, ends[h.network]!))
      )
      let live: Promise<void> | undefined
      if (liveRowDue) {
        const span = liveSpan(h, bytes, key)
        live =
          span !== null
            ? span
            : sinks.live.add(
                key,
                splitLiveLine(h, splitCsvRecord(bytes.toString("utf8", start, end)), String(key), true)
              )
      }
      return isFirst ? both(live, finish(key, status)) : live
    }

    /**
     * The live row of a line whose cells `byteLine` found, when its live columns are contiguous and
     * none turns NULL for its type (a blank timestamp takes the time of the run): the span of the
     * live cells copied, its commas turned into tabs. Else null (the row is built cell by cell).
     */
    const liveSpan = (h: Header, bytes: Buffer, key: number): Promise<void> | undefined | null => {
      if (!h.contiguous) return null
      for (const [i, kind] of h.typed) {
        const from = starts[h.live[i]!]!
        const to = ends[h.live[i]!]!
        const fits =
          kind === "timestamp"
            ? isTimestamp(bytes, from, to)
            : from === to || (kind === "integer" ? isInteger(bytes, from, to) : isNumber(bytes, from, to))
        if (!fits) return null
      }
      const firstCell = h.live[0]!
      const lastCell = h.live[h.live.length - 1]!
      const spanFrom = starts[firstCell]!
      const spanTo = ends[lastCell]!
      const length = keyLength(key)
      const size = length + 1 + (spanTo - spanFrom) + 1
      const at = sinks.live.row(key, size)
      const out = sinks.live.out
      writeKey(out, at, key, length)
      out[at + length] = 9
      const base = at + length + 1
      bytes.copy(out, base, spanFrom, spanTo)
      for (let c = firstCell; c < lastCell; c++) out[base + ends[c]! - spanFrom] = 9
      out[at + size - 1] = 10
      return sinks.live.endRow()
    }

    for await (const batch of resultBatches(results)) {
      if (batch.kind === "bytes") {
        const { bytes, bounds: lines, count } = batch
        for (let l = 0; l < count; l++) {
          const start = lines[2 * l]!
          const end = lines[2 * l + 1]!
          if (header === undefined) {
            const text = bytes.toString("utf8", start, end)
            if (text.trim() !== "") header = headerOf(splitCsvRecord(text))
            continue
          }
          const wait = byteLine(header, bytes, start, end)
          if (wait !== undefined) await wait
        }
        continue
      }
      for (const record of batch.rows) {
        if (header === undefined) {
          header = headerOf(typeof record === "string" ? splitCsvRecord(record) : record)
          continue
        }
        const wait = typeof record === "string" ? plainLine(header, record) : splitRecord(header, record, batch.plain)
        if (wait !== undefined) await wait
      }
    }
  }
  // The live rows and the cache commit while the cleaned file is read for the numbers without a result.
  const committed = Promise.all([sinks.live.commit(), sinks.cache.commit()])
  committed.catch(() => undefined) // awaited below; this only keeps it from being "unhandled" meanwhile
  const unanswered: Array<number> = []
  // Each number once: a repeat in the file is neither reused nor missing twice.
  for await (const keys of numberKeys(numbers)) {
    for (const key of keys) if ((table.mark(key, FIRST) & FIRST) === 0) unanswered.push(key)
  }
  // Nothing more for the lists: their last batches apply meanwhile.
  if (unanswered.length === 0) await Promise.all([sinks.blacklist.close(), sinks.monitor.close()])
  await committed

  // Their cached result (any age) as if returned, in file order.
  const reuse = async (batch: Array<number>) => {
    if (batch.length === 0) return
    const phones = batch.map(String)
    const found = await sinks.lookup.query<{ p: string; s: string | null }>(
      "SELECT custom_variable_1 AS p, live_status AS s FROM hlr_lookups_cache WHERE custom_variable_1 = ANY($1::text[])",
      [phones]
    )
    const cached = new Map(found.rows.map((r) => [r.p, r.s ?? ""]))
    for (let i = 0; i < batch.length; i++) {
      const name = cached.get(phones[i]!)
      if (name === undefined) {
        counts.missing++
        continue
      }
      const status = statusOf(name)
      const category = status.category
      counts.reused++
      counts.categories[category]++
      status.count++
      const wait = first(batch[i]!, category)
      if (wait !== undefined) await wait
    }
  }
  for (let i = 0; i < unanswered.length; i += 50_000) await reuse(unanswered.slice(i, i + 50_000))
  await sinks.blacklist.close()
  await sinks.monitor.close()
  const tail = clean.take()
  if (tail.length > 0) await sinks.clean.write(tail)
  for (const status of statuses.values()) if (status.count > 0) counts.statuses[status.name] = status.count
  return counts
}
