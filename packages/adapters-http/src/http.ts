/**
 * The small kit every route file uses: declare a route once (method, path, role, query/body
 * schemas, summary) and get request decoding, the role check, error mapping and its OpenAPI entry
 * from that same declaration — so the docs cannot drift from what the server validates.
 *
 * A handler returns an Effect of either a plain value (sent as JSON with status 200) or a web
 * `Response` (files, SSE, custom statuses).
 */
import {
  Cause,
  Effect,
  Exit,
  Fiber,
  Option,
  Schema,
  SchemaAST,
  SchemaGetter,
  SchemaIssue,
  type ManagedRuntime
} from "effect"
import type { Context as HonoContext, Hono } from "hono"
import type { Principal, Role } from "@optimizer/core"
import { defaultHttpLimits, parseTraceparent, roleAllows } from "@optimizer/core"
import { DEADLINE_EXCEEDED, DEADLINE_WRITE_DETAIL, detailOf, httpErrorFor, INTERNAL, type ErrorBody } from "./errors.ts"
import { logLine } from "./log.ts"

export type Method = "get" | "post" | "patch" | "put" | "delete"

export interface AppEnv {
  Variables: {
    requestId: string
    principal: Principal | undefined
    /** The request's trace id, when its handler ran in an exported server span (for the access log). */
    traceId: string | undefined
  }
}

export interface RouteSpec<Q, B> {
  readonly method: Method
  /** Hono path syntax: `/:file_id/process`. */
  readonly path: string
  /** Minimum role, or "public" (no key needed). */
  readonly role: Role | "public"
  readonly summary: string
  readonly tag: string
  /**
   * The OpenAPI `operationId`, camelCase and unique; absent, derived from the method and the path
   * (`operationIdOf` in `openapi.ts`: `get /jobs/:job_id` → `getJobsByJobId`).
   */
  readonly operationId?: string
  /** Markdown. */
  readonly description?: string
  readonly query?: Schema.Codec<Q, unknown>
  readonly body?: Schema.Codec<B, unknown>
  /** Multipart upload with a `file` field (documented; the handler reads it). */
  readonly upload?: boolean
  /** What a success returns, for the docs. */
  readonly returns?: string
  /**
   * The schema of a success's JSON body (its JSON form: timestamps as strings), for the docs and
   * generated clients. Not checked in production; the tests check every body against it
   * (`validateResponses`).
   */
  readonly response?: Schema.Top
  /** A `202 Accepted` the route may answer instead of 200 (work to follow), for the docs and clients. */
  readonly accepted?: { readonly description: string; readonly schema: Schema.Top }
  /** A success's content type when it is not JSON: a CSV download, a server-sent event stream. */
  readonly produces?: "text/csv" | "text/event-stream"
  /**
   * Time the handler may take beyond the request deadline, for a route that waits on purpose (a sync
   * waiting `wait_seconds` for its job). Upload routes have no deadline: their body may take long.
   */
  readonly waitsMs?: (query: Q) => number
}

/** The route kit's limits (the process's `HttpLimits`). */
export interface RouteLimits {
  readonly jsonBodyMaxBytes: number
  readonly requestDeadlineMs: number
}

/** Longest query-string value or path parameter accepted (ids, names, filters: far shorter). */
const MAX_PARAMETER_CHARS = 2_000
/** C0 controls except tab, CR and LF, and DEL: never in a parameter a person or a program means. */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/

/** Why a query-string value or path parameter is refused at the boundary, or undefined. */
const badParameter = (where: string, name: string, value: string): string | undefined =>
  value.length > MAX_PARAMETER_CHARS
    ? `${where}.${name}: at most ${MAX_PARAMETER_CHARS} characters`
    : CONTROL_CHARACTER.test(value)
      ? `${where}.${name}: control characters (such as NUL) are not allowed`
      : undefined

/**
 * A request body as text, at most `limit` bytes: a declared length over it is refused without
 * reading; a body without one (chunked) is read until it passes the limit, then refused.
 */
