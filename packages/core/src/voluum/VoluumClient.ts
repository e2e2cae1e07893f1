/**
 * The Voluum API (`docs/external-apis.md` "Voluum") as a service: the traffic-source report, raw conversions, id → name
 * maps of offers and campaigns, and the cost update.
 *
 * - Session: one token per layer instance (so one per process), taken from `POST /auth/access/session`
 *   and renewed shortly before its `expirationTimestamp`. One renewal at a time: concurrent calls that
 *   find no valid token share the one in progress (its token or its failure) instead of each authenticating. A 401 drops the
 *   token, re-authenticates once and repeats the call once (the original asked for a token on every
 *   report, and one of its paths retried forever).
 * - Reports page with `offset`/`limit` and stop on an empty page or once `totalRows` rows arrived; the
 *   offset advances by the rows actually received (a server that caps `limit` loses nothing), and a page
 *   cap stops a server that never ends (the original compared counts for equality and could loop forever).
 * - `from`/`to` must be whole hours (Voluum answers 400 otherwise): a window that is not is rejected
 *   here with a `ValidationError` that says which rounding to use, rather than rounded silently (rounding
 *   would change which data a caller gets). `floorToHour`/`ceilToHour` do the rounding for callers.
 * - Times are sent as UTC instants (`2025-05-01T14:00:00Z`) with `tz=Etc/GMT` unless asked otherwise, so
 *   conversion timestamps come back in UTC.
 * - Rows come as a `Stream` (`reportStream`, `conversionsStream`) for large reports, or collected
 *   (`report`, `conversions`). Each page is one request; the stream asks for the next page when pulled.
 * - HTTP, retries, rate limit (`VOLUUM_REQUESTS_PER_SECOND`, 15 documented) and timeouts come from
 *   `platform/HttpApiClient.ts`. Without VOLUUM_ACCESS_ID/VOLUUM_ACCESS_KEY the layer still builds and
 *   every method fails with `NotConfigured`. Building the layer makes no request.
 */
import { Clock, Context, Deferred, Duration, Effect, Layer, Option, Redacted, Ref, Schema, Stream } from "effect"
import { AppConfig, requireIntegration, type VoluumSettings } from "../platform/Config.ts"
import { NotConfigured, UpstreamError, ValidationError } from "../platform/Errors.ts"
import {
  decodeResponse,
  describeErrorBody,
  makeJsonClient,
  type HttpRequest,
  type HttpResponse,
  type QueryValue
} from "../platform/HttpApiClient.ts"
import {
  CONVERSION_COLUMNS,
  ConversionRow,
  ceilToHour,
  campaignTotalsPage,
  formatVoluumHour,
  type CampaignTotals,
  hourWindow,
  LenientString,
  REPORT_COLUMNS,
  REPORT_GROUP_BY,
  ReportRow,
  reportPage,
  SessionResponse
} from "./VoluumSchemas.ts"

export type VoluumError = UpstreamError | NotConfigured | ValidationError

/** A time window; both ends on whole hours, `to` exclusive. */
export interface HourWindow {
  readonly from: Date | string
  readonly to: Date | string
}

export interface ReportParams extends HourWindow {
  /** Voluum traffic-source id (`filter1=traffic-source&filter1Value=<id>`). */
  readonly trafficSourceId: string
  /** IANA zone for Voluum's bucketing. Default `Etc/GMT`. */
  readonly tz?: string
  /** Default `EUR`, as the original asked. */
  readonly currency?: string
}

export interface ConversionsParams extends HourWindow {
  /** Only conversions of this traffic source (all when absent). */
  readonly trafficSourceId?: string
  /** Default `Etc/GMT`: timestamps in the rows are then UTC. */
  readonly tz?: string
  /** Default `EUR`, as the original asked. */
  readonly currency?: string
}

/** One `POST /report/cost` entry: the TOTAL cost of a campaign over a window, spread by Voluum over its visits. */
export interface CostUpdate extends HourWindow {
  readonly campaignId: string
  readonly cost: number
  /** Default `VOLUUM_COST_CURRENCY` (USD). */
  readonly currency?: string
  /** Default `Etc/GMT`. */
  readonly timezone?: string
}

