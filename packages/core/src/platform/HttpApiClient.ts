/**
 * The one way core talks to an external JSON API (Voluum, Ongage, MessageWhiz, HLR): `makeJsonClient`
 * gives a `request` that adds, around Node's global `fetch`,
 *
 * - a rate limit (at most `limit` request starts in any sliding `window`) and a cap on requests in flight;
 * - a timeout on every attempt (the request is aborted, not just abandoned);
 * - bounded retries with exponential backoff and jitter on 429, 408, 5xx, network errors and timeouts,
 *   honouring `Retry-After` (seconds or an HTTP date) when the server sends one;
 * - typed failures: every failure is an `UpstreamError` naming the service, the status and whether a
 *   later retry could help; a 4xx says what the server said (its error description, or the start of the body).
 *
 * Why `fetch` and not effect's `HttpClient`: the clients' methods must have no requirements, the retry,
 * limit and timeout policy is ours either way, and Node 24's `fetch` (undici) needs no layer. Interrupting
 * a request (timeout, caller interrupted) aborts it through the `AbortSignal` of `Effect.tryPromise`.
 *
 * Retries re-send the same request, so callers use it for idempotent calls (reads, Voluum's cost update,
 * which sets a total, Ongage's contacts with `overwrite`), or pass `maxRetries: 0` per request.
 */
import { Cause, Clock, Duration, Effect, Random, Schema, Semaphore } from "effect"
import { UpstreamError } from "./Errors.ts"
import { metrics } from "./Observability.ts"

/** The `outcome` label of an attempt's status (docs/observability.md). */
const outcomeOf = (status: number): string =>
  status < 400 ? "ok" : status === 429 ? "rate_limited" : status >= 500 ? "server_error" : "client_error"

export type QueryValue = string | number | boolean

/** Query parameters; repeated keys as an array value (`groupBy: ["ip", "os-version"]`) or as pairs. */
export type Query =
  | ReadonlyArray<readonly [string, QueryValue]>
  | Readonly<Record<string, QueryValue | ReadonlyArray<QueryValue> | undefined>>

export interface HttpRequest {
  readonly method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
  /** Appended to the base URL; starts with "/". */
  readonly path: string
  readonly query?: Query
  readonly headers?: Readonly<Record<string, string>>
  /** Sent as JSON when present. */
  readonly body?: unknown
  /** Sent as is with its content type (a file upload); `body` is ignored when this is present. */
  readonly rawBody?: { readonly contentType: string; readonly data: string | Uint8Array }
  /**
   * Non-2xx statuses handed back as a response instead of failing (e.g. 401 to re-authenticate, Ongage's
   * 412 partial failure). They are never retried.
   */
  readonly accept?: ReadonlyArray<number>
  /** Overrides the client's retry budget for this request (0 = one attempt). */
  readonly maxRetries?: number
  /** Overrides the client's per-attempt timeout for this request (a large download). */
  readonly timeout?: Duration.Input
  /**
   * Ends the request when aborted, beside the client's own timeout and interruption: what ends a
   * body `download`'s consumer handed on (read after the call).
   */
  readonly signal?: AbortSignal
}

export interface HttpResponse {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  readonly json: unknown
}

export interface JsonClientOptions {
  /** Lower-case service name used in errors and logs ("voluum"). */
  readonly service: string
  /** Without a trailing slash. */
  readonly baseUrl: string
  /** At most `limit` request starts in any `window` (retries count). Default: no limit. */
  readonly rateLimit?: { readonly limit: number; readonly window: Duration.Input }
  /** At most this many requests in flight at once. Default: no limit. */
  readonly maxConcurrent?: number
  /** Per attempt. Default 30 seconds. */
  readonly timeout?: Duration.Input
  /** Retries after the first attempt. Default 4. */
  readonly maxRetries?: number
  /** First backoff delay, doubled each retry. Default 500 ms. */
  readonly baseDelay?: Duration.Input
  /** Cap of one backoff delay. Default 30 seconds. */
  readonly maxDelay?: Duration.Input
  /** A `Retry-After` longer than this is not waited for: the call fails (retryable) at once. Default 2 minutes. */
  readonly maxRetryAfter?: Duration.Input
  /** Sent on every request (the caller's headers win). */
  readonly headers?: Readonly<Record<string, string>>
}

