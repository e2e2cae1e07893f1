/**
 * A fake hlrlookup.com batch API (`docs/original-api.md` "HLR", "The run") for tests, over real HTTP on loopback.
 *
 *   const hlr = await startFakeHlr({ pollsToComplete: 2 })
 *   hlr.state.outcomes.set("447700900001", { live_status: "DEAD" })
 *   hlr.state.inject({ status: 429, count: 2, retryAfter: "0" })
 *   // env: HLR_API_URL = hlr.url, HLRLOOKUP_APIKEY / HLRLOOKUP_SECRET = hlr.state.credentials
 *   hlr.state.batchesCreated; hlr.state.submitted (every number uploaded, in order)
 *
 * Behaviour: every call needs `apikey` and `secret` query parameters (else 401). `POST /batches/`
 * creates a batch `NEW`; `POST /batches/<id>/source` stores its numbers (one per line, text/csv);
 * `PUT /batches/<id>/` with `{"status":"PROCESSING"}` starts it; each `GET /batches/<id>` of a started
 * batch advances `numComplete` until, after `pollsToComplete` polls, it is `COMPLETE` (or `FAILED`
 * when `failBatches` is set); `GET /batches/<id>/results` answers the results CSV with the provider's
 * dotted headers, one row per number, after `downloadDelayMs` (each chunk of rows after
 * `resultsChunkDelayMs`; broken off half-way with `cutResults`). A number's result is
 * `outcomes.get(n)`, else `LIVE` on "Vodafone UK".
 */
import { Hono } from "hono"
import { listen, requestFront, sleep, type Injection, type RecordedRequest } from "./server.ts"

/** Every `live_status` the fake knows (the provider's v2 values, `docs/original-api.md` "HLR"). */
export const LIVE_STATUSES = [
  "LIVE",
  "DEAD",
  "ABSENT_SUBSCRIBER",
  "NO_TELESERVICE_PROVISIONED",
  "INCONCLUSIVE",
  "NOT_AVAILABLE_NETWORK_ONLY",
  "NOT_APPLICABLE",
  "NO_COVERAGE"
] as const

/** The results CSV's columns, in the provider's order (`uuid` is one the product does not store). */
export const RESULT_HEADERS = [
  "uuid",
  "error",
  "request_parameters.telephone_number",
  "request_parameters.cache_days_private",
  "request_parameters.cache_days_global",
  "request_parameters.save_to_cache",
  "request_parameters.output_format",
  "credits_spent",
  "detected_telephone_number",
  "formatted_telephone_number",
  "telephone_number_type",
  "live_status",
  "original_network",
  "original_network_details.name",
  "original_network_details.mccmnc",
  "original_network_details.country_name",
  "original_network_details.country_iso3",
  "original_network_details.area",
  "original_network_details.country_prefix",
  "current_network",
  "current_network_details.name",
  "current_network_details.mccmnc",
  "current_network_details.country_name",
  "current_network_details.country_iso3",
  "current_network_details.country_prefix",
  "is_ported",
  "timestamp"
] as const

export interface Outcome {
  readonly live_status: string
  /** `current_network_details.name`; default "Vodafone UK". */
  readonly network?: string
  /** Leave `formatted_telephone_number` blank (the product then reads `detected_telephone_number`). */
  readonly unformatted?: boolean
}

export interface FakeBatch {
  readonly id: string
  readonly filename: string
  readonly batchArguments: unknown
  numbers: Array<string>
  status: "NEW" | "PROCESSING" | "COMPLETE" | "FAILED"
  polls: number
}

export interface FakeHlrOptions {
  readonly apiKey?: string
  readonly secret?: string
  /** Polls of a started batch before it completes. Default 2. */
  readonly pollsToComplete?: number
}

