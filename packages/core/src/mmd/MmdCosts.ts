/**
 * The daily cost push (`docs/mmd.md`, `docs/original-api.md` "MessageWhiz"): what MessageWhiz charged
 * for a UTC day's broadcasts, summed per Voluum campaign, set as that campaign's cost for the day.
 *
 * - Every broadcast of the day counts, whatever its state (`real_price` is what was charged; the state
 *   filter is for snapshots and the stream). Prices are cents; sums are made in cents, then converted.
 * - A broadcast without a link, with a link MessageWhiz does not list, or whose link URL has no
 *   campaign id is reported in `skipped` and left out (it crashed the original's endpoint).
 * - One `POST /report/cost` per campaign, in the order campaigns first appear (newest broadcast
 *   first), through `VoluumClient.updateCost` (its rate limit and retries). Voluum sets the total of
 *   the window, so a second run for the day sends the same totals and changes nothing.
 * - A campaign Voluum refuses (e.g. 417 NO_VISITS_PERIOD) is reported with its status and error; the
 *   others are still sent. `dryRun` sends nothing and shows what would be sent.
 * - The answer keeps the original's keys (`total_rows`, `updates[{index, rows, campaign_id, total_cost,
 *   chunk, response}]`) and adds what the original did not say.
 */
import { Effect } from "effect"
import { UpstreamError } from "../platform/Errors.ts"
import type { VoluumClient } from "../voluum/VoluumClient.ts"
import type { MessageWhizClient } from "./MessageWhizClient.ts"
import { placeBroadcast, skipped, type SkippedBroadcast } from "./MessageWhizSchemas.ts"

export interface CostUpdateOutcome {
  /** Position, as a string (the original's). */
  readonly index: string
  /** Broadcasts summed. */
  readonly rows: number
  readonly campaign_id: string
  /** Rounded to 3 decimals (the original's). */
  readonly total_cost: number
  /** The first broadcast's name. */
  readonly chunk: string
  /** Voluum's HTTP status; null in a dry run. */
  readonly response: number | null
  /** Why Voluum refused it, when it did. */
  readonly error?: string
  /** What is (or, in a dry run, would be) sent. */
  readonly request: {
    readonly campaignId: string
    readonly from: string
    readonly to: string
    readonly timezone: string
    readonly cost: number
    readonly currency: string
  }
}

export interface CostPushResult {
  /** Campaigns (the original's key). */
  readonly total_rows: number
  readonly updates: ReadonlyArray<CostUpdateOutcome>
  readonly date: string
  readonly dry_run: boolean
  readonly currency: string
  readonly broadcasts: number
  readonly skipped: ReadonlyArray<SkippedBroadcast>
  /** Updates Voluum refused. */
  readonly failed: number
}

export interface CostPushOptions {
  readonly dryRun?: boolean
}

const nextDay = (day: string) => new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10)

export const pushCosts = (
  messageWhiz: MessageWhizClient["Service"],
  voluum: VoluumClient["Service"],
  currency: string
) =>
  Effect.fn("Mmd.pushCosts")(function* (day: string, options: CostPushOptions = {}) {
    const dryRun = options.dryRun === true
    const broadcasts = yield* messageWhiz.broadcastsOfDay(day)
    const links = yield* messageWhiz.links()
    const groups = new Map<string, { cents: number; rows: number; chunk: string }>()
    const left: Array<SkippedBroadcast> = []
    for (const b of broadcasts) {
      const placement = placeBroadcast(b, links)
      if (placement._tag === "Unplaced") {
        left.push(skipped(b, placement.reason))
        continue
      }
      const group = groups.get(placement.campaignId)
      const cents = Math.round(b.real_price ?? 0)
      if (group === undefined) groups.set(placement.campaignId, { cents, rows: 1, chunk: b.name ?? "" })
      else {
        group.cents += cents
        group.rows++
      }
    }
    if (left.length > 0) {
      yield* Effect.logWarning("mmd costs: broadcasts left out").pipe(
        Effect.annotateLogs({ date: day, skipped: left.length, first: `${left[0]!.broadcast_id}: ${left[0]!.reason}` })
      )
    }
    const from = `${day}T00:00:00Z`
    const to = `${nextDay(day)}T00:00:00Z`
    const updates: Array<CostUpdateOutcome> = []
    let index = 0
    for (const [campaignId, group] of groups) {
      const cost = group.cents / 100
      const request = { campaignId, from, to, timezone: "Etc/GMT", cost, currency }
      const base = {
        index: String(index++),
        rows: group.rows,
        campaign_id: campaignId,
        total_cost: Math.round(cost * 1000) / 1000,
        chunk: group.chunk,
        request
      }
      if (dryRun) {
        updates.push({ ...base, response: null })
        continue
      }
      const sent = yield* Effect.result(voluum.updateCost([request]))
      if (sent._tag === "Success") {
        updates.push({ ...base, response: sent.success ?? null })
      } else if (sent.failure instanceof UpstreamError) {
        updates.push({ ...base, response: sent.failure.status ?? null, error: sent.failure.message })
      } else {
        // Voluum not configured or a request it would refuse: no other campaign can do better.
        return yield* sent.failure
      }
    }
    const failed = updates.filter((u) => u.error !== undefined).length
    yield* Effect.logInfo("mmd costs pushed").pipe(
      Effect.annotateLogs({ date: day, campaigns: groups.size, broadcasts: broadcasts.length, failed, dryRun })
    )
    return {
      total_rows: groups.size,
      updates,
      date: day,
      dry_run: dryRun,
      currency,
      broadcasts: broadcasts.length,
      skipped: left,
      failed
    } satisfies CostPushResult
  })
