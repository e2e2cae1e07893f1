/**
 * The Voluum reports sync (`docs/original-api.md` "Voluum syncs", "Voluum reports"; `docs/voluum.md` "Reports sync"): the traffic-source report
 * of every configured traffic source over a window → one row per phone → a category by OS version →
 * the history table and the three lists.
 *
 * 1. Fetch: `VOLUUM_TRAFFIC_SOURCE_IDS` (the original's two ids by default), one report each, rows
 *    mapped by name and read page by page.
 * 2. Phone: custom variable 1 of 25+ characters is an AES-GCM token and is decrypted (a token no key
 *    opens is counted in `undecryptable_tokens` and its row dropped — the original aborted the whole
 *    sync); the value is normalised to the canonical key (an invalid one — `{{phoneNumber}}`, empty —
 *    is counted in `invalid_phones` and dropped, as the original's numeric filter dropped it). A token
 *    while AES_KEY is not configured fails the sync with `NotConfigured` (a configuration problem).
 * 3. One row per phone, across traffic sources: the row with a unique visit wins. Preference:
 *    `uniqueVisits` = 1, then ≥ 2, then 0, then missing; the first row seen wins a tie. The original
 *    kept 1 before 0 and DISCARDED rows with 2+ (and phones that only had such rows); here no phone is
 *    lost (`docs/voluum.md` "Reports sync"), and every phone the original kept gets the same row.
 * 4. Classify with the `Classifier` (the original's rules unless CLASSIFIER_RULES_FILE says otherwise).
 * 5. Append every kept row, UNKNOWN included, to `api_voluum_ts_sources` with one COPY (append-only
 *    history, as the original: a second sync of the same window appends the rows again).
 * 6. Move numbers through `Lists` in classification mode, BLACKLIST then WHITELIST then MONITOR (the
 *    original's order): reason `OS_VERSION`, source `VOLUUM`, the row's ip / OS / browser and metrics;
 *    a number leaves the other two lists; sticky entries (manual and HLR blacklist) are left alone and
 *    counted in `kept_sticky`; the whitelist's `country_code` comes from the calling code. A second
 *    identical sync changes no list entry.
 *
 * The result is the original's response (`row_counts` with the rows sent to each list) plus what the
 * original did not say (unknown rows, invalid phones, undecryptable tokens, sticky entries kept, what
 * each list write did).
 */
import { Context, Effect, Layer, Stream } from "effect"
import { TS_SOURCES_COLUMNS } from "../records/Records.ts"
import { Classifier, type Category } from "../classification/Classifier.ts"
import { decryptTokensAmong, Encryption } from "../encryption/Encryption.ts"
import { Lists } from "../lists/Lists.ts"
import { addCounts, emptyCounts, type ApplyCounts, type ListEntry, type ListMetrics } from "../lists/ListSchemas.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { AppConfig, requireIntegration } from "../platform/Config.ts"
import { copyChunks, linesInChunks, textField } from "../platform/CopyText.ts"
import { PgBulk } from "../platform/Database.ts"
import { ValidationError, type DatabaseError, type NotConfigured, type UpstreamError } from "../platform/Errors.ts"
import { VoluumClient } from "./VoluumClient.ts"
import { formatVoluumHour, hourWindow, type ReportRow } from "./VoluumSchemas.ts"

/** Who the lists' audit names for a report sync (a job adds its id). */
export const REPORTS_SYNC_ACTOR = "sync:voluum-reports"
/** The reason and source the original wrote on list entries of a report sync (`docs/original-api.md` "Voluum reports"). */
export const OS_VERSION_REASON = "OS_VERSION"
export const VOLUUM_SOURCE = "VOLUUM"

/** A window of Voluum data: whole hours, `to` exclusive (ISO strings with a zone, or Dates). */
export interface SyncWindow {
  readonly from: Date | string
  readonly to: Date | string
}

const ZONELESS = /^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?$/