export interface VoluumClientOptions {
  /** Per request. Default 30 seconds. */
  readonly timeout?: Duration.Input
  /** Retries of a request on 429/5xx/network errors. Default 4. */
  readonly maxRetries?: number
  /** First backoff delay. Default 500 ms. */
  readonly baseDelay?: Duration.Input
  /** Longest backoff delay. Default 30 seconds. */
  readonly maxDelay?: Duration.Input
  /** Longest `Retry-After` honoured. Default 2 minutes. */
  readonly maxRetryAfter?: Duration.Input
  /** The token is renewed this long before it expires (at most half its lifetime). Default 5 minutes. */
  readonly tokenRefreshMargin?: Duration.Input
  /** `limit` of report pages. Default 10 000 (the original's). */
  readonly pageSize?: number
  /** `limit` of offer/campaign pages. Default 1 000 (the original's). */
  readonly entityPageSize?: number
  /** A report with more pages than this fails instead of paging on. Default 1 000. */
  readonly maxPages?: number
  /** Days of the rolling window of `offers()`/`campaigns()` when none is given. Default 90. */
  readonly entityWindowDays?: number
}

export class VoluumClient extends Context.Service<
  VoluumClient,
  {
    /** The traffic-source report, one row per phone × IP × browser version × OS version, page by page. */
    readonly reportStream: (params: ReportParams) => Stream.Stream<ReportRow, VoluumError>
    /** `reportStream`, collected. */
    readonly report: (params: ReportParams) => Effect.Effect<ReadonlyArray<ReportRow>, VoluumError>
    /** Raw conversions (postback time in the window), page by page. */
    readonly conversionsStream: (params: ConversionsParams) => Stream.Stream<ConversionRow, VoluumError>
    /** `conversionsStream`, collected. */
    readonly conversions: (params: ConversionsParams) => Effect.Effect<ReadonlyArray<ConversionRow>, VoluumError>
    /** Offer id → name for offers with traffic in the window (default: the last `entityWindowDays` up to now). */
    readonly offers: (window?: HourWindow) => Effect.Effect<ReadonlyMap<string, string>, VoluumError>
    /** Campaign id → name, as `offers`. */
    readonly campaigns: (window?: HourWindow) => Effect.Effect<ReadonlyMap<string, string>, VoluumError>
    /**
     * A campaign's totals over a window (visits, unique visits, Click2Reg, Reg2FTD): one `GET /report`
     * filtered on the campaign, `limit=1`, its `totals` (empty when Voluum sends none).
     */
    readonly campaignTotals: (campaignId: string, window: HourWindow) => Effect.Effect<CampaignTotals, VoluumError>
    /**
     * Sets the total cost of campaigns over windows (`POST /report/cost`); nothing is sent for an empty
     * list. Succeeds with the HTTP status Voluum answered (undefined when nothing was sent).
     */
    readonly updateCost: (updates: ReadonlyArray<CostUpdate>) => Effect.Effect<number | undefined, VoluumError>
  }
>()("@optimizer/core/voluum/VoluumClient") {
  static readonly layerWith = (options: VoluumClientOptions) =>
    Layer.effect(
      VoluumClient,
      Effect.gen(function* () {
        const settings = yield* AppConfig
        return settings.voluum.configured
          ? yield* makeConfigured(settings.voluum.value, options)
          : notConfigured(requireIntegration("Voluum", settings.voluum))
      })
    )
  static readonly layer = VoluumClient.layerWith({})
}

const SERVICE = "voluum"
const DEFAULT_TOKEN_LIFETIME_MS = 4 * 3_600_000

const notConfigured = (failure: Effect.Effect<unknown, NotConfigured>): VoluumClient["Service"] => {
  const fail = Effect.flatMap(failure, () => Effect.never)
  return VoluumClient.of({
    reportStream: () => Stream.fromEffect(fail),
    report: () => fail,
    conversionsStream: () => Stream.fromEffect(fail),
    conversions: () => fail,
    offers: () => fail,
    campaigns: () => fail,
    campaignTotals: () => fail,
    updateCost: () => fail
  })
}

const validated = <A>(value: A | ValidationError): Effect.Effect<A, ValidationError> =>
  value instanceof ValidationError ? Effect.fail(value) : Effect.succeed(value)

