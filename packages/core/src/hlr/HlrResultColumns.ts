/**
 * The HLR results' columns and what a row means (`HlrResultsPass.ts` reads them): where the cells are
 * by the header's names, which columns make a live row and of what type, the number as a canonical
 * key, and a `live_status`'s category and the list reason it leads to.
 */
import { UnreadableFile } from "../platform/Errors.ts"

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

export const INTEGER = /^-?\d{1,9}$/
export const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/
export const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/
const CANONICAL = /^[1-9]\d{6,14}$/
/** A blank at the edge of a cell of a comma-separated span. */
export const EDGE_BLANK = /(^|,)\s|\s(,|$)/

/** How a cell becomes its column's COPY field: a value the column's type cannot take is NULL. */
export type Kind = "text" | "integer" | "number" | "timestamp"
export const KINDS: ReadonlyArray<Kind> = LIVE_COLUMNS.map((c) =>
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

export const REASON: Partial<Record<HlrCategory, string>> = {
  dead: "HLR_FAILED",
  risky: "HLR_RISKY_NETWORK",
  monitor: "HLR_MONITORED"
}

/** Where the columns the pass reads are in the results (by name: order and extra columns do not matter). */
export interface Header {
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

export const headerOf = (cells: ReadonlyArray<string>): Header => {
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