const boundedText = async (c: HonoContext<AppEnv>, limit: number): Promise<string | "too-large"> => {
  const declared = c.req.header("content-length")
  if (declared !== undefined) {
    if (Number(declared) > limit) return "too-large"
    return c.req.text()
  }
  const body = c.req.raw.body
  if (body === null) return ""
  const reader = body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel().catch(() => undefined)
      return "too-large"
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString("utf8")
}

export interface HandlerInput<Q, B> {
  readonly c: HonoContext<AppEnv>
  readonly query: Q
  readonly body: B
  readonly params: Record<string, string>
  readonly principal: Principal | undefined
  readonly requestId: string
}

export interface OpenApiOperation {
  readonly method: Method
  readonly path: string
  readonly spec: RouteSpec<unknown, unknown>
}

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

/** "query.include_blacklist: Expected boolean" — names the field, as a 400 should. */
const describeSchemaError = (where: string, error: Schema.SchemaError): string => {
  const issues = formatIssue(error.issue).issues
  if (issues.length === 0) return `invalid ${where}`
  return issues
    .map((i) => {
      const path = (i.path ?? []).map((p) => String(typeof p === "object" && p !== null ? p.key : p)).join(".")
      return `${where}${path ? "." + path : ""}: ${i.message}`
    })
    .join("; ")
}

export const errorResponse = (
  c: HonoContext<AppEnv>,
  status: number,
  code: string,
  detail: string,
  retryAfterSeconds?: number
): Response => {
  const body: ErrorBody = { detail, code, request_id: c.get("requestId") }
  if (retryAfterSeconds !== undefined) c.header("Retry-After", String(retryAfterSeconds))
  return c.json(body, status as 400)
}

/**
 * What a handler receives. `params` is read from the path only when a handler asks (most routes
 * have none), through a getter on the class: an object literal with a getter of its own would get
 * a hidden class of its own on every request, kept in V8's old generation — measured under load,
 * 8–9 full (mark-compact) collections in 5 s against none, and a quarter of the throughput.
 */
class Input<Q, B> implements HandlerInput<Q, B> {
  readonly c: HonoContext<AppEnv>
  readonly query: Q
  readonly body: B
  readonly principal: Principal | undefined
  readonly requestId: string

  constructor(c: HonoContext<AppEnv>, query: Q, body: B, principal: Principal | undefined, requestId: string) {
    this.c = c
    this.query = query
    this.body = body
    this.principal = principal
    this.requestId = requestId
  }

  get params(): Record<string, string> {
    return this.c.req.param() as Record<string, string>
  }
}

/**
 * `effect`, failing with `onTimeout()` once `ms` have passed. Unlike `Effect.timeout` alone, the
 * answer does not wait for the interrupted work to stop: an interrupted query on a connection that
 * stopped answering takes seconds to give up (the driver waits, then sends a cancel and waits for
 * it), and `Effect.timeout` waits for that. Here the work runs on a fiber of its own, interrupted in
 * the background when the time is up or the caller is interrupted (the client went away).
 */
export const withinDeadline = <A, E, R, T>(
  effect: Effect.Effect<A, E, R>,
  ms: number,
  onTimeout: () => T
): Effect.Effect<A, E | T, R> =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkDetach(effect)
    return yield* Fiber.join(fiber).pipe(
      Effect.timeoutOrElse({ duration: ms, orElse: () => Effect.fail(onTimeout()) }),
      Effect.onError(() => Effect.asVoid(Effect.forkDetach(Fiber.interrupt(fiber))))
    )
  })

/**
 * The handler in a server span named after the route (`GET /jobs/:id`), child of the caller's span
 * when the request has a valid `traceparent`; it carries the request id, and a failure's status and
 * code (the error body's `request_id` is the span's `request_id`).
 */
