/**
 * hlrlookup.com's batch API (`docs/original-api.md` "HLR", "The run") as a service: create a batch,
 * upload its numbers, start it, read its status, download its results CSV.
 *
 * - `apikey` and `secret` go as query parameters, as the provider asks; errors and logs name only
 *   the method and path (`HttpApiClient` builds its messages without the query), so they never show.
 * - HTTP, retries honouring `Retry-After`, timeouts: `platform/HttpApiClient.ts`. Every call here is
 *   safe to repeat except creating a batch (a second batch is a second charge), so `createBatch`
 *   makes one attempt; the run stores the batch id before it does anything else with the batch.
 * - Typed failures (`UpstreamError`, not retryable): a creation answer without a batch id, a status
 *   `FAILED` / `ERROR` (`HlrBatchFailed`), a results body that is not a CSV with a `live_status` header.
 *   A results body that breaks off while the caller reads it is a retryable `UpstreamError`.
 * - Without HLRLOOKUP_APIKEY / HLRLOOKUP_SECRET the layer still builds and every method fails with
 *   `NotConfigured` naming them. Building the layer makes no request.
 */
import { Context, Duration, Effect, Layer, Redacted, Schema, type Scope } from "effect"
import { AppConfig, requireIntegration, type HlrSettings } from "../platform/Config.ts"
import { NotConfigured, UpstreamError } from "../platform/Errors.ts"
import { decodeResponse, makeJsonClient, type HttpRequest } from "../platform/HttpApiClient.ts"

const SERVICE = "hlrlookup"
/** The provider's cache arguments accept at most this many days. */
const PROVIDER_MAX_CACHE_DAYS = 30

/** A batch as `GET /batches/<id>` describes it; `status` upper-cased. */
export interface HlrBatch {
  readonly id: string
  readonly status: string
  readonly numItems: number | null
  readonly numComplete: number | null
}

/** The batch ended `FAILED` or `ERROR` on the provider's side: nothing to retry. */
export class HlrBatchFailed extends Schema.TaggedError<HlrBatchFailed>()("HlrBatchFailed", {
  message: Schema.String,
  batchId: Schema.String,
  status: Schema.String
}) {}

export type HlrError = UpstreamError | NotConfigured | HlrBatchFailed

export const isBatchComplete = (status: string): boolean => status === "COMPLETE" || status === "COMPLETED"
export const isBatchFailed = (status: string): boolean => status === "FAILED" || status === "ERROR"

export interface HlrClientOptions {
  /** Per request. Default 60 seconds. */
  readonly timeout?: Duration.Input
  /** Per results download (a million rows are a few hundred MB). Default 30 minutes. */
  readonly downloadTimeout?: Duration.Input
  readonly maxRetries?: number
  readonly baseDelay?: Duration.Input
  readonly maxDelay?: Duration.Input
  readonly maxRetryAfter?: Duration.Input
}

const Created = Schema.Struct({ id: Schema.optional(Schema.Union([Schema.String, Schema.Number])) })
const Count = Schema.optional(Schema.NullOr(Schema.Union([Schema.Number, Schema.String])))
const BatchBody = Schema.Struct({
  id: Schema.optional(Schema.Union([Schema.String, Schema.Number])),
  status: Schema.optional(Schema.NullOr(Schema.String)),
  numItems: Count,
  numComplete: Count
})

/** `GET /batches/`: the account's batches, a page of them; only the total is read. */
const BatchList = Schema.Struct({ total: Count })

const toCount = (value: number | string | null | undefined): number | null => {
  if (value === null || value === undefined || value === "") return null
  const n = Number(value)
  return Number.isFinite(n) ? Math.trunc(n) : null
}