/**
 * A window whose ends may come without a zone (`2025-05-01T00:00:00`, `2025-05-01`), as Voluum and the
 * original accepted them: read as UTC. Ends with a zone, and Dates, are left as they are.
 */
export const utcWindow = (window: SyncWindow): SyncWindow => {
  const utc = (end: Date | string): Date | string => {
    if (typeof end !== "string") return end
    const t = end.trim()
    if (!ZONELESS.test(t)) return end
    return t.length === 10 ? `${t}T00:00:00Z` : `${t}Z`
  }
  return { from: utc(window.from), to: utc(window.to) }
}

export interface ReportsSyncOptions {
  /** Recorded in the list audit. Default `sync:voluum-reports`. */
  readonly actor?: string
}

/** The original's response, plus the counts it did not give. */
export interface ReportsSyncResult {
  /** Rows sent to each list (the original's keys and meaning). */
  readonly row_counts: {
    readonly blacklist_rows: number
    readonly monitor_rows: number
    readonly whitelist_rows: number
  }
  /** The window synced, as sent to Voluum. */
  readonly from: string
  readonly to: string
  readonly traffic_sources: number
  /** Report rows Voluum returned (all traffic sources). */
  readonly rows_fetched: number
  /** Distinct phones kept (= rows appended to the history). */
  readonly phones: number
  /** Phones classified UNKNOWN: stored in the history only. */
  readonly unknown_rows: number
  /** Rows whose custom variable 1 is not a phone number (after decryption). */
  readonly invalid_phones: number
  /** Rows whose token no configured key decrypts. */
  readonly undecryptable_tokens: number
  /** Numbers left on a sticky entry (manual / HLR blacklist) instead of being moved. */
  readonly kept_sticky: number
  readonly history_rows: number
  /** Phones per classification rule (which rule decided). */
  readonly by_rule: Readonly<Record<string, number>>
  /** What each list write did. */
  readonly lists: {
    readonly blacklist: ApplyCounts
    readonly whitelist: ApplyCounts
    readonly monitor: ApplyCounts
  }
}

export type ReportsSyncError = UpstreamError | NotConfigured | ValidationError | DatabaseError

// ---------------------------------------------------------------------------------------------
// One row per phone.

/** Lower is better: a unique visit (1) first, then 2+, then a repeat (0), then no count at all. */
export const uniqueVisitPreference = (uniqueVisits: number | null): number =>
  uniqueVisits === 1 ? 0 : uniqueVisits !== null && uniqueVisits > 1 ? 1 : uniqueVisits === 0 ? 2 : 3

interface Candidate {
  readonly phone: string
  readonly row: ReportRow
  readonly preference: number
}

/** Keeps, per phone, the preferred row (the first one seen among equals). Mutates `best`. */
export const keepPreferredRow = (best: Map<string, Candidate>, phone: string, row: ReportRow): void => {
  const preference = uniqueVisitPreference(row.uniqueVisits)
  const current = best.get(phone)
  if (current === undefined || preference < current.preference) best.set(phone, { phone, row, preference })
}

// ---------------------------------------------------------------------------------------------
// History (api_voluum_ts_sources) by COPY.

// Every column of the history table except `timestamp_created` (its default, now()).
const HISTORY_COLUMNS = TS_SOURCES_COLUMNS.filter((c) => c !== "timestamp_created")

const HISTORY_COPY = `COPY api_voluum_ts_sources (${HISTORY_COLUMNS.join(", ")}) FROM STDIN`

export const copyNumber = (value: number | null | undefined): string =>
  typeof value === "number" && Number.isFinite(value) ? String(value) : "\\N"

/** The original's `cost_sources`: the list joined with ",". */
const costSourcesText = (row: ReportRow): string => row.costSources.join(",")