const serverSpan = <A, E, R>(
  c: HonoContext<AppEnv>,
  spec: RouteSpec<any, any>,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const parent = parseTraceparent(c.req.header("traceparent"))
  const requestId = c.get("requestId")
  return Effect.flatMap(Effect.option(Effect.currentSpan), (span) => {
    if (Option.isSome(span)) c.set("traceId", span.value.traceId)
    return effect
  }).pipe(
    Effect.tapCause((cause) => {
      const error = Cause.findErrorOption(cause)
      const mapped = Option.isSome(error)
        ? httpErrorFor(error.value as { _tag?: unknown })
        : Cause.hasInterruptsOnly(cause)
          ? undefined
          : INTERNAL
      return mapped === undefined
        ? Effect.void
        : Effect.annotateCurrentSpan({ "http.response.status_code": mapped.status, "error.code": mapped.code })
    }),
    Effect.withSpan(`${spec.method.toUpperCase()} ${spec.path}`, {
      kind: "server",
      ...(parent !== undefined ? { parent } : {}),
      attributes: {
        "http.request.method": spec.method.toUpperCase(),
        "http.route": spec.path,
        request_id: requestId
      }
    })
  )
}

/**
 * Checks a JSON success body against its route's declared schema: the reason it does not match, or
 * undefined. Only built when the app is made with `validateResponses` (the tests).
 */
type ResponseCheck = (status: number, body: unknown) => string | undefined

/**
 * The route's response check: the body, as the client will read it (through JSON, so a `Date` is
 * its ISO string), decoded with its declared schema — 200 with `response`, 202 with `accepted` —
 * refusing keys the schema does not name, so a schema can be neither wrong nor incomplete.
 */
const responseCheckOf = (spec: RouteSpec<any, any>): ResponseCheck => {
  const route = `${spec.method.toUpperCase()} ${spec.path}`
  const decoders = new Map<
    number,
    (body: unknown, options: SchemaAST.ParseOptions) => Exit.Exit<unknown, Schema.SchemaError>
  >()
  if (spec.response !== undefined) decoders.set(200, Schema.decodeUnknownExit(spec.response as Schema.Codec<unknown>))
  if (spec.accepted !== undefined) {
    decoders.set(202, Schema.decodeUnknownExit(spec.accepted.schema as Schema.Codec<unknown>))
  }
  return (status, body) => {
    const decode = decoders.get(status)
    if (decode === undefined) return `${route} answered a JSON ${status} but declares no schema for it`
    const exit = decode(body, { errors: "all", onExcessProperty: "error" })
    if (Exit.isSuccess(exit)) return undefined
    const error = Cause.findErrorOption(exit.cause)
    return `${route}: the ${status} body does not match its schema: ${
      Option.isSome(error) ? describeSchemaError("response", error.value) : "invalid"
    }`
  }
}

/** Registers routes on a Hono app, running handlers on one ManagedRuntime, and collects their OpenAPI. */
export class Routes<R> {
  readonly operations: Array<OpenApiOperation> = []
  readonly app: Hono<AppEnv>
  readonly runtime: ManagedRuntime.ManagedRuntime<R, unknown>
  readonly limits: RouteLimits
  /** Run each handler in a server span (when spans are exported). */
  readonly tracing: boolean
  /** Check each JSON success body against its route's declared schema (tests only: `AppOptions.validateResponses`). */
  readonly validateResponses: boolean

  constructor(
    app: Hono<AppEnv>,
    runtime: ManagedRuntime.ManagedRuntime<R, unknown>,
    limits: RouteLimits = defaultHttpLimits(),
    tracing = false,
    validateResponses = false
  ) {
    this.app = app
    this.runtime = runtime
    this.limits = limits
    this.tracing = tracing
    this.validateResponses = validateResponses
  }