export class HlrClient extends Context.Service<
  HlrClient,
  {
    /** Creates a batch named `filename` with the cache arguments; its id. One attempt, never retried. */
    readonly createBatch: (filename: string) => Effect.Effect<string, HlrError>
    /** Uploads the numbers (one per line, no header) as the batch's source. */
    readonly uploadSource: (batchId: string, csv: string | Uint8Array) => Effect.Effect<void, HlrError>
    /** Starts the batch (`status: PROCESSING`). */
    readonly startBatch: (batchId: string) => Effect.Effect<void, HlrError>
    /** The batch's status and counts; `HlrBatchFailed` when it is `FAILED` or `ERROR`. */
    readonly status: (batchId: string) => Effect.Effect<HlrBatch, HlrError>
    /** How many batches the account has: a read that changes nothing (`optimizer doctor --online`). */
    readonly batchCount: Effect.Effect<number, HlrError>
    /**
     * Opens the results CSV (dotted headers, one row per number): its bytes as they arrive, to be
     * read in the scope, never whole in memory. Refused unless it is a CSV with a `live_status`
     * header. The request is retried (as every call here) until the body is handed over, never
     * after: a body that breaks off, or is not read to its end within `downloadTimeout`, fails the
     * read with a retryable `UpstreamError`, and the caller starts over with a new `results` (and a
     * fresh reader of its own). Closing the scope ends the download.
     */
    readonly results: (batchId: string) => Effect.Effect<AsyncIterable<Uint8Array>, HlrError, Scope.Scope>
  }
>()("@optimizer/core/hlr/HlrClient") {
  static readonly layerWith = (options: HlrClientOptions) =>
    Layer.effect(
      HlrClient,
      Effect.gen(function* () {
        const settings = yield* AppConfig
        return settings.hlr.configured
          ? yield* makeConfigured(settings.hlr.value, options)
          : notConfigured(requireIntegration("HLR", settings.hlr))
      })
    )
  static readonly layer = HlrClient.layerWith({})
}

const notConfigured = (failure: Effect.Effect<unknown, NotConfigured>): HlrClient["Service"] => {
  const fail = Effect.flatMap(failure, () => Effect.never)
  return HlrClient.of({
    createBatch: () => fail,
    uploadSource: () => fail,
    startBatch: () => fail,
    status: () => fail,
    batchCount: fail,
    results: () => fail
  })
}

const upstream = (message: string, status?: number) =>
  new UpstreamError({ service: SERVICE, retryable: false, message, ...(status === undefined ? {} : { status }) })

/** The batch path segment: ids are the provider's, but never let one change the path. */
const segment = (batchId: string) => encodeURIComponent(batchId)

/** What a failed body read says: the error and its cause (undici's "terminated" names the socket's). */
const readFailure = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  const inner = (cause as { cause?: unknown }).cause
  return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message
}

/**
 * The results body after its first line was checked: the bytes already read, then the rest as the
 * caller pulls it. A read that fails (the connection lost, the timeout) throws a retryable
 * `UpstreamError`; stopping early releases the connection.
 */
const handOn = (
  batchId: string,
  head: ReadonlyArray<Uint8Array>,
  chunks: AsyncIterator<Uint8Array>,
  timedOut: () => boolean,
  timeout: Duration.Duration
): AsyncIterable<Uint8Array> =>
  (async function* () {
    let bytes = 0
    let ended = false
    try {
      for (const chunk of head) {
        bytes += chunk.byteLength
        yield chunk
      }
      for (;;) {
        let next: IteratorResult<Uint8Array>
        try {
          next = await chunks.next()
        } catch (cause) {
          ended = true
          throw new UpstreamError({
            service: SERVICE,
            retryable: true,
            message: timedOut()
              ? `hlrlookup did not finish sending the results of batch ${batchId} within ${Duration.format(timeout)}`
              : `hlrlookup's results for batch ${batchId} broke off after ${bytes} bytes: ${readFailure(cause)}`
          })
        }
        if (next.done === true) {
          ended = true
          return
        }
        bytes += next.value.byteLength
        yield next.value
      }
    } finally {
      if (!ended) await chunks.return?.()
    }
  })()

