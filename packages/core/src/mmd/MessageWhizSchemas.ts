/**
 * What MessageWhiz answers (`docs/external-apis.md` "MessageWhiz"), decoded with Schema, and the pure
 * enrichment of a broadcast: its link id, the Voluum campaign id of that link, prices in currency units.
 *
 * Fields are lenient where the API is loosely typed (numbers may come as strings, `dlr` and
 * `broadcastConversion` may be absent or null); unknown keys are ignored.
 */
import { Schema } from "effect"

/** A number, or a numeric string ("2.56"); null/absent stays null. */
const LenientNumber = Schema.Union([Schema.Number, Schema.NumberFromString])
const OptionalNumber = Schema.optionalKey(Schema.NullOr(LenientNumber))

/** The `/api/3/*` envelope; `result` is checked by the caller's schema. */
export const Envelope = Schema.Struct({
  errorCode: Schema.optionalKey(Schema.NullOr(LenientNumber)),
  errorMessage: Schema.optionalKey(Schema.NullOr(Schema.String)),
  errorType: Schema.optionalKey(Schema.NullOr(Schema.String)),
  result: Schema.optionalKey(Schema.Unknown)
})
export type Envelope = typeof Envelope.Type

export const Dlr = Schema.Struct({
  sent_count: OptionalNumber,
  delivered_count: OptionalNumber,
  undelivered_count: OptionalNumber,
  rejected_count: OptionalNumber
})

export const BroadcastConversion = Schema.Struct({
  uniqueClicks: OptionalNumber,
  totalClicks: OptionalNumber,
  conversion: OptionalNumber
})

export const Broadcast = Schema.Struct({
  id: Schema.Union([Schema.Number, Schema.String]),
  name: Schema.optionalKey(Schema.NullOr(Schema.String)),
  send_date: Schema.String,
  state: OptionalNumber,
  message_body: Schema.optionalKey(Schema.NullOr(Schema.String)),
  recipient_count: OptionalNumber,
  estimated_price: OptionalNumber,
  real_price: OptionalNumber,
  dlr: Schema.optionalKey(Schema.NullOr(Dlr)),
  broadcastConversion: Schema.optionalKey(Schema.NullOr(BroadcastConversion))
})
export type Broadcast = typeof Broadcast.Type

export const BroadcastPage = Schema.Array(Broadcast)

export const Link = Schema.Struct({
  id: LenientNumber,
  url: Schema.optionalKey(Schema.NullOr(Schema.String))
})
export const LinkPage = Schema.Array(Link)

/** States the original treats as not sent: skipped by snapshots and the live stream (not by the cost push). */
export const isUnsent = (b: Broadcast): boolean => b.state === 0 || b.state === 2

/** The link id of `{{link:ID}}` in the message, or undefined. */
export const linkIdOf = (messageBody: string | null | undefined): number | undefined => {
  const m = /\{\{\s*link\s*:\s*(\d+)\s*\}\}/.exec(messageBody ?? "")
  return m === null ? undefined : Number(m[1])
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The Voluum campaign id in a tracking URL: the UUID-shaped path segment if there is one, else the
 * last non-empty one (`https://trk.x.com/<uuid>`, `https://t.example.org/m/<uuid>?Phone=…`). The
 * original cut after the first "m/", which only worked for `.com` hosts.
 */
export const campaignIdOf = (url: string | undefined): string | undefined => {
  if (url === undefined || url.trim() === "") return undefined
  let path: string
  try {
    path = new URL(url.trim()).pathname
  } catch {
    path = url.trim().split(/[?#]/)[0]!
  }
  const segments = path.split("/").filter((s) => s !== "")
  return segments.find((s) => UUID.test(s)) ?? segments.at(-1)
}

/** Cents → currency units. */
export const fromCents = (cents: number | null | undefined): number => (cents ?? 0) / 100

/** The UTC day `YYYY-MM-DD` a broadcast was sent (its `send_date` prefix). */
export const sendDay = (b: Broadcast): string => b.send_date.slice(0, 10)

/** Where a broadcast's cost and stats go in Voluum, or why it cannot be placed. */
export type Placement =
  | { readonly _tag: "Placed"; readonly linkId: number; readonly url: string; readonly campaignId: string }
  | { readonly _tag: "Unplaced"; readonly reason: string }

/** The Voluum campaign of a broadcast through its `{{link:ID}}` and the link map. */
export const placeBroadcast = (b: Broadcast, links: ReadonlyMap<number, string>): Placement => {
  const linkId = linkIdOf(b.message_body)
  if (linkId === undefined) return { _tag: "Unplaced", reason: "no {{link:ID}} in the message" }
  const url = links.get(linkId)
  if (url === undefined) return { _tag: "Unplaced", reason: `link ${linkId} is not in MessageWhiz's link list` }
  const campaignId = campaignIdOf(url)
  if (campaignId === undefined) return { _tag: "Unplaced", reason: `link ${linkId}'s URL has no campaign id: ${url}` }
  return { _tag: "Placed", linkId, url, campaignId }
}

/** A broadcast reported and left out, with why. */
export interface SkippedBroadcast {
  readonly broadcast_id: string
  readonly name: string
  readonly reason: string
}

export const skipped = (b: Broadcast, reason: string): SkippedBroadcast => ({
  broadcast_id: String(b.id),
  name: b.name ?? "",
  reason
})