  add<Q = undefined, B = undefined>(
    spec: RouteSpec<Q, B>,
    handler: (input: HandlerInput<Q, B>) => Effect.Effect<unknown, unknown, R>
  ): this {
    this.operations.push({ method: spec.method, path: spec.path, spec: spec as RouteSpec<unknown, unknown> })
    const decodeQuery = spec.query ? Schema.decodeUnknownExit(spec.query) : undefined
    const decodeBody = spec.body ? Schema.decodeUnknownExit(spec.body) : undefined
    const hasParams = spec.path.includes(":")
    const check = this.validateResponses && spec.produces === undefined ? responseCheckOf(spec) : undefined
    this.app.on(spec.method.toUpperCase(), spec.path, async (c) => {
      const principal = c.get("principal")
      if (spec.role !== "public") {
        // The auth middleware has already answered 401 for a missing/invalid key on non-public paths.
        if (principal === undefined) return errorResponse(c, 401, "UNAUTHORIZED", "Not authenticated: send an API key")
        if (!roleAllows(principal.role, spec.role)) {
          return errorResponse(
            c,
            403,
            "FORBIDDEN",
            `This endpoint needs the ${spec.role} role; the key has ${principal.role}`
          )
        }
      }
      if (hasParams) {
        for (const [name, value] of Object.entries(c.req.param() as Record<string, string>)) {
          const bad = badParameter("path", name, value)
          if (bad !== undefined) return errorResponse(c, 400, "VALIDATION_ERROR", bad)
        }
      }
      let query = undefined as Q
      if (decodeQuery) {
        const raw = c.req.query()
        for (const name in raw) {
          const bad = badParameter("query", name, raw[name]!)
          if (bad !== undefined) return errorResponse(c, 400, "VALIDATION_ERROR", bad)
        }
        const exit = decodeQuery(raw)
        if (Exit.isFailure(exit)) return this.validationFailure(c, "query", exit.cause)
        query = exit.value
      }
      let body = undefined as B
      if (decodeBody) {
        const text = await boundedText(c, this.limits.jsonBodyMaxBytes)
        if (text === "too-large") {
          return errorResponse(
            c,
            413,
            "PAYLOAD_TOO_LARGE",
            `body: at most ${this.limits.jsonBodyMaxBytes} bytes (JSON_BODY_MAX_BYTES)`
          )
        }
        // A NUL, raw or escaped, is never meant in a JSON field here, and PostgreSQL refuses it in text.
        if (text.includes("\u0000") || text.includes("\\u0000")) {
          return errorResponse(c, 400, "VALIDATION_ERROR", "body: the NUL character (\\u0000) is not allowed")
        }
        let raw: unknown
        try {
          raw = JSON.parse(text)
        } catch {
          return errorResponse(c, 400, "VALIDATION_ERROR", "body: expected a JSON document")
        }
        const exit = decodeBody(raw)
        if (Exit.isFailure(exit)) return this.validationFailure(c, "body", exit.cause)
        body = exit.value
      }
      const handled = handler(new Input(c, query, body, principal, c.get("requestId")))
      const effect = this.tracing ? serverSpan(c, spec, handled) : handled
      const response =
        spec.upload === true
          ? this.run(c, effect)
          : this.run(c, effect, this.limits.requestDeadlineMs + (spec.waitsMs?.(query) ?? 0))
      // Production: the response as it is, not even awaited here.
      return check === undefined ? response : checkedResponse(c, await response, check)
    })
    return this
  }

  private validationFailure(c: HonoContext<AppEnv>, where: string, cause: Cause.Cause<Schema.SchemaError>): Response {
    const error = Cause.findErrorOption(cause)
    const detail = Option.isSome(error) ? describeSchemaError(where, error.value) : `invalid ${where}`
    return errorResponse(c, 400, "VALIDATION_ERROR", detail)
  }