const makeConfigured = (settings: HlrSettings, options: HlrClientOptions) =>
  Effect.gen(function* () {
    const client = yield* makeJsonClient({
      service: SERVICE,
      baseUrl: settings.apiUrl.replace(/\/+$/, ""),
      timeout: options.timeout ?? "60 seconds",
      ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
      ...(options.baseDelay === undefined ? {} : { baseDelay: options.baseDelay }),
      ...(options.maxDelay === undefined ? {} : { maxDelay: options.maxDelay }),
      ...(options.maxRetryAfter === undefined ? {} : { maxRetryAfter: options.maxRetryAfter })
    })
    const auth = { apikey: Redacted.value(settings.apiKey), secret: Redacted.value(settings.secret) }
    const request = (r: HttpRequest) => client.request({ ...r, query: { ...auth } })
    const cacheDays = Math.min(settings.cacheDays, PROVIDER_MAX_CACHE_DAYS)

    const createBatch = Effect.fn("HlrClient.createBatch")(function* (filename: string) {
      const response = yield* request({
        method: "POST",
        path: "/batches/",
        maxRetries: 0,
        body: {
          filename,
          type: "HLR_V2",
          batchArguments: { cache_days_private: cacheDays, cache_days_global: cacheDays, save_to_cache: "YES" }
        }
      })
      const created = yield* decodeResponse(SERVICE, "the new batch", Created)(response)
      const id = created.id === undefined ? "" : String(created.id).trim()
      if (id === "") return yield* upstream("hlrlookup created a batch but its answer has no batch id", response.status)
      return id
    })

    const uploadSource = Effect.fn("HlrClient.uploadSource")(function* (batchId: string, csv: string | Uint8Array) {
      yield* request({
        method: "POST",
        path: `/batches/${segment(batchId)}/source`,
        rawBody: { contentType: "text/csv", data: csv }
      })
    })

    const startBatch = Effect.fn("HlrClient.startBatch")(function* (batchId: string) {
      yield* request({ method: "PUT", path: `/batches/${segment(batchId)}/`, body: { status: "PROCESSING" } })
    })

    const status = Effect.fn("HlrClient.status")(function* (batchId: string) {
      const response = yield* request({ path: `/batches/${segment(batchId)}` })
      const body = yield* decodeResponse(SERVICE, "the batch status", BatchBody)(response)
      const batch: HlrBatch = {
        id: batchId,
        status: (body.status ?? "").trim().toUpperCase(),
        numItems: toCount(body.numItems),
        numComplete: toCount(body.numComplete)
      }
      if (isBatchFailed(batch.status)) {
        return yield* new HlrBatchFailed({
          batchId,
          status: batch.status,
          message: `the HLR batch ${batchId} ended ${batch.status} at hlrlookup`
        })
      }
      return batch
    })

    const batchCount = Effect.gen(function* () {
      const response = yield* request({ path: "/batches/" })
      const body = yield* decodeResponse(SERVICE, "the batch list", BatchList)(response)
      return toCount(body.total) ?? 0
    }).pipe(Effect.withSpan("HlrClient.batchCount"))

    const results = Effect.fn("HlrClient.results")(function* (batchId: string) {
      const timeout = Duration.fromInputUnsafe(options.downloadTimeout ?? "30 minutes")
      // Ends the body handed on: when the scope closes (read or not), or when the download outlasts its timeout.
      const controller = new AbortController()
      let deadline: ReturnType<typeof setTimeout> | undefined
      let timedOut = false
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          clearTimeout(deadline)
          controller.abort()
        })
      )
      const outcome = yield* client.download(
        {
          path: `/batches/${segment(batchId)}/results`,
          query: { ...auth },
          headers: { accept: "text/csv, */*" },
          timeout,
          signal: controller.signal
        },
        async (body, headers) => {
          // The first line decides whether this is a results CSV; the body is then handed on, unread.
          const type = headers.get("content-type") ?? ""
          const chunks = body[Symbol.asyncIterator]()
          const head: Array<Uint8Array> = []
          const decoder = new TextDecoder()
          let text = ""
          while (!text.includes("\n") && text.length < 65_536) {
            const next = await chunks.next()
            if (next.done === true) break
            head.push(next.value)
            text += decoder.decode(next.value, { stream: true })
          }
          const firstLine = (text.split(/\r?\n/, 1)[0] ?? "").replace(/^\uFEFF/, "")
          if (/json|html/i.test(type) || !/(^|,)"?live_status"?(,|$)/.test(firstLine)) {
            await chunks.return?.()
            return { ok: false as const, type }
          }
          clearTimeout(deadline)
          deadline = setTimeout(() => {
            timedOut = true
            controller.abort()
          }, Duration.toMillis(timeout))
          return { ok: true as const, body: handOn(batchId, head, chunks, () => timedOut, timeout) }
        }
      )
      if (!outcome.ok) {
        return yield* upstream(
          `hlrlookup's results for batch ${batchId} are not a results CSV (content type "${outcome.type}", no live_status header)`
        )
      }
      return outcome.body
    })

    return HlrClient.of({ createBatch, uploadSource, startBatch, status, batchCount, results })
  })