export interface FakeHlrState {
  readonly credentials: { readonly apiKey: string; readonly secret: string }
  pollsToComplete: number
  /** New batches end `FAILED` instead of `COMPLETE`. */
  failBatches: boolean
  /** The results download waits this long before answering. */
  downloadDelayMs: number
  /** Each chunk of results rows (the header line goes at once) is sent after this long: a slow body. */
  resultsChunkDelayMs: number
  /** Answer results as JSON (a provider error page) instead of CSV. */
  resultsNotCsv: boolean
  /**
   * The next `times` results downloads break off once `afterRows` rows were sent: the connection
   * dropped mid-body as when the provider's server fails (status 200 and the start already sent, the
   * chunked body never ended).
   */
  cutResults: { readonly afterRows: number; times: number } | undefined
  /** Creation answers without an id. */
  createWithoutId: boolean
  readonly outcomes: Map<string, Outcome>
  /** Consulted for numbers not in `outcomes` (a benchmark's million numbers); default LIVE. */
  outcomeFor: ((n: string) => Outcome) | undefined
  /** The results file as the provider wrote it for a batch's numbers, instead of the rows made from outcomes. */
  resultsText: ((numbers: ReadonlyArray<string>) => string) | undefined
  readonly batches: Map<string, FakeBatch>
  batchesCreated: number
  /** Every number uploaded, in order, over all batches. */
  readonly submitted: Array<string>
  readonly requests: Array<RecordedRequest>
  /** When (`Date.now()`) the last results download was asked for (a benchmark times from it). */
  resultsRequestedAt: number | undefined
  /** When the last results download was sent to its end. */
  resultsSentAt: number | undefined
  readonly inject: (injection: Injection) => void
  readonly count: (method: string, pathPrefix: string) => number
}

export interface FakeHlr {
  readonly url: string
  readonly state: FakeHlrState
  readonly close: () => Promise<void>
}

const csvCell = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value)

/** One results row for a number, in `RESULT_HEADERS` order. */
export const resultRow = (number: string, outcome: Outcome): ReadonlyArray<string> => {
  const live = outcome.live_status === "LIVE"
  const network = outcome.network ?? "Vodafone UK"
  const values: Record<(typeof RESULT_HEADERS)[number], string> = {
    uuid: `00000000-0000-4000-8000-${number.padStart(12, "0").slice(-12)}`,
    error: "NONE",
    "request_parameters.telephone_number": number,
    "request_parameters.cache_days_private": "30",
    "request_parameters.cache_days_global": "30",
    "request_parameters.save_to_cache": "YES",
    "request_parameters.output_format": "",
    credits_spent: outcome.live_status === "NO_COVERAGE" ? "0" : "1",
    detected_telephone_number: number,
    formatted_telephone_number: outcome.unformatted === true ? "" : number,
    telephone_number_type: "MOBILE",
    live_status: outcome.live_status,
    original_network: live ? "AVAILABLE" : "NOT_AVAILABLE",
    "original_network_details.name": "EE Limited (Orange)",
    "original_network_details.mccmnc": "23433",
    "original_network_details.country_name": "United Kingdom",
    "original_network_details.country_iso3": "GBR",
    "original_network_details.area": "United Kingdom",
    "original_network_details.country_prefix": "44",
    current_network: live ? "AVAILABLE" : "NOT_AVAILABLE",
    "current_network_details.name": network,
    "current_network_details.mccmnc": "23415",
    "current_network_details.country_name": "United Kingdom",
    "current_network_details.country_iso3": "GBR",
    "current_network_details.country_prefix": "44",
    is_ported: "NO",
    timestamp: "2025-05-01T10:00:00Z"
  }
  return RESULT_HEADERS.map((h) => values[h])
}

/** One results line (no line end): the CSV of `resultRow`. */
export const resultLine = (number: string, outcome: Outcome): string =>
  resultRow(number, outcome).map(csvCell).join(",")

/**
 * `resultLine` from a template per outcome and length of number: a line is its parts joined by the
 * number. The benchmark's million lines would otherwise cost the fake seconds of CPU, on the cores
 * the product's work is measured on. Numbers over 12 characters (the uuid keeps the last 12) are made in full.
 */
