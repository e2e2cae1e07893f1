/**
 * The live broadcasts stream (`docs/mmd.md`, `docs/original-api.md` "MessageWhiz"): today's (UTC) sent
 * broadcasts, optionally only those whose name contains `search` (any case), grouped by the name's
 * prefix before `_chunk` (groups in first-seen order, newest first), each broadcast as a `row` event
 * with its Voluum totals or an `error` event, and `broadcast_done` after each group.
 *
 * Broadcasts are processed one after the other, when the consumer asks for the next event, so a
 * consumer that stops (an SSE client that disconnects) stops the work. Voluum totals are fetched
 * once per (campaign, window) for the life of the stream. A broadcast without a known link, or whose
 * Voluum call fails, is an `error` event; the stream goes on.
 */
import { Clock, Effect, Stream } from "effect"
import type { VoluumClient } from "../voluum/VoluumClient.ts"
import type { MessageWhizClient, MessageWhizError } from "./MessageWhizClient.ts"
import { isUnsent, placeBroadcast, type Broadcast } from "./MessageWhizSchemas.ts"
import { broadcastRow, makeTotalsCache, type BroadcastRow } from "./MmdRows.ts"

export type BroadcastEvent =
  | { readonly type: "row"; readonly broadcast: string; readonly row: BroadcastRow }
  | { readonly type: "error"; readonly broadcast: string; readonly error: string }
  | { readonly type: "broadcast_done"; readonly broadcast: string }

/** `DE_60k_22_12_25_LV_chunk#24.csv` → `DE_60k_22_12_25_LV`. */
export const groupOf = (name: string): string => name.split("_chunk")[0]!

/** Broadcasts by group, groups in first-seen order. */
export const groupBroadcasts = (broadcasts: ReadonlyArray<Broadcast>): Map<string, Array<Broadcast>> => {
  const groups = new Map<string, Array<Broadcast>>()
  for (const b of broadcasts) {
    const group = groupOf(b.name ?? "")
    const members = groups.get(group)
    if (members === undefined) groups.set(group, [b])
    else members.push(b)
  }
  return groups
}

export const makeLive =
  (messageWhiz: MessageWhizClient["Service"], voluum: VoluumClient["Service"]) =>
  (search?: string): Effect.Effect<Stream.Stream<BroadcastEvent>, MessageWhizError> =>
    Effect.gen(function* () {
      const today = new Date(yield* Clock.currentTimeMillis).toISOString().slice(0, 10)
      const needle = search?.trim().toLowerCase() ?? ""
      const sent = (yield* messageWhiz.broadcastsOfDay(today)).filter(
        (b) => !isUnsent(b) && (needle === "" || (b.name ?? "").toLowerCase().includes(needle))
      )
      if (sent.length === 0) return Stream.empty
      const links = yield* messageWhiz.links()
      const totals = yield* makeTotalsCache(voluum)
      const eventOf = (b: Broadcast, group: string): Effect.Effect<BroadcastEvent> => {
        const placement = placeBroadcast(b, links)
        if (placement._tag === "Unplaced") {
          return Effect.succeed({ type: "error", broadcast: group, error: `broadcast ${b.id}: ${placement.reason}` })
        }
        return totals(placement.campaignId, b.send_date).pipe(
          Effect.map((t): BroadcastEvent => ({
            type: "row",
            broadcast: group,
            row: broadcastRow(b, placement.campaignId, t)
          })),
          Effect.catch((e) =>
            Effect.succeed<BroadcastEvent>({
              type: "error",
              broadcast: group,
              error: `broadcast ${b.id}: ${e.message}`
            })
          )
        )
      }
      return Stream.fromIterable(groupBroadcasts(sent)).pipe(
        Stream.flatMap(([group, members]) =>
          Stream.fromIterable(members).pipe(
            Stream.mapEffect((b) => eventOf(b, group)),
            Stream.concat(Stream.succeed<BroadcastEvent>({ type: "broadcast_done", broadcast: group }))
          )
        )
      )
    })