  /**
   * The handler's outcome, or "deadline" once `deadlineMs` have passed — answered at once, without
   * waiting for the interrupted work to stop (an interrupted query on a connection that stopped
   * answering takes seconds to give up). The work is interrupted in the background, as it is when
   * the client goes away. A timer and an abort controller per request, not fibers: this is the path
   * of every request (`/find_records` serves thousands a second).
   */
  private async runWithin(
    c: HonoContext<AppEnv>,
    effect: Effect.Effect<unknown, unknown, R>,
    deadlineMs: number
  ): Promise<Exit.Exit<unknown, unknown> | "deadline"> {
    const controller = new AbortController()
    const client = c.req.raw.signal
    const onClientGone = () => controller.abort()
    client.addEventListener("abort", onClientGone, { once: true })
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<"deadline">((resolve) => {
      timer = setTimeout(resolve, deadlineMs, "deadline")
    })
    try {
      const outcome = await Promise.race([this.runtime.runPromiseExit(effect, { signal: controller.signal }), deadline])
      if (outcome === "deadline") controller.abort()
      return outcome
    } finally {
      clearTimeout(timer)
      client.removeEventListener("abort", onClientGone)
    }
  }

  /** Runs a handler effect and turns its outcome into a response. */
  async run(
    c: HonoContext<AppEnv>,
    effect: Effect.Effect<unknown, unknown, R>,
    deadlineMs?: number
  ): Promise<Response> {
    const exit =
      deadlineMs === undefined
        ? await this.runtime.runPromiseExit(effect, { signal: c.req.raw.signal })
        : await this.runWithin(c, effect, deadlineMs)
    if (exit === "deadline") {
      logLine("error", "request failed", { request_id: c.get("requestId"), error: "DeadlineExceeded" })
      return errorResponse(
        c,
        DEADLINE_EXCEEDED.status,
        DEADLINE_EXCEEDED.code,
        c.req.method === "GET" || c.req.method === "HEAD"
          ? detailOf(DEADLINE_EXCEEDED, undefined, "DeadlineExceeded")
          : DEADLINE_WRITE_DETAIL,
        DEADLINE_EXCEEDED.retryAfterSeconds
      )
    }
    if (Exit.isSuccess(exit)) {
      const value = exit.value
      if (value instanceof Response) return value
      return c.json(value === undefined ? null : (value as object))
    }
    const error = Cause.findErrorOption(exit.cause)
    if (Option.isSome(error)) {
      const e = error.value as { _tag?: string; message?: string; unavailable?: boolean }
      const tag = typeof e._tag === "string" ? e._tag : "Unknown"
      const mapped = httpErrorFor(e)
      if (!mapped.expose) {
        logLine("error", "request failed", {
          request_id: c.get("requestId"),
          error: tag,
          cause: Cause.pretty(exit.cause)
        })
      }
      return errorResponse(c, mapped.status, mapped.code, detailOf(mapped, e.message, tag), mapped.retryAfterSeconds)
    }
    if (Cause.hasInterruptsOnly(exit.cause)) {
      return errorResponse(c, 499 as 400, "CLIENT_CLOSED", "the request was cancelled")
    }
    logLine("error", "request failed with a defect", {
      request_id: c.get("requestId"),
      cause: Cause.pretty(exit.cause)
    })
    return errorResponse(c, 500, INTERNAL.code, "Internal Server Error")
  }
}

/**
 * The response, or a 500 naming the route and the schema error when it is a JSON 200/202 whose body
 * does not match the route's declared schema (tests only: `validateResponses`).
 */
const checkedResponse = async (c: HonoContext<AppEnv>, response: Response, check: ResponseCheck): Promise<Response> => {
  if (response.status !== 200 && response.status !== 202) return response
  if (!(response.headers.get("content-type") ?? "").includes("application/json")) return response
  const problem = check(response.status, await response.clone().json())
  if (problem === undefined) return response
  logLine("error", "response does not match its schema", { request_id: c.get("requestId"), error: problem })
  return errorResponse(c, 500, "RESPONSE_SCHEMA_MISMATCH", problem)
}

/** FastAPI-style query booleans: true/false, 1/0, yes/no, on/off (case-insensitive). */
export const QueryBoolean = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^(true|false|1|0|yes|no|on|off)$/i, { message: "Expected a boolean (true or false)" })
  ),
  Schema.decodeTo(Schema.Boolean, {
    decode: SchemaGetter.transform((s: string) => /^(true|1|yes|on)$/i.test(s)),
    encode: SchemaGetter.transform((b: boolean) => String(b))
  })
)
