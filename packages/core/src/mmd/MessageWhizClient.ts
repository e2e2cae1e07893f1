/**
 * The MessageWhiz API (`docs/external-apis.md` "MessageWhiz") as a service: the broadcasts of a UTC day
 * and the tracked links.
 *
 * - `apikey` header from MMD_API_KEY on every call (the original hard-coded one for broadcasts); base URL
 *   MMD_API_URL. Without MMD_API_KEY the layer builds and every method fails with `NotConfigured`.
 * - Rate limit (MMD_REQUESTS_PER_SECOND), a cap on requests in flight, timeouts and retries with backoff
 *   (429 honouring Retry-After, 5xx, network) come from `platform/HttpApiClient.ts`: no sleeps.
 * - Every answer is the `/api/3/*` envelope, decoded with Schema; `errorCode` ≠ 0 is an `UpstreamError`
 *   naming MessageWhiz's code, type and message (not retried: the same request would fail again).
 * - `/api/3/Broadcast/List` is newest first and has no date filter: `broadcastsOfDay` pages
 *   (`limit`/`start`) until a page reaches a broadcast older than the day or comes short, and keeps the
 *   day's broadcasts (whatever their state). A page cap stops a server that never ends.
 */
import { Context, Duration, Effect, Layer, Redacted, Schema } from "effect"
import { AppConfig, requireIntegration, type MmdSettings } from "../platform/Config.ts"
import { NotConfigured, UpstreamError, ValidationError } from "../platform/Errors.ts"
import { decodeResponse, makeJsonClient } from "../platform/HttpApiClient.ts"
import { Broadcast, BroadcastPage, Envelope, LinkPage, sendDay } from "./MessageWhizSchemas.ts"

export type MessageWhizError = UpstreamError | NotConfigured | ValidationError

export interface MessageWhizClientOptions {
  /** Items asked per page. Default 100 (the original's). */
  readonly pageSize?: number
  /** Pages before giving up on a list that never ends. Default 1,000. */
  readonly maxPages?: number
  /** Requests in flight at once. Default 4. */
  readonly maxConcurrent?: number
  readonly maxRetries?: number
  readonly baseDelay?: Duration.Input
  readonly timeout?: Duration.Input
}

export class MessageWhizClient extends Context.Service<
  MessageWhizClient,
  {
    /** The broadcasts sent on a UTC day (`YYYY-MM-DD`), newest first, every state. */
    readonly broadcastsOfDay: (day: string) => Effect.Effect<ReadonlyArray<Broadcast>, MessageWhizError>
    /** Link id → its URL without the query string. */
    readonly links: () => Effect.Effect<ReadonlyMap<number, string>, MessageWhizError>
  }
>()("@optimizer/core/mmd/MessageWhizClient") {
  static readonly layerWith = (options: MessageWhizClientOptions) =>
    Layer.effect(
      MessageWhizClient,
      Effect.gen(function* () {
        const settings = yield* AppConfig
        return settings.mmd.configured
          ? yield* makeConfigured(settings.mmd.value, options)
          : notConfigured(requireIntegration("MessageWhiz", settings.mmd))
      })
    )
  static readonly layer = MessageWhizClient.layerWith({})
}

const SERVICE = "messagewhiz"
const DAY = /^\d{4}-\d{2}-\d{2}$/

const notConfigured = (failure: Effect.Effect<unknown, NotConfigured>): MessageWhizClient["Service"] => {
  const fail = Effect.flatMap(failure, () => Effect.never)
  return MessageWhizClient.of({ broadcastsOfDay: () => fail, links: () => fail })
}

/** A valid `YYYY-MM-DD`, else a `ValidationError` naming `field`. */
export const validDay = (day: string, field = "date"): Effect.Effect<string, ValidationError> =>
  DAY.test(day) &&
  !Number.isNaN(Date.parse(`${day}T00:00:00Z`)) &&
  new Date(`${day}T00:00:00Z`).toISOString().startsWith(day)
    ? Effect.succeed(day)
    : Effect.fail(new ValidationError({ message: `expected a date YYYY-MM-DD, got "${day}"`, field }))

const makeConfigured = (settings: MmdSettings, options: MessageWhizClientOptions) =>
  Effect.gen(function* () {
    const http = yield* makeJsonClient({
      service: SERVICE,
      baseUrl: settings.apiUrl.replace(/\/+$/, ""),
      rateLimit: { limit: settings.requestsPerSecond, window: "1 second" },
      maxConcurrent: options.maxConcurrent ?? 4,
      headers: { apikey: Redacted.value(settings.apiKey) },
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
      ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
      ...(options.baseDelay === undefined ? {} : { baseDelay: options.baseDelay })
    })
    const pageSize = options.pageSize ?? 100
    const maxPages = options.maxPages ?? 1_000
    const decodeEnvelope = (what: string) => decodeResponse(SERVICE, what, Envelope)

    /** One page of a list endpoint: the envelope checked, its `result` decoded with `schema`. */
    const page = <S extends Schema.Top & { readonly DecodingServices: never }>(
      path: string,
      start: number,
      schema: S
    ) =>
      Effect.gen(function* () {
        const what = `GET ${path}`
        const response = yield* http.request({ path, query: { limit: pageSize, start } })
        const envelope = yield* decodeEnvelope(what)(response)
        const code = envelope.errorCode ?? 0
        if (code !== 0) {
          return yield* new UpstreamError({
            service: SERVICE,
            status: response.status,
            retryable: false,
            message: `MessageWhiz answered error ${code}${envelope.errorType ? ` (${envelope.errorType})` : ""} to ${what}: ${envelope.errorMessage || "no message"}`
          })
        }
        return yield* decodeResponse(SERVICE, what, schema)({ ...response, json: envelope.result ?? [] })
      })

    const tooLong = (path: string, items: number) =>
      new UpstreamError({
        service: SERVICE,
        retryable: false,
        message: `MessageWhiz's ${path} did not end after ${maxPages} pages (${items} items)`
      })

    const broadcastsOfDay = Effect.fn("MessageWhizClient.broadcastsOfDay")(function* (day: string) {
      yield* validDay(day)
      const path = "/api/3/Broadcast/List"
      const found: Array<Broadcast> = []
      let start = 0
      for (let n = 1; ; n++) {
        const items = yield* page(path, start, BroadcastPage)
        let older = false
        for (const b of items) {
          const d = sendDay(b)
          if (d === day) found.push(b)
          else if (d < day) older = true
        }
        if (older || items.length < pageSize) return found
        if (n >= maxPages) return yield* tooLong(path, start + items.length)
        start += items.length
      }
    })

    const links = Effect.fn("MessageWhizClient.links")(function* () {
      const path = "/api/3/Link"
      const map = new Map<number, string>()
      let start = 0
      for (let n = 1; ; n++) {
        const items = yield* page(path, start, LinkPage)
        for (const l of items) {
          if (l.url !== null && l.url !== undefined) map.set(l.id, l.url.split("?")[0]!)
        }
        if (items.length < pageSize) return map as ReadonlyMap<number, string>
        if (n >= maxPages) return yield* tooLong(path, start + items.length)
        start += items.length
      }
    })

    return MessageWhizClient.of({ broadcastsOfDay, links })
  })