const templates = new Map<string, ReadonlyArray<string>>()
const PLACEHOLDER = "#"
const fastResultLine = (number: string, outcome: Outcome): string => {
  if (number.length > 12 || number.includes(PLACEHOLDER) || outcome.network?.includes(PLACEHOLDER) === true) {
    return resultLine(number, outcome)
  }
  const key = `${number.length}|${outcome.live_status}|${outcome.network ?? ""}|${outcome.unformatted === true}`
  let parts = templates.get(key)
  if (parts === undefined) {
    parts = resultLine(PLACEHOLDER.repeat(number.length), outcome).split(PLACEHOLDER.repeat(number.length))
    if (parts.some((part) => part.includes(PLACEHOLDER))) return resultLine(number, outcome)
    templates.set(key, parts)
  }
  return parts.join(number)
}

export const resultsCsv = (numbers: ReadonlyArray<string>, outcomeOf: (n: string) => Outcome): string =>
  [RESULT_HEADERS.join(","), ...numbers.map((n) => resultLine(n, outcomeOf(n)))].join("\n") + "\n"

export const startFakeHlr = async (options: FakeHlrOptions = {}): Promise<FakeHlr> => {
  const front = requestFront({
    errorBody: () => ({ error: "TOO_MANY_REQUESTS", message: "Please try again later" }),
    gate: (c, url) =>
      url.searchParams.get("apikey") === state.credentials.apiKey &&
      url.searchParams.get("secret") === state.credentials.secret
        ? undefined
        : c.json({ error: "UNAUTHORIZED", message: "Invalid api_key or api_secret" }, 401)
  })
  const state: FakeHlrState = {
    credentials: { apiKey: options.apiKey ?? "hlr-key", secret: options.secret ?? "hlr-secret" },
    pollsToComplete: options.pollsToComplete ?? 2,
    failBatches: false,
    downloadDelayMs: 0,
    resultsChunkDelayMs: 0,
    resultsNotCsv: false,
    cutResults: undefined,
    createWithoutId: false,
    outcomes: new Map(),
    outcomeFor: undefined,
    resultsText: undefined,
    batches: new Map(),
    batchesCreated: 0,
    submitted: [],
    requests: front.requests,
    resultsRequestedAt: undefined,
    resultsSentAt: undefined,
    inject: front.inject,
    count: (method, prefix) => state.requests.filter((r) => r.method === method && r.path.startsWith(prefix)).length
  }
  const outcomeOf = (n: string): Outcome => state.outcomes.get(n) ?? state.outcomeFor?.(n) ?? { live_status: "LIVE" }

  const app = new Hono()
  app.use("*", front.middleware)

  const batchOr404 = (id: string) => state.batches.get(id)

  app.get("/batches/", (c) => {
    const batches = [...state.batches.values()]
    const listed = batches.slice(0, 10).map((b) => ({
      id: b.id,
      filename: b.filename,
      type: "HLR_V2",
      batchArguments: b.batchArguments,
      numItems: b.numbers.length,
      numComplete: b.status === "COMPLETE" ? b.numbers.length : 0,
      status: b.status
    }))
    return c.json({ total: batches.length, offset: 0, limit: 10, batches: listed })
  })

  app.post("/batches/", async (c) => {
    const body = (await c.req.json()) as { filename?: string; type?: string; batchArguments?: unknown }
    if (typeof body.filename !== "string" || body.type !== "HLR_V2") {
      return c.json({ error: "BAD_REQUEST", message: "filename and type HLR_V2 required" }, 400)
    }
    state.batchesCreated++
    const id = String(1000 + state.batchesCreated)
    state.batches.set(id, {
      id,
      filename: body.filename,
      batchArguments: body.batchArguments,
      numbers: [],
      status: "NEW",
      polls: 0
    })
    return c.json(state.createWithoutId ? { filename: body.filename } : { id, filename: body.filename, status: "NEW" })
  })

  app.post("/batches/:id/source", async (c) => {
    const batch = batchOr404(c.req.param("id"))
    if (batch === undefined) return c.body(null, 404)
    const numbers = (await c.req.text())
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== "")
    batch.numbers = numbers
    // Not push(...numbers): a million arguments overflow the stack.
    for (const n of numbers) state.submitted.push(n)
    return c.json({ id: batch.id, numItems: numbers.length })
  })

  app.put("/batches/:id/", async (c) => {
    const batch = batchOr404(c.req.param("id"))
    if (batch === undefined) return c.body(null, 404)
    const body = (await c.req.json()) as { status?: string }
    if (body.status !== "PROCESSING") return c.json({ error: "BAD_REQUEST", message: "bad status" }, 400)
    if (batch.status === "NEW") batch.status = "PROCESSING"
    return c.json({ id: batch.id, status: batch.status })
  })

  app.get("/batches/:id", (c) => {
    const batch = batchOr404(c.req.param("id"))
    if (batch === undefined) return c.body(null, 404)
    if (batch.status === "PROCESSING") {
      batch.polls++
      if (batch.polls >= state.pollsToComplete) batch.status = state.failBatches ? "FAILED" : "COMPLETE"
    }
    const numItems = batch.numbers.length
    const done =
      batch.status === "COMPLETE"
        ? numItems
        : batch.status === "PROCESSING"
          ? Math.floor((numItems * batch.polls) / state.pollsToComplete)
          : 0
    return c.json({
      id: batch.id,
      filename: batch.filename,
      type: "HLR_V2",
      numItems,
      numComplete: done,
      // the provider's own case; the client upper-cases
      status: batch.status === "COMPLETE" ? "Complete" : batch.status
    })
  })

  app.get("/batches/:id/results", async (c) => {
    const batch = batchOr404(c.req.param("id"))
    if (batch === undefined) return c.body(null, 404)
    state.resultsRequestedAt = Date.now()
    if (state.downloadDelayMs > 0) await sleep(state.downloadDelayMs)
    if (state.resultsNotCsv) return c.json({ error: "INTERNAL_ERROR", message: "try later" })
    if (batch.status !== "COMPLETE") return c.json({ error: "BAD_REQUEST", message: "batch not complete" }, 400)
    if (state.resultsText !== undefined) {
      return c.body(state.resultsText(batch.numbers), 200, { "content-type": "text/csv; charset=utf-8" })
    }
    // Streamed in chunks, as a large provider download arrives (and so a million rows fit in memory).
    const numbers = batch.numbers
    let next = 0
    const encoder = new TextEncoder()
    const cut = state.cutResults !== undefined && state.cutResults.times > 0 ? state.cutResults.afterRows : undefined
    if (cut !== undefined) state.cutResults!.times--
    const delay = state.resultsChunkDelayMs
    const more = (controller: ReadableStreamDefaultController<Uint8Array>): void | Promise<void> => {
      // An errored body makes the server destroy the connection, the end of the body never sent
      // (after a moment: what was sent reaches the client first).
      if (cut !== undefined && next >= cut) {
        return sleep(50).then(() => controller.error(new Error("the fake cut the results download")))
      }
      if (next >= numbers.length) {
        state.resultsSentAt = Date.now()
        return controller.close()
      }
      let chunk = ""
      for (const end = Math.min(numbers.length, next + 2000, cut ?? Infinity); next < end; next++) {
        chunk += fastResultLine(numbers[next]!, outcomeOf(numbers[next]!)) + "\n"
      }
      controller.enqueue(encoder.encode(chunk))
    }
    const body = new ReadableStream<Uint8Array>({
      pull: (controller) => {
        if (next === 0) controller.enqueue(encoder.encode(RESULT_HEADERS.join(",") + "\n"))
        return delay > 0 ? sleep(delay).then(() => more(controller)) : more(controller)
      }
    })
    return c.body(body, 200, { "content-type": "text/csv; charset=utf-8" })
  })

  const running = await listen(app)
  return { url: running.url, state, close: running.close }
}