const historyLine = (phone: string, category: Category, r: ReportRow): string =>
  [
    copyNumber(r.Click2Reg),
    copyNumber(r.Reg2FTD),
    textField(r.browserVersion),
    textField(phone),
    category,
    copyNumber(r.cost),
    copyNumber(r.conversions),
    copyNumber(r.clicks),
    textField(costSourcesText(r)),
    copyNumber(r.cpv),
    copyNumber(r.customConversions1),
    copyNumber(r.customConversions2),
    copyNumber(r.customConversions3),
    copyNumber(r.customRevenue1),
    copyNumber(r.customRevenue2),
    copyNumber(r.customRevenue3),
    copyNumber(r.cv),
    copyNumber(r.epv),
    copyNumber(r.errors),
    copyNumber(r.profit),
    copyNumber(r.revenue),
    copyNumber(r.roi),
    copyNumber(r.suspiciousClicks),
    copyNumber(r.suspiciousClicksPercentage),
    copyNumber(r.suspiciousVisits),
    copyNumber(r.suspiciousVisitsPercentage),
    copyNumber(r.uniqueVisits),
    copyNumber(r.visits),
    textField(r.ip),
    textField(r.osVersion),
    VOLUUM_SOURCE
  ].join("\t") + "\n"

// ---------------------------------------------------------------------------------------------
// List entries.

const metricsOf = (r: ReportRow): ListMetrics => ({
  click_2_reg: r.Click2Reg,
  reg_2_ftd: r.Reg2FTD,
  clicks: r.clicks,
  conversions: r.conversions,
  cost: r.cost,
  cost_sources: costSourcesText(r),
  cpv: r.cpv,
  custom_conversions_1: r.customConversions1,
  custom_conversions_2: r.customConversions2,
  custom_conversions_3: r.customConversions3,
  custom_revenue_1: r.customRevenue1,
  custom_revenue_2: r.customRevenue2,
  custom_revenue_3: r.customRevenue3,
  cv: r.cv,
  epv: r.epv,
  errors: r.errors,
  profit: r.profit,
  revenue: r.revenue,
  roi: r.roi,
  suspicious_clicks: r.suspiciousClicks,
  suspicious_clicks_percentage: r.suspiciousClicksPercentage,
  suspicious_visits: r.suspiciousVisits,
  suspicious_visits_percentage: r.suspiciousVisitsPercentage,
  unique_visits: r.uniqueVisits,
  visits: r.visits
})

const entryOf = (phone: string, r: ReportRow): ListEntry => ({
  phone,
  reason: OS_VERSION_REASON,
  source: VOLUUM_SOURCE,
  ip: r.ip,
  osVersion: r.osVersion,
  browserVersion: r.browserVersion,
  metrics: metricsOf(r)
})

/** Report rows read per step (decrypted in one call, folded into the per-phone map). */
const CHUNK_ROWS = 5_000

export class ReportsSync extends Context.Service<
  ReportsSync,
  {
    /**
     * Syncs the traffic-source reports of `window` into the history and the lists (module comment).
     * The window must be whole hours (`ValidationError` otherwise); without Voluum credentials,
     * `NotConfigured`.
     */
    readonly syncReports: (
      window: SyncWindow,
      options?: ReportsSyncOptions
    ) => Effect.Effect<ReportsSyncResult, ReportsSyncError>
  }
