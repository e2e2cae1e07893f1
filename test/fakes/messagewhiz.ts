/**
 * A fake MessageWhiz API (`docs/external-apis.md` "MessageWhiz") for tests, over real HTTP on loopback.
 *
 *   const mw = await startFakeMessageWhiz()
 *   mw.state.broadcasts.push(broadcast({ id: 1, sendDate: "2025-05-01T10:05:00.000Z", linkId: 7, realPrice: 1234 }))
 *   mw.state.links.push({ id: 7, url: "https://trk.example.com/<campaign-uuid>?Phone={recipients.id}" })
 *   mw.state.inject({ status: 429, count: 2, retryAfter: "0" })
 *   // env: MMD_API_URL = mw.url, MMD_API_KEY = mw.state.apiKey
 *
 * Behaviour: every call needs the header `apikey` (else 401 in the envelope). `GET /api/3/Broadcast/List`
 * answers the seeded broadcasts sorted by `send_date` newest first, paged by `limit`/`start`;
 * `GET /api/3/Link` the seeded links in order. Answers are the `/api/3/*` envelope. `errorEnvelope`
 * makes the next list answers 200 with `errorCode` ≠ 0. `delayMs` slows every list answer.
 */
import { Hono } from "hono"
import { listen, requestFront, sleep, type Injection, type RecordedRequest } from "./server.ts"

export interface FakeMessageWhizState {
  readonly apiKey: string
  readonly broadcasts: Array<Record<string, unknown>>
  readonly links: Array<{ readonly id: number; readonly url: string; readonly name?: string }>
  /** Every request, in arrival order. */
  readonly requests: Array<RecordedRequest>
  readonly inject: (injection: Injection) => void
  /** The next `count` list answers are 200 with this error envelope. */
  errorEnvelope: { readonly code: number; readonly type: string; readonly message: string; count: number } | undefined
  /** Each list answer waits this long. */
  delayMs: number
  /** Most requests seen in flight at once. */
  maxInFlight: number
  readonly count: (path: string) => number
}

const envelope = (result: unknown, error?: { code: number; type: string; message: string }) => ({
  errorCode: error?.code ?? 0,
  errorMessage: error?.message ?? "",
  errorType: error?.type ?? "",
  executionTime: 0.01,
  result: error === undefined ? result : null
})

export interface BroadcastSeed {
  readonly id: number
  readonly name?: string
  readonly sendDate: string
  readonly state?: number
  /** `{{link:ID}}` in the message; undefined = a message without a link. */
  readonly linkId?: number
  readonly recipientCount?: number
  readonly estimatedPrice?: number
  /** Cents. */
  readonly realPrice?: number
  /** Absent = no `dlr` key at all. */
  readonly dlr?: { sent: number; delivered: number; undelivered: number; rejected: number }
  readonly clicks?: { unique: number; total: number; conversion: string | number }
}

/** A broadcast list item as MessageWhiz returns it. */
export const broadcast = (s: BroadcastSeed): Record<string, unknown> => ({
  id: s.id,
  name: s.name ?? `BC_${s.id}_chunk#1.csv`,
  campaign_id: 46279,
  send_date: s.sendDate,
  state: s.state ?? 3,
  message_body: s.linkId === undefined ? "Hi! No link here STOP=stop" : `Hi! Your bonus {{link:${s.linkId}}} STOP=stop`,
  recipient_count: s.recipientCount ?? 1000,
  estimated_price: s.estimatedPrice ?? 4200,
  real_price: s.realPrice ?? 4100,
  ...(s.dlr === undefined
    ? {}
    : {
        dlr: {
          sent_count: s.dlr.sent,
          delivered_count: s.dlr.delivered,
          undelivered_count: s.dlr.undelivered,
          rejected_count: s.dlr.rejected,
          expired_count: 0,
          failed_count: 0,
          read_count: 0
        }
      }),
  broadcastConversion: {
    uniqueClicks: s.clicks?.unique ?? 10,
    totalClicks: s.clicks?.total ?? 12,
    recipientCount: s.recipientCount ?? 1000,
    conversion: s.clicks?.conversion ?? "1.00"
  }
})