const makeConfigured = (settings: VoluumSettings, options: VoluumClientOptions) =>
  Effect.gen(function* () {
    const http = yield* makeJsonClient({
      service: SERVICE,
      baseUrl: settings.apiUrl,
      rateLimit: { limit: settings.requestsPerSecond, window: "1 second" },
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
      ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
      ...(options.baseDelay === undefined ? {} : { baseDelay: options.baseDelay }),
      ...(options.maxDelay === undefined ? {} : { maxDelay: options.maxDelay }),
      ...(options.maxRetryAfter === undefined ? {} : { maxRetryAfter: options.maxRetryAfter })
    })
    const refreshMarginMs = Duration.toMillis(Duration.fromInputUnsafe(options.tokenRefreshMargin ?? "5 minutes"))
    const pageSize = options.pageSize ?? 10_000
    const entityPageSize = options.entityPageSize ?? 1_000
    const maxPages = options.maxPages ?? 1_000
    const entityWindowDays = options.entityWindowDays ?? 90

    // ---- session token ----------------------------------------------------------------------------
    const cached = yield* Ref.make<{ readonly token: string; readonly renewAt: number } | undefined>(undefined)
    const renewing = yield* Ref.make<Deferred.Deferred<string, UpstreamError> | undefined>(undefined)

    const createSession = Effect.gen(function* () {
      const response = yield* http.request({
        method: "POST",
        path: "/auth/access/session",
        body: { accessId: settings.accessId, accessKey: Redacted.value(settings.accessKey) },
        accept: [400, 401, 403]
      })
      if (response.status >= 300) {
        return yield* new UpstreamError({
          service: SERVICE,
          status: response.status,
          retryable: false,
          message: `Voluum rejected VOLUUM_ACCESS_ID/VOLUUM_ACCESS_KEY (${response.status}): ${describeErrorBody(response)}`
        })
      }
      const session = yield* decodeResponse(SERVICE, "POST /auth/access/session", SessionResponse)(response)
      const now = yield* Clock.currentTimeMillis
      const expiresAt = session.expirationTimestamp === null ? Number.NaN : Date.parse(session.expirationTimestamp)
      const lifetime = Number.isNaN(expiresAt) ? DEFAULT_TOKEN_LIFETIME_MS : Math.max(0, expiresAt - now)
      const renewAt = now + lifetime - Math.min(refreshMarginMs, lifetime / 2)
      yield* Ref.set(cached, { token: session.token, renewAt })
      yield* Effect.logDebug("voluum: new session token").pipe(
        Effect.annotateLogs({ service: SERVICE, expiresInSeconds: Math.round(lifetime / 1000) })
      )
      return session.token
    })

    const validToken = Effect.gen(function* () {
      const current = yield* Ref.get(cached)
      const now = yield* Clock.currentTimeMillis
      return current !== undefined && now < current.renewAt ? current.token : undefined
    })

    // Single flight: the first caller that finds no valid token starts one renewal, in a fiber of its own
    // (so interrupting that caller cannot strand the others); every caller meanwhile awaits its result,
    // success or failure, so 20 concurrent calls make one authentication request.
    const renew = Effect.gen(function* () {
      const mine = yield* Deferred.make<string, UpstreamError>()
      const running = yield* Ref.modify(renewing, (r) => (r === undefined ? [undefined, mine] : [r, r]))
      if (running !== undefined) return yield* Deferred.await(running)
      yield* Effect.flatMap(validToken, (t) => (t !== undefined ? Effect.succeed(t) : createSession)).pipe(
        Effect.exit,
        Effect.flatMap((exit) => Ref.set(renewing, undefined).pipe(Effect.andThen(Deferred.done(mine, exit)))),
        Effect.forkDetach
      )
      return yield* Deferred.await(mine)
    })

    const token: Effect.Effect<string, UpstreamError> = Effect.flatMap(validToken, (t) =>
      t !== undefined ? Effect.succeed(t) : renew
    )

    const forget = (rejected: string) => Ref.update(cached, (c) => (c?.token === rejected ? undefined : c))

    const authorized = (request: HttpRequest): Effect.Effect<HttpResponse, UpstreamError> =>
      Effect.gen(function* () {
        const withToken = (t: string) =>
          http.request({ ...request, headers: { ...request.headers, "cwauth-token": t }, accept: [401] })
        const first = yield* token
        const response = yield* withToken(first)
        if (response.status !== 401) return response
        yield* Effect.logInfo("voluum: session token rejected, authenticating again").pipe(
          Effect.annotateLogs({ service: SERVICE })
        )
        yield* forget(first)
        const again = yield* withToken(yield* token)
        if (again.status === 401) {
          return yield* new UpstreamError({
            service: SERVICE,
            status: 401,
            retryable: false,
            message: `Voluum rejected a fresh session token for ${request.method ?? "GET"} ${request.path}: ${describeErrorBody(again)} (not every endpoint accepts access-key sessions)`
          })
        }
        return again
      })

    // ---- paging -----------------------------------------------------------------------------------
    const pages = <S extends Schema.Top & { readonly DecodingServices: never }>(
      path: string,
      query: ReadonlyArray<readonly [string, QueryValue]>,
      limit: number,
      row: S
    ): Stream.Stream<S["Type"], UpstreamError> => {
      const decode = decodeResponse(SERVICE, `GET ${path}`, reportPage(row))
      return Stream.paginate({ offset: 0, received: 0, page: 1 }, (state) =>
        Effect.gen(function* () {
          const response = yield* authorized({
            path,
            query: [...query, ["limit", limit], ["offset", state.offset]]
          })
          const body = yield* decode(response)
          const rows: ReadonlyArray<S["Type"]> = body.rows ?? []
          const received = state.received + rows.length
          const done = rows.length === 0 || (body.totalRows !== null && received >= body.totalRows)
          if (!done && state.page >= maxPages) {
            return yield* new UpstreamError({
              service: SERVICE,
              retryable: false,
              message: `Voluum's ${path} did not end after ${maxPages} pages (${received} rows, totalRows ${body.totalRows ?? "absent"})`
            })
          }
          return [
            rows,
            done ? Option.none() : Option.some({ offset: state.offset + rows.length, received, page: state.page + 1 })
          ] as const
        })
      )
    }

    const window = (w: HourWindow) => validated(hourWindow(w))

    // ---- report -----------------------------------------------------------------------------------
    const reportStream = (params: ReportParams): Stream.Stream<ReportRow, VoluumError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const { from, to } = yield* window(params)
          if (params.trafficSourceId.trim() === "") {
            return yield* new ValidationError({ message: "a traffic source id is required", field: "trafficSourceId" })
          }
          const query: Array<readonly [string, QueryValue]> = [
            ["reportType", "table"],
            ["dateRange", "custom-date-time"],
            ["from", formatVoluumHour(from)],
            ["to", formatVoluumHour(to)],
            ["searchMode", "TEXT"],
            ["currency", params.currency ?? "EUR"],
            ["sort", "visits"],
            ["direction", "ASC"],
            ["reportDataType", "0"],
            ...REPORT_GROUP_BY.map((g) => ["groupBy", g] as const),
            ...REPORT_COLUMNS.map((c) => ["column", c] as const),
            ["tz", params.tz ?? "Etc/GMT"],
            ["filter1", "traffic-source"],
            ["filter1Value", params.trafficSourceId.trim()]
          ]
          return pages("/report", query, pageSize, ReportRow)
        })
      )

    // ---- conversions ------------------------------------------------------------------------------
    const conversionsStream = (params: ConversionsParams): Stream.Stream<ConversionRow, VoluumError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const { from, to } = yield* window(params)
          const trafficSource = params.trafficSourceId?.trim()
          const query: Array<readonly [string, QueryValue]> = [
            ["from", formatVoluumHour(from)],
            ["to", formatVoluumHour(to)],
            ["tz", params.tz ?? "Etc/GMT"],
            ["currency", params.currency ?? "EUR"],
            // A stable order keeps offset paging from skipping or repeating rows.
            ["sort", "postbackTimestamp"],
            ["direction", "ASC"],
            ...CONVERSION_COLUMNS.map((c) => ["column", c] as const),
            ...(trafficSource === undefined || trafficSource === ""
              ? []
              : ([
                  ["filter1", "traffic-source"],
                  ["filter1Value", trafficSource]
                ] as const))
          ]
          return pages("/report/conversions", query, pageSize, ConversionRow)
        })
      )

    // ---- offers / campaigns -----------------------------------------------------------------------
    const entityNames = (kind: "offer" | "campaign") => {
      const idKey = `${kind}Id`
      const nameKey = `${kind}Name`
      const Row = Schema.Struct({ [idKey]: LenientString, [nameKey]: LenientString })
      return (w?: HourWindow) =>
        Effect.gen(function* () {
          const { from, to } = yield* window(
            w ??
              (yield* Clock.currentTimeMillis.pipe(
                Effect.map((now) => {
                  const end = ceilToHour(new Date(now))
                  return { from: new Date(end.getTime() - entityWindowDays * 86_400_000), to: end }
                })
              ))
          )
          const query: Array<readonly [string, QueryValue]> = [
            ["reportType", "tree"],
            ["dateRange", "custom-date-time"],
            ["from", formatVoluumHour(from)],
            ["to", formatVoluumHour(to)],
            ["searchMode", "TEXT"],
            ["include", "ALL"],
            ["currency", "EUR"],
            ["direction", "DESC"],
            ["groupBy", kind],
            ["conversionTimeMode", "CONVERSION"],
            ["column", idKey],
            ["column", nameKey],
            ["tz", "Etc/GMT"]
          ]
          const rows = yield* Stream.runCollect(pages("/report", query, entityPageSize, Row))
          const names = new Map<string, string>()
          for (const r of rows as ReadonlyArray<Record<string, string | null>>) {
            const id = r[idKey]
            const name = r[nameKey]
            if (id !== null && id !== undefined && id !== "" && name !== null && name !== undefined) names.set(id, name)
          }
          return names as ReadonlyMap<string, string>
        })
    }
    const offers = Effect.fn("VoluumClient.offers")(entityNames("offer"))
    const campaigns = Effect.fn("VoluumClient.campaigns")(entityNames("campaign"))

    // ---- campaign totals --------------------------------------------------------------------------
    const campaignTotals = Effect.fn("VoluumClient.campaignTotals")(function* (campaignId: string, w: HourWindow) {
      const { from, to } = yield* window(w)
      if (campaignId.trim() === "") {
        return yield* new ValidationError({ message: "a campaign id is required", field: "campaignId" })
      }
      const query: Array<readonly [string, QueryValue]> = [
        ["reportType", "table"],
        ["limit", 1],
        ["offset", 0],
        ["dateRange", "custom-date-time"],
        ["from", formatVoluumHour(from)],
        ["to", formatVoluumHour(to)],
        ["searchMode", "TEXT"],
        ["currency", "EUR"],
        ["sort", "visits"],
        ["direction", "ASC"],
        ["reportDataType", "0"],
        ...REPORT_GROUP_BY.map((g) => ["groupBy", g] as const),
        ...REPORT_COLUMNS.map((c) => ["column", c] as const),
        ["tz", "Etc/GMT"],
        ["filter1", "campaign"],
        ["filter1Value", campaignId.trim()]
      ]
      const response = yield* authorized({ path: "/report", query })
      const body = yield* decodeResponse(SERVICE, "GET /report (campaign totals)", campaignTotalsPage)(response)
      return body.totals ?? {}
    })

    // ---- cost -------------------------------------------------------------------------------------
    const updateCost = Effect.fn("VoluumClient.updateCost")(function* (updates: ReadonlyArray<CostUpdate>) {
      if (updates.length === 0) return undefined
      const costUpdateRequests = []
      for (const [i, u] of updates.entries()) {
        const { from, to } = yield* validated(hourWindow(u, { from: `updates[${i}].from`, to: `updates[${i}].to` }))
        if (u.campaignId.trim() === "") {
          return yield* new ValidationError({ message: "a campaign id is required", field: `updates[${i}].campaignId` })
        }
        if (!Number.isFinite(u.cost) || u.cost < 0) {
          return yield* new ValidationError({
            message: `cost must be a number of at least 0, got ${u.cost}`,
            field: `updates[${i}].cost`
          })
        }
        costUpdateRequests.push({
          campaignId: u.campaignId.trim(),
          from: formatVoluumHour(from),
          to: formatVoluumHour(to),
          timezone: u.timezone ?? "Etc/GMT",
          cost: u.cost,
          currency: u.currency ?? settings.costCurrency
        })
      }
      const response = yield* authorized({ method: "POST", path: "/report/cost", body: { costUpdateRequests } })
      return response.status
    })

    return VoluumClient.of({
      reportStream,
      report: Effect.fn("VoluumClient.report")((params: ReportParams) => Stream.runCollect(reportStream(params))),
      conversionsStream,
      conversions: Effect.fn("VoluumClient.conversions")((params: ConversionsParams) =>
        Stream.runCollect(conversionsStream(params))
      ),
      offers,
      campaigns,
      campaignTotals,
      updateCost
    })
  })