export interface JsonClient {
  readonly service: string
  readonly request: (request: HttpRequest) => Effect.Effect<HttpResponse, UpstreamError>
  /**
   * `request` for a large body: a 2xx body is handed to `consume` as it arrives instead of being
   * read into memory, under the same limit, timeout and retries. `consume` runs again on each
   * attempt, so it must start over each time (open a new writer); its failure counts as a failed
   * attempt. It may also read only the start and hand the body on (return it unread): the rest is
   * then read after the call, outside the attempt — no timeout, no retry — until `request.signal`
   * ends it.
   */
  readonly download: <A>(
    request: HttpRequest,
    consume: (body: AsyncIterable<Uint8Array>, headers: Headers) => Promise<A>
  ) => Effect.Effect<A, UpstreamError>
}

/** A sliding-window limiter: each call waits until fewer than `limit` calls started in the last `window`. */
export const makeRateLimiter = (limit: number, window: Duration.Input): Effect.Effect<void> => {
  const windowMs = Duration.toMillis(Duration.fromInputUnsafe(window))
  const starts: Array<number> = []
  // One waiter at a time keeps the order fair (first come, first served) and the log consistent.
  const lock = Semaphore.makeUnsafe(1)
  return lock.withPermit(
    Effect.gen(function* () {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        while (starts.length > 0 && starts[0]! <= now - windowMs) starts.shift()
        if (starts.length < limit) {
          starts.push(now)
          return
        }
        yield* Effect.sleep(Duration.millis(starts[0]! + windowMs - now))
      }
    })
  )
}

/** Milliseconds to wait from a `Retry-After` value (delay-seconds or an HTTP date), or undefined. */
export const parseRetryAfter = (value: string | null | undefined, nowMs: number): number | undefined => {
  if (value === null || value === undefined) return undefined
  const trimmed = value.trim()
  if (trimmed === "") return undefined
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs)
}

/** The query string of a request, keys repeated as given. */
export const encodeQuery = (query: Query | undefined): string => {
  if (query === undefined) return ""
  const params = new URLSearchParams()
  const pairs: ReadonlyArray<readonly [string, QueryValue | ReadonlyArray<QueryValue> | undefined]> = Array.isArray(
    query
  )
    ? (query as ReadonlyArray<readonly [string, QueryValue]>)
    : Object.entries(query)
  for (const [key, value] of pairs) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value as ReadonlyArray<QueryValue>) params.append(key, String(v))
    else params.append(key, String(value))
  }
  const s = params.toString()
  return s === "" ? "" : `?${s}`
}

/** What a server said in an error body: the usual error fields of JSON APIs, else the start of the text. */
export const describeErrorBody = (response: Pick<HttpResponse, "json" | "text">): string => {
  const j = response.json as Record<string, unknown> | undefined
  const pick = (v: unknown): string | undefined => (typeof v === "string" && v.trim() !== "" ? v.trim() : undefined)
  if (j !== null && typeof j === "object") {
    const error = j["error"] as Record<string, unknown> | string | undefined
    const payload = j["payload"] as Record<string, unknown> | undefined
    const fromError =
      typeof error === "string"
        ? pick(error)
        : error !== null && typeof error === "object"
          ? [pick(error["description"]) ?? pick(error["message"]), pick(error["code"])].filter((s) => s !== undefined)
          : undefined
    const parts = Array.isArray(fromError) ? fromError : fromError === undefined ? [] : [fromError]
    if (parts.length === 2) return `${parts[0]} (${parts[1]})`
    if (parts.length === 1) return parts[0]!
    const message =
      pick(j["message"]) ??
      pick(j["errorMessage"]) ??
      (payload !== null && typeof payload === "object" ? pick(payload["message"]) : undefined)
    if (message !== undefined) return message
  }
  const text = response.text.trim().replace(/\s+/g, " ")
  if (text === "") return "no body"
  return text.length > 300 ? `${text.slice(0, 300)}…` : text
}

/** Decodes a response body with a schema; a mismatch is a non-retryable `UpstreamError`. */
export const decodeResponse =
  <S extends Schema.Top>(service: string, what: string, schema: S) =>
  (response: HttpResponse): Effect.Effect<S["Type"], UpstreamError, S["DecodingServices"]> =>
    Schema.decodeUnknownEffect(schema)(response.json).pipe(
      Effect.mapError(
        (e) =>
          new UpstreamError({
            service,
            status: response.status,
            retryable: false,
            message: `${service} answered an unexpected body for ${what}: ${e.message}`
          })
      )
    )

