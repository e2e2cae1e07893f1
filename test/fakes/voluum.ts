/**
 * A fake Voluum API (`docs/external-apis.md` "Voluum") for tests, over real HTTP on loopback.
 *
 *   const voluum = await startFakeVoluum({ tokenLifetimeMs: 2_000 })
 *   voluum.state.reportRows.push({ trafficSourceId: "ts-1", at: new Date("2025-05-01T10:00:00Z"), fields: { ... } })
 *   voluum.state.inject({ status: 429, count: 3, retryAfter: "0" })
 *   // env: VOLUUM_API_URL = voluum.url, VOLUUM_ACCESS_ID/KEY = voluum.state.credentials
 *   voluum.state.authCalls; voluum.state.count("/report"); voluum.state.costUpdates
 *   await voluum.close()
 *
 * Behaviour: `POST /auth/access/session` checks `accessId`/`accessKey` and issues a token that expires
 * after `tokenLifetimeMs`; every other call needs a live `cwauth-token` (else 401). `/report` and
 * `/report/conversions` answer the seeded rows that match `filter1=traffic-source&filter1Value=<id>`
 * and `from <= at < to`, paged by `offset`/`limit` with `totalRows`; a `from`/`to` that is not a whole
 * hour is a 400 "invalid time format". `/report?groupBy=offer|campaign` answers the seeded entities, `/report?filter1=campaign` the seeded
 * `campaignTotals` of that campaign.
 * `POST /report/cost` records its `costUpdateRequests`, sets `costs`, and answers 204. Row keys come back ASCII-sorted
 * (as Voluum's did), or in the order `keyOrder` says, with `extraKeys` added to every row.
 */
import { Hono } from "hono"
import { listen, requestFront, type Injection, type RecordedRequest } from "./server.ts"

export interface SeededReportRow {
  readonly trafficSourceId: string
  /** When the traffic happened: `from <= at < to` selects it. */
  readonly at: Date
  /** The row as Voluum returns it (`customVariable1`, `osVersion`, `visits`, …). */
  readonly fields: Record<string, unknown>
}

export interface SeededConversion {
  /** The postback time: `from <= at < to` selects it. */
  readonly at: Date
  readonly trafficSourceId?: string
  readonly fields: Record<string, unknown>
}

export interface FakeVoluumOptions {
  readonly accessId?: string
  readonly accessKey?: string
  /** Default 4 hours. */
  readonly tokenLifetimeMs?: number
}

export interface FakeVoluumState {
  readonly credentials: { readonly accessId: string; readonly accessKey: string }
  tokenLifetimeMs: number
  readonly reportRows: Array<SeededReportRow>
  readonly conversions: Array<SeededConversion>
  readonly offers: Array<{ readonly offerId: string; readonly offerName: string }>
  readonly campaigns: Array<{ readonly campaignId: string; readonly campaignName: string }>
  /** `GET /report?filter1=campaign&filter1Value=<id>` answers these `totals` (zeros for an unknown campaign). */
  readonly campaignTotals: Map<string, Record<string, unknown>>
  /** The server answers at most this many rows per page whatever `limit` asks. */
  maxPageSize: number | undefined
  /** A lying server: `totalRows` claims this (null = the key is left out) instead of the true count. */
  totalRowsOverride: number | null | undefined
  keyOrder: "sorted" | "reversed" | "as-seeded"
  /** Added to every returned row (keys Voluum might add one day). */
  extraKeys: Record<string, unknown>
  /** Every request but those answered by nothing (in arrival order). */
  readonly requests: Array<RecordedRequest>
  readonly costUpdates: Array<Record<string, unknown>>
  /**
   * The cost Voluum holds per `campaignId|from|to` after the updates so far: an update sets the total of
   * its window (it never adds), so replaying the same updates leaves this unchanged.
   */
  readonly costs: Map<string, { readonly cost: number; readonly currency: unknown }>
  authCalls: number
  readonly inject: (injection: Injection) => void
  /** Every token issued so far answers 401 from now on. */
  readonly revokeTokens: () => void
  /** Requests to a path (e.g. "/report"), whatever their outcome. */
  readonly count: (path: string) => number
}

const AUTH_PATH = "/auth/access/session"
const HOUR = /^(\d{4}-\d{2}-\d{2})T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?Z?$/

/** Voluum's `from`/`to`: a whole hour, or undefined. */
const parseHour = (value: string | undefined): Date | undefined => {
  if (value === undefined) return undefined
  const m = HOUR.exec(value)
  if (m === null) return undefined
  const [, day, hour, min, sec, ms] = m
  if (Number(min ?? 0) !== 0 || Number(sec ?? 0) !== 0 || Number(ms ?? 0) !== 0) return undefined
  const d = new Date(`${day}T${hour}:00:00Z`)
  return Number.isNaN(d.getTime()) ? undefined : d
}

const voluumError = (code: string, description: string) => ({ error: { code, description, messages: [description] } })

