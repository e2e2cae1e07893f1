/**
 * A broadcast as a row of the snapshot file and the live stream (`docs/mmd.md`): MessageWhiz's stats
 * plus the Voluum totals of its campaign over the broadcast's window, with the original's keys.
 *
 * The window starts at the send hour (UTC) and ends at the current hour while the broadcast is less
 * than a day old, else a day later. Voluum totals are fetched once per (campaign, window) per
 * request: `makeTotalsCache` shares one call (or its failure) among every broadcast that needs it,
 * also when they are processed concurrently.
 */
import { Clock, Effect } from "effect"
import type { CampaignTotals } from "../voluum/VoluumSchemas.ts"
import type { VoluumClient, VoluumError } from "../voluum/VoluumClient.ts"
import type { Broadcast } from "./MessageWhizSchemas.ts"

/** The original's row keys, in its order (the snapshot CSV's columns after the unnamed index). */
export const ROW_KEYS = [
  "Campaign ID",
  "Broadcast ID",
  "Name",
  "Send Date",
  "Estimated Price",
  "Recipient Count",
  "BC Unique Clicks",
  "BC Total Clicks",
  "CTR",
  "DLR Delivered Count",
  "DLR Sent Count",
  "DLR Undelivered Count",
  "DLR Rejected Count",
  "Voluum Visits",
  "Voluum Unique Visits",
  "Click 2 REG",
  "Reg 2 FTD",
  "message_body"
] as const

export type BroadcastRow = { readonly [K in (typeof ROW_KEYS)[number]]: string | number }

const HOUR = 3_600_000
const round2 = (n: number) => Math.round(n * 100) / 100

/** The Voluum window of a broadcast sent at `sendDate`, seen at `now`. */
export const totalsWindow = (sendDate: string, now: number): { readonly from: Date; readonly to: Date } => {
  const sent = Date.parse(sendDate.endsWith("Z") || /[+-]\d\d:?\d\d$/.test(sendDate) ? sendDate : `${sendDate}Z`)
  const from = Math.floor(sent / HOUR) * HOUR
  const nowHour = Math.floor(now / HOUR) * HOUR
  // A broadcast of the current hour gets that hour (an empty window is not a window).
  const to = now - from <= 24 * HOUR ? Math.max(nowHour, from + HOUR) : from + 24 * HOUR
  return { from: new Date(from), to: new Date(to) }
}

export type TotalsLookup = (campaignId: string, sendDate: string) => Effect.Effect<CampaignTotals, VoluumError>

/** Voluum totals per (campaign, window), each fetched at most once for the life of the lookup. */
export const makeTotalsCache = (voluum: VoluumClient["Service"]): Effect.Effect<TotalsLookup> =>
  Effect.sync(() => {
    const cache = new Map<string, Effect.Effect<CampaignTotals, VoluumError>>()
    return (campaignId, sendDate) =>
      Effect.gen(function* () {
        const window = totalsWindow(sendDate, yield* Clock.currentTimeMillis)
        const key = `${campaignId}|${window.from.toISOString()}|${window.to.toISOString()}`
        let entry = cache.get(key)
        if (entry === undefined) {
          entry = yield* Effect.cached(voluum.campaignTotals(campaignId, window))
          cache.set(key, entry)
        }
        return yield* entry
      })
  })

/** The row of a broadcast placed in `campaignId`, with its campaign's Voluum totals. */
export const broadcastRow = (b: Broadcast, campaignId: string, totals: CampaignTotals): BroadcastRow => ({
  "Campaign ID": campaignId,
  "Broadcast ID": b.id,
  Name: b.name ?? "",
  "Send Date": b.send_date.split(".")[0]!,
  "Estimated Price": round2((b.estimated_price ?? 0) / 100),
  "Recipient Count": b.recipient_count ?? 0,
  "BC Unique Clicks": b.broadcastConversion?.uniqueClicks ?? 0,
  "BC Total Clicks": b.broadcastConversion?.totalClicks ?? 0,
  CTR: `${round2(b.broadcastConversion?.conversion ?? 0)}%`,
  "DLR Delivered Count": b.dlr?.delivered_count ?? 0,
  "DLR Sent Count": b.dlr?.sent_count ?? 0,
  "DLR Undelivered Count": b.dlr?.undelivered_count ?? 0,
  "DLR Rejected Count": b.dlr?.rejected_count ?? 0,
  "Voluum Visits": totals.visits ?? 0,
  "Voluum Unique Visits": totals.uniqueVisits ?? 0,
  "Click 2 REG": `${round2(totals.Click2Reg ?? 0)}%`,
  "Reg 2 FTD": `${totals.Reg2FTD ?? 0}%`,
  message_body: b.message_body ?? ""
})

const csvField = (value: string | number): string => {
  const s = String(value)
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
}

/** The snapshot file: the original's pandas CSV, an unnamed index column first. */
export const snapshotCsv = (rows: ReadonlyArray<BroadcastRow>): string => {
  const lines = ["," + ROW_KEYS.map(csvField).join(",")]
  rows.forEach((row, i) => lines.push(`${i},${ROW_KEYS.map((k) => csvField(row[k])).join(",")}`))
  return lines.join("\n") + "\n"
}

/** `12.5%` → 12.5 (the stats table stores percentages without the sign). */
export const percent = (value: string | number): number => Number(String(value).replace("%", "")) || 0