>()("@optimizer/core/voluum/ReportsSync") {
  static readonly layer = Layer.effect(
    ReportsSync,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const voluum = yield* VoluumClient
      const encryption = yield* Encryption
      const classifier = yield* Classifier
      const lists = yield* Lists
      const bulk = yield* PgBulk

      const syncReports = Effect.fn("ReportsSync.syncReports")(function* (
        window: SyncWindow,
        options?: ReportsSyncOptions
      ) {
        const voluumSettings = yield* requireIntegration("Voluum", settings.voluum)
        const checked = hourWindow(utcWindow(window), { from: "from_date", to: "to_date" })
        if (checked instanceof ValidationError) return yield* checked
        const { from, to } = checked
        const actor = options?.actor ?? REPORTS_SYNC_ACTOR
        yield* Effect.annotateCurrentSpan({ from: from.toISOString(), to: to.toISOString() })

        const best = new Map<string, Candidate>()
        let rowsFetched = 0
        let invalidPhones = 0
        let undecryptable = 0

        const foldChunk = (rows: ReadonlyArray<ReportRow>) =>
          Effect.gen(function* () {
            rowsFetched += rows.length
            const { values, undecrypted } = yield* decryptTokensAmong(
              encryption,
              rows.map((r) => (r.customVariable1 ?? "").trim())
            )
            undecryptable += undecrypted.size
            rows.forEach((row, i) => {
              if (undecrypted.has(i)) return
              const parsed = normalizePhone(values[i]!)
              if (!parsed.ok) {
                invalidPhones++
                return
              }
              keepPreferredRow(best, parsed.e164, row)
            })
          })

        for (const trafficSourceId of voluumSettings.trafficSourceIds) {
          yield* voluum
            .reportStream({ trafficSourceId, from, to })
            .pipe(Stream.grouped(CHUNK_ROWS), Stream.runForEach(foldChunk))
        }

        // Classify, in the order the rows were kept.
        const byCategory: Record<Category, Array<ListEntry>> = {
          BLACKLIST: [],
          WHITELIST: [],
          MONITOR: [],
          UNKNOWN: []
        }
        const byRule: Record<string, number> = {}
        const history: Array<string> = []
        for (const { phone, row } of best.values()) {
          const decision = classifier.classify(row.osVersion)
          byRule[decision.rule] = (byRule[decision.rule] ?? 0) + 1
          history.push(historyLine(phone, decision.category, row))
          if (decision.category !== "UNKNOWN") byCategory[decision.category].push(entryOf(phone, row))
          else byCategory.UNKNOWN.push({ phone })
        }

        if (history.length > 0) {
          yield* bulk.withClient((client) =>
            copyChunks(
              client,
              HISTORY_COPY,
              linesInChunks(history.length, (i) => history[i]!)
            )
          )
        }

        const write = (list: "blacklist" | "whitelist" | "monitor", entries: ReadonlyArray<ListEntry>) =>
          entries.length === 0
            ? Effect.succeed(emptyCounts)
            : lists.applyEntries(list, entries, { actor, mode: "classification" })
        const blacklist = yield* write("blacklist", byCategory.BLACKLIST)
        const whitelist = yield* write("whitelist", byCategory.WHITELIST)
        const monitor = yield* write("monitor", byCategory.MONITOR)
        const all = addCounts(addCounts(blacklist, whitelist), monitor)

        const result: ReportsSyncResult = {
          row_counts: {
            blacklist_rows: byCategory.BLACKLIST.length,
            monitor_rows: byCategory.MONITOR.length,
            whitelist_rows: byCategory.WHITELIST.length
          },
          from: formatVoluumHour(from),
          to: formatVoluumHour(to),
          traffic_sources: voluumSettings.trafficSourceIds.length,
          rows_fetched: rowsFetched,
          phones: best.size,
          unknown_rows: byCategory.UNKNOWN.length,
          invalid_phones: invalidPhones,
          undecryptable_tokens: undecryptable,
          kept_sticky: all.keptSticky,
          history_rows: history.length,
          by_rule: byRule,
          lists: { blacklist, whitelist, monitor }
        }
        yield* Effect.logInfo("voluum reports synced").pipe(
          Effect.annotateLogs({
            from: result.from,
            to: result.to,
            rows: rowsFetched,
            phones: result.phones,
            blacklist: result.row_counts.blacklist_rows,
            whitelist: result.row_counts.whitelist_rows,
            monitor: result.row_counts.monitor_rows,
            unknown: result.unknown_rows,
            invalid: invalidPhones,
            undecryptable,
            keptSticky: all.keptSticky
          })
        )
        if (undecryptable > 0) {
          yield* Effect.logWarning(`voluum reports: ${undecryptable} custom-variable tokens did not decrypt`).pipe(
            Effect.annotateLogs({ from: result.from, to: result.to })
          )
        }
        return result
      })

      return ReportsSync.of({ syncReports })
    })
  )
}