export const startFakeVoluum = async (options: FakeVoluumOptions = {}) => {
  const tokens = new Map<string, number>() // token → expires at (ms)
  let issued = 0
  const front = requestFront({
    errorBody: (status) => voluumError(status === 429 ? "TOO_MANY_REQUESTS" : "SERVICE_UNAVAILABLE", "injected"),
    // an injection without a path leaves authentication alone
    injectsInto: (path) => path !== AUTH_PATH,
    gate: (c, url) => {
      if (url.pathname === AUTH_PATH) return undefined
      const token = c.req.header("cwauth-token")
      const expiresAt = token === undefined ? undefined : tokens.get(token)
      if (expiresAt !== undefined && expiresAt > Date.now()) return undefined
      return c.json(
        voluumError("UNAUTHORIZED", token === undefined ? "Missing token" : "Token expired or invalid"),
        401
      )
    }
  })

  const state: FakeVoluumState = {
    credentials: { accessId: options.accessId ?? "fake-access-id", accessKey: options.accessKey ?? "fake-access-key" },
    tokenLifetimeMs: options.tokenLifetimeMs ?? 4 * 3_600_000,
    reportRows: [],
    conversions: [],
    offers: [],
    campaigns: [],
    campaignTotals: new Map(),
    maxPageSize: undefined,
    totalRowsOverride: undefined,
    keyOrder: "sorted",
    extraKeys: {},
    requests: front.requests,
    costUpdates: [],
    costs: new Map(),
    authCalls: 0,
    inject: front.inject,
    revokeTokens: () => tokens.clear(),
    count: (path) => state.requests.filter((r) => r.path === path).length
  }

  const shape = (row: Record<string, unknown>): Record<string, unknown> => {
    const all = { ...row, ...state.extraKeys }
    const keys = Object.keys(all)
    if (state.keyOrder === "sorted") keys.sort()
    if (state.keyOrder === "reversed") keys.sort().reverse()
    return Object.fromEntries(keys.map((k) => [k, all[k]]))
  }

  const page = (query: URLSearchParams, rows: ReadonlyArray<Record<string, unknown>>) => {
    const offset = Math.max(0, Number(query.get("offset") ?? 0) || 0)
    const asked = Math.max(1, Number(query.get("limit") ?? 100) || 100)
    const limit = state.maxPageSize === undefined ? asked : Math.min(asked, state.maxPageSize)
    const body: Record<string, unknown> = {
      limit,
      offset,
      rows: rows.slice(offset, offset + limit).map(shape),
      truncated: false,
      messages: []
    }
    if (state.totalRowsOverride !== null) body["totalRows"] = state.totalRowsOverride ?? rows.length
    return body
  }

  const app = new Hono()

  app.use("*", front.middleware)

  app.post(AUTH_PATH, async (c) => {
    state.authCalls++
    const body = (await c.req.json().catch(() => undefined)) as { accessId?: unknown; accessKey?: unknown } | undefined
    if (body?.accessId !== state.credentials.accessId || body?.accessKey !== state.credentials.accessKey) {
      return c.json(voluumError("UNAUTHORIZED", "Invalid credentials"), 401)
    }
    const token = `fake-token-${++issued}`
    const expiresAt = Date.now() + state.tokenLifetimeMs
    tokens.set(token, expiresAt)
    return c.json({ token, expirationTimestamp: new Date(expiresAt).toISOString(), inaugural: false })
  })

  const window = (query: URLSearchParams) => {
    const from = parseHour(query.get("from") ?? undefined)
    const to = parseHour(query.get("to") ?? undefined)
    return from === undefined || to === undefined ? undefined : { from, to }
  }
  const badTime = () => voluumError("BAD_REQUEST", "invalid time format: from and to must be rounded to the hour")

  app.get("/report", (c) => {
    const query = new URL(c.req.url).searchParams
    const w = window(query)
    if (w === undefined) return c.json(badTime(), 400)
    const groupBy = query.getAll("groupBy")
    if (groupBy.includes("offer")) return c.json(page(query, state.offers))
    if (groupBy.includes("campaign")) return c.json(page(query, state.campaigns))
    if (query.get("filter1") === "campaign") {
      const totals = state.campaignTotals.get(query.get("filter1Value") ?? "") ?? {
        visits: 0,
        uniqueVisits: 0,
        Click2Reg: 0,
        Reg2FTD: 0
      }
      return c.json({ ...page(query, []), totals })
    }
    const trafficSource = query.get("filter1") === "traffic-source" ? query.get("filter1Value") : null
    const rows = state.reportRows
      .filter((r) => trafficSource === null || r.trafficSourceId === trafficSource)
      .filter((r) => r.at >= w.from && r.at < w.to)
      .map((r) => r.fields)
    return c.json(page(query, rows))
  })

  app.get("/report/conversions", (c) => {
    const query = new URL(c.req.url).searchParams
    const w = window(query)
    if (w === undefined) return c.json(badTime(), 400)
    const trafficSource = query.get("filter1") === "traffic-source" ? query.get("filter1Value") : null
    const rows = state.conversions
      .filter((r) => trafficSource === null || r.trafficSourceId === trafficSource)
      .filter((r) => r.at >= w.from && r.at < w.to)
      .sort((a, b) => a.at.getTime() - b.at.getTime())
      .map((r) => r.fields)
    return c.json(page(query, rows))
  })

  app.post("/report/cost", async (c) => {
    const body = (await c.req.json().catch(() => undefined)) as { costUpdateRequests?: unknown } | undefined
    const updates = body?.costUpdateRequests
    if (!Array.isArray(updates) || updates.length === 0) {
      return c.json(voluumError("BAD_REQUEST", "costUpdateRequests must be a non-empty list"), 400)
    }
    for (const u of updates as Array<Record<string, unknown>>) {
      if (parseHour(String(u["from"])) === undefined || parseHour(String(u["to"])) === undefined) {
        return c.json(badTime(), 400)
      }
    }
    state.costUpdates.push(...(updates as Array<Record<string, unknown>>))
    for (const u of updates as Array<Record<string, unknown>>) {
      state.costs.set(`${String(u["campaignId"])}|${String(u["from"])}|${String(u["to"])}`, {
        cost: Number(u["cost"]),
        currency: u["currency"]
      })
    }
    return c.body(null, 204)
  })

  const running = await listen(app)
  return { url: running.url, state, close: running.close }
}

export type FakeVoluum = Awaited<ReturnType<typeof startFakeVoluum>>