const isRetryableStatus = (status: number) => status === 429 || status === 408 || status >= 500

/** `value`: what `download`'s consumer made of a 2xx body (boxed: the consumer may make `undefined`). */
type Attempt<A> =
  | { readonly _tag: "Response"; readonly response: HttpResponse; readonly value: { readonly made: A } | undefined }
  | { readonly _tag: "Failure"; readonly error: UpstreamError; readonly retryAfterMs: number | undefined }

const parseJson = (text: string): unknown => {
  if (text.trim() === "") return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const causeText = (cause: unknown): string => {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause
    const code = inner !== null && typeof inner === "object" ? (inner as { code?: unknown }).code : undefined
    return typeof code === "string" ? `${cause.message} (${code})` : cause.message
  }
  return String(cause)
}

/** A client for one service; building it makes no request. */
export const makeJsonClient = (options: JsonClientOptions): Effect.Effect<JsonClient> =>
  Effect.sync(() => {
    const service = options.service
    const timeout = Duration.fromInputUnsafe(options.timeout ?? "30 seconds")
    const maxRetries = options.maxRetries ?? 4
    const baseDelayMs = Duration.toMillis(Duration.fromInputUnsafe(options.baseDelay ?? "500 millis"))
    const maxDelayMs = Duration.toMillis(Duration.fromInputUnsafe(options.maxDelay ?? "30 seconds"))
    const maxRetryAfterMs = Duration.toMillis(Duration.fromInputUnsafe(options.maxRetryAfter ?? "2 minutes"))
    const limiter =
      options.rateLimit === undefined ? Effect.void : makeRateLimiter(options.rateLimit.limit, options.rateLimit.window)
    const inFlight = options.maxConcurrent === undefined ? undefined : Semaphore.makeUnsafe(options.maxConcurrent)

    const attempt = <A>(
      request: HttpRequest,
      what: string,
      consume: ((body: AsyncIterable<Uint8Array>, headers: Headers) => Promise<A>) | undefined
    ): Effect.Effect<Attempt<A>> => {
      const attemptTimeout = request.timeout === undefined ? timeout : Duration.fromInputUnsafe(request.timeout)
      const url = `${options.baseUrl}${request.path}${encodeQuery(request.query)}`
      const headers: Record<string, string> = { accept: "application/json", ...options.headers }
      if (request.rawBody !== undefined) headers["content-type"] = request.rawBody.contentType
      else if (request.body !== undefined) headers["content-type"] = "application/json; charset=utf-8"
      Object.assign(headers, request.headers)
      const body =
        request.rawBody !== undefined
          ? request.rawBody.data
          : request.body === undefined
            ? undefined
            : JSON.stringify(request.body)
      const call = Effect.tryPromise({
        try: async (signal) => {
          const res = await fetch(url, {
            method: request.method ?? "GET",
            headers,
            signal: request.signal === undefined ? signal : AbortSignal.any([signal, request.signal]),
            ...(body === undefined ? {} : { body })
          })
          if (consume !== undefined && res.status >= 200 && res.status < 300) {
            const body: AsyncIterable<Uint8Array> = res.body ?? (async function* () {})()
            const value = { made: await consume(body, res.headers) }
            return { status: res.status, headers: res.headers, text: "", value }
          }
          return { status: res.status, headers: res.headers, text: await res.text(), value: undefined }
        },
        catch: (cause) => cause
      }).pipe(Effect.timeout(attemptTimeout))
      // Timed and counted from the request's start (the rate limit's wait is not the API's latency).
      const timed = Effect.suspend(() => {
        const started = performance.now()
        return call.pipe(
          Effect.tap((raw) =>
            Effect.sync(() => {
              metrics.externalRequests.inc([service, outcomeOf(raw.status)])
              metrics.externalDuration.set([service], (performance.now() - started) / 1000)
            })
          ),
          Effect.tapError((cause) =>
            Effect.sync(() => {
              metrics.externalRequests.inc([service, Cause.isTimeoutError(cause) ? "timeout" : "network_error"])
              metrics.externalDuration.set([service], (performance.now() - started) / 1000)
            })
          )
        )
      })
      const limited = inFlight === undefined ? timed : inFlight.withPermit(timed)
      return limiter.pipe(
        Effect.andThen(limited),
        Effect.flatMap((raw): Effect.Effect<Attempt<A>> => {
          const response: HttpResponse = {
            status: raw.status,
            headers: raw.headers,
            text: raw.text,
            json: parseJson(raw.text)
          }
          if ((raw.status >= 200 && raw.status < 300) || request.accept?.includes(raw.status)) {
            return Effect.succeed({ _tag: "Response", response, value: raw.value })
          }
          const retryable = isRetryableStatus(raw.status)
          return Clock.currentTimeMillis.pipe(
            Effect.map((now) => ({
              _tag: "Failure" as const,
              retryAfterMs: retryable ? parseRetryAfter(raw.headers.get("retry-after"), now) : undefined,
              error: new UpstreamError({
                service,
                status: raw.status,
                retryable,
                message: `${service} answered ${raw.status} to ${what}: ${describeErrorBody(response)}`
              })
            }))
          )
        }),
        Effect.catch((cause) =>
          Effect.succeed<Attempt<A>>({
            _tag: "Failure",
            retryAfterMs: undefined,
            error: new UpstreamError({
              service,
              retryable: true,
              message: Cause.isTimeoutError(cause)
                ? `${service} did not answer ${what} within ${Duration.format(attemptTimeout)}`
                : `${service} could not be reached for ${what}: ${causeText(cause)}`
            })
          })
        )
      )
    }

    const run = Effect.fnUntraced(function* <A>(
      request: HttpRequest,
      consume: ((body: AsyncIterable<Uint8Array>, headers: Headers) => Promise<A>) | undefined
    ) {
      const what = `${request.method ?? "GET"} ${request.path}`
      yield* Effect.annotateCurrentSpan({ service, request: what })
      const budget = request.maxRetries ?? maxRetries
      for (let retry = 0; ; retry++) {
        const outcome = yield* attempt(request, what, consume)
        if (outcome._tag === "Response") return outcome
        const error = outcome.error
        if (!error.retryable) return yield* error
        if (retry >= budget) {
          return yield* new UpstreamError({
            ...error,
            message: budget === 0 ? error.message : `${error.message} (gave up after ${budget + 1} attempts)`
          })
        }
        if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs > maxRetryAfterMs) {
          return yield* new UpstreamError({
            ...error,
            message: `${error.message} (asked to retry after ${Math.round(outcome.retryAfterMs / 1000)} s, more than the ${Math.round(maxRetryAfterMs / 1000)} s this client waits)`
          })
        }
        const backoffMs = Math.min(maxDelayMs, baseDelayMs * 2 ** retry)
        // "Equal jitter": half the backoff fixed, half random, so synchronized callers spread out.
        const delayMs = outcome.retryAfterMs ?? Math.round(backoffMs / 2 + (yield* Random.next) * (backoffMs / 2))
        metrics.externalRetries.inc([service])
        yield* Effect.logWarning(`${error.message}; retrying`).pipe(
          Effect.annotateLogs({ service, attempt: retry + 1, delayMs, status: error.status ?? "none" })
        )
        yield* Effect.sleep(Duration.millis(delayMs))
      }
    })

    const request = (r: HttpRequest): Effect.Effect<HttpResponse, UpstreamError> =>
      run<never>(r, undefined).pipe(
        Effect.map((outcome) => outcome.response),
        Effect.withSpan("HttpApiClient.request")
      )
    const download = <A>(
      r: HttpRequest,
      consume: (body: AsyncIterable<Uint8Array>, headers: Headers) => Promise<A>
    ): Effect.Effect<A, UpstreamError> =>
      run(r, consume).pipe(
        // `consume` made the value on the 2xx path; a status passed through by `accept` has none.
        Effect.flatMap((outcome) =>
          outcome.value !== undefined
            ? Effect.succeed(outcome.value.made)
            : Effect.fail(
                new UpstreamError({
                  service,
                  status: outcome.response.status,
                  retryable: false,
                  message: `${service} answered ${outcome.response.status} to ${r.method ?? "GET"} ${r.path}: nothing to download`
                })
              )
        ),
        Effect.withSpan("HttpApiClient.download")
      )

    return { service, request, download }
  })