export const startFakeMessageWhiz = async (options: { readonly apiKey?: string } = {}) => {
  const front = requestFront({
    errorBody: (status) => envelope(null, { code: status, type: "injected", message: "injected" }),
    gate: async (c) => {
      if (c.req.header("apikey") !== state.apiKey) {
        return c.json(envelope(null, { code: 401, type: "Unauthorized", message: "API key missing or invalid" }), 401)
      }
      if (state.delayMs > 0) await sleep(state.delayMs)
      if (state.errorEnvelope !== undefined && state.errorEnvelope.count > 0) {
        state.errorEnvelope.count--
        return c.json(envelope(null, state.errorEnvelope))
      }
      return undefined
    }
  })
  const state: FakeMessageWhizState = {
    apiKey: options.apiKey ?? "fake-mmd-key",
    broadcasts: [],
    links: [],
    requests: front.requests,
    inject: front.inject,
    errorEnvelope: undefined,
    delayMs: 0,
    get maxInFlight() {
      return front.maxInFlight
    },
    set maxInFlight(value) {
      front.maxInFlight = value
    },
    count: (path) => state.requests.filter((r) => r.path === path).length
  }

  const app = new Hono()
  app.use("*", front.middleware)

  const paged = (query: URLSearchParams, items: ReadonlyArray<unknown>) => {
    const start = Math.max(0, Number(query.get("start") ?? 0) || 0)
    const limit = Math.max(1, Number(query.get("limit") ?? 25) || 25)
    return envelope(items.slice(start, start + limit))
  }

  app.get("/api/3/Broadcast/List", (c) => {
    const sorted = [...state.broadcasts].sort((a, b) => String(b["send_date"]).localeCompare(String(a["send_date"])))
    return c.json(paged(new URL(c.req.url).searchParams, sorted))
  })
  app.get("/api/3/Link", (c) =>
    c.json(
      paged(
        new URL(c.req.url).searchParams,
        state.links.map((l) => ({ id: l.id, name: l.name ?? `link ${l.id}`, url: l.url, clicks: 0 }))
      )
    )
  )

  const running = await listen(app)
  return { url: running.url, state, close: running.close }
}

export type FakeMessageWhiz = Awaited<ReturnType<typeof startFakeMessageWhiz>>

/**
 * A busy day: `campaigns` Voluum campaigns (one link each), `perCampaign` broadcasts each, sent as
 * chunks over `hoursPerCampaign` hours, some unsent (state 2). Returns what a snapshot must do: the
 * sent broadcasts and the distinct (campaign, send hour) pairs — one Voluum call each at most.
 */
export const seedBusyDay = (
  state: FakeMessageWhizState,
  options: {
    readonly day: string
    readonly campaigns: number
    readonly perCampaign: number
    readonly hoursPerCampaign: number
    readonly firstLinkId?: number
  }
) => {
  const firstLink = options.firstLinkId ?? 10_000
  const windows = new Set<string>()
  let sent = 0
  let id = 1_000_000
  for (let c = 0; c < options.campaigns; c++) {
    const linkId = firstLink + c
    const campaignId = `cccccccc-0000-4000-8000-${String(linkId).padStart(12, "0")}`
    state.links.push({ id: linkId, url: `https://trk.example.com/${campaignId}?Phone={recipients.id}` })
    const firstHour = c % (24 - options.hoursPerCampaign + 1)
    for (let k = 0; k < options.perCampaign; k++) {
      const hour = firstHour + (k % options.hoursPerCampaign)
      const minute = (k * 7 + c) % 60
      const unsent = k % 10 === 9
      const time = `${options.day}T${String(hour).padStart(2, "0")}:${String(minute).padStart(2, "0")}:00.000Z`
      state.broadcasts.push(
        broadcast({
          id: id++,
          name: `C${c}_chunk#${k}.csv`,
          sendDate: time,
          linkId,
          realPrice: 1000 + k,
          ...(unsent ? { state: 2 } : {}),
          dlr: { sent: 1000, delivered: 950, undelivered: 30, rejected: 20 }
        })
      )
      if (!unsent) {
        sent++
        windows.add(`${campaignId}|${hour}`)
      }
    }
  }
  return { sent, windows: windows.size }
}
