/**
 * The vocabulary of the phone lists (`docs/lists.md` "The three lists"): list names, what a caller writes to a list,
 * how the write behaves (mode, stickiness, conflicts), and what comes back (counts, explain).
 *
 * Phones in these types are canonical keys (E.164 digits without `+`, see `phone/PhoneNumber.ts`)
 * unless a field says "raw".
 */
import { Schema } from "effect"

export const ListName = Schema.Literals(["blacklist", "whitelist", "monitor"])
export type ListName = typeof ListName.Type

export const LIST_NAMES: ReadonlyArray<ListName> = ["blacklist", "whitelist", "monitor"]

/** Lists a manual import may target (`docs/original-api.md` "Lists"). */
export const ManualImportTarget = Schema.Literals(["blacklist", "monitor"])
export type ManualImportTarget = typeof ManualImportTarget.Type

/** The Voluum metric columns every list carries, in table order (`docs/original-api.md` "Lists"); all double precision but `cost_sources`. */
export const LIST_METRIC_COLUMNS = [
  "click_2_reg",
  "reg_2_ftd",
  "clicks",
  "conversions",
  "cost",
  "cost_sources",
  "cpv",
  "custom_conversions_1",
  "custom_conversions_2",
  "custom_conversions_3",
  "custom_revenue_1",
  "custom_revenue_2",
  "custom_revenue_3",
  "cv",
  "epv",
  "errors",
  "profit",
  "revenue",
  "roi",
  "suspicious_clicks",
  "suspicious_clicks_percentage",
  "suspicious_visits",
  "suspicious_visits_percentage",
  "unique_visits",
  "visits"
] as const
export type ListMetricColumn = (typeof LIST_METRIC_COLUMNS)[number]

/** Metric values by column name; `cost_sources` is the comma-joined text the original stored. */
export type ListMetrics = {
  readonly [K in ListMetricColumn]?: K extends "cost_sources" ? string | null : number | null
}

/** One number to put on a list. Absent fields stay NULL on a new row (or keep the moved row's value). */
export interface ListEntry {
  /** Canonical key (E.164 digits, no `+`). */
  readonly phone: string
  /** Stored on blacklist/monitor; on the whitelist (no reason column) it is kept in the audit only. */
  readonly reason?: string | null
  readonly source?: string | null
  readonly ip?: string | null
  readonly osVersion?: string | null
  readonly browserVersion?: string | null
  readonly metrics?: ListMetrics
  /** Whitelist only: ISO2; when absent it is derived from the number's calling code. */
  readonly countryCode?: string | null
  /** When the number was first listed; default now (the blacklist CSV import may carry it). */
  readonly timestampCreated?: Date | null
}

/**
 * How a write treats what is already there.
 * - `classification` (Voluum sync, `docs/original-api.md` "Voluum reports"): overwrites every column but `source` and
 *   `timestamp_created`, and takes the number off the other lists — except sticky entries, which
 *   are left alone and counted as `keptSticky`.
 * - `hlr` (`docs/original-api.md` "HLR"): an entry already on the target keeps its reason; a number on
 *   another list is moved (the original left it there); sticky entries elsewhere are kept.
 * - `manual` (an admin's import, move or CSV): moves from any list, sticky or not, and merges: the
 *   new entry's values where it has them, the old ones elsewhere.
 */
export const ApplyMode = Schema.Literals(["classification", "manual", "hlr"])
export type ApplyMode = typeof ApplyMode.Type

export interface ApplyOptions {
  /** Who made the change, for the audit: `api_key:<name>`, `job:<id>`, `sync:voluum-reports`, `cli`. */
  readonly actor: string
  readonly mode: ApplyMode
  /**
   * Mark the written entries sticky. Default: manual writes to the blacklist, and HLR writes with
   * reason `HLR_FAILED` / `HLR_RISKY_NETWORK`. The whitelist has no sticky entries.
   */
  readonly sticky?: boolean
  /**
   * An entry already on the target: `overwrite` (default for classification and manual: every
   * column for a classification, a merge for the others) or `keep` (default for hlr).
   */
  readonly onConflict?: "overwrite" | "keep"
}

export interface ApplyCounts {
  /** Not on any list before. */
  readonly added: number
  /** Taken off another list. */
  readonly moved: number
  /** Already on the target, and changed. */
  readonly updated: number
  /** Already on the target with the same values (or kept by `onConflict: "keep"`). */
  readonly unchanged: number
  /** Left alone because the number has a sticky entry and the write was not an admin's. */
  readonly keptSticky: number
}

export const emptyCounts: ApplyCounts = { added: 0, moved: 0, updated: 0, unchanged: 0, keptSticky: 0 }

export const addCounts = (a: ApplyCounts, b: ApplyCounts): ApplyCounts => ({
  added: a.added + b.added,
  moved: a.moved + b.moved,
  updated: a.updated + b.updated,
  unchanged: a.unchanged + b.unchanged,
  keptSticky: a.keptSticky + b.keptSticky
})

/** A row of `list_audit`. */
export interface ListAuditEntry {
  readonly action: "add" | "move" | "update" | "remove"
  readonly fromList: ListName | null
  readonly toList: ListName | null
  readonly reason: string | null
  readonly source: string | null
  readonly actor: string
  readonly createdAt: Date
}

/** Where a number is and how it got there. */
export interface ListExplanation {
  readonly phone: string
  readonly list: ListName | null
  readonly reason: string | null
  readonly source: string | null
  readonly sticky: boolean
  /** When it was put on its current list. */
  readonly since: Date | null
  /** Newest first, at most 100. */
  readonly history: ReadonlyArray<ListAuditEntry>
}

export interface ListCounts {
  readonly blacklist: number
  readonly whitelist: number
  readonly monitor: number
}

export interface RemoveResult {
  /** Entries taken off a list (one per number and list). */
  readonly removed: number
  /** Valid numbers that were on none of the lists searched. */
  readonly notListed: number
  /** Inputs that are not phone numbers, as given. */
  readonly invalid: ReadonlyArray<string>
}

/** A row of a raw import: the phone as typed, plus optional per-row fields. */
export interface RawListRow extends Omit<ListEntry, "phone"> {
  /** Raw: any format `normalizePhone` accepts. */
  readonly phone: string
}

export interface ImportCounts extends ApplyCounts {
  /** Rows read. */
  readonly total: number
  /** Rows whose phone is not a valid number. */
  readonly invalid: number
  /**
   * Rows repeating a number of an earlier row of the same batch (50,000 rows): written once, the
   * last row winning. A repeat in a later batch counts as `unchanged` or `updated`. So
   * `total = invalid + repeated + added + moved + updated + unchanged + keptSticky`.
   */
  readonly repeated: number
  /** The first few invalid values, as given. */
  readonly invalidSamples: ReadonlyArray<string>
}
