/**
 * Starts a fake external API (a Hono app) on a free loopback port, for tests that talk to it over
 * real HTTP. `close` also drops keep-alive connections, so a test file ends promptly.
 */
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { serve } from "@hono/node-server"
import type { Context, Hono, MiddlewareHandler } from "hono"

export interface RunningFake {
  readonly url: string
  readonly close: () => Promise<void>
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const listen = (app: Hono<any>): Promise<RunningFake> =>
  new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      server.off("error", reject)
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            const s = server as Server
            s.close(() => done())
            s.closeAllConnections()
          })
      })
    })
    server.once("error", reject)
  })

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A failure (or delay) the next `count` matching requests get. */
export interface Injection {
  /** Only requests to this path (all but authentication when absent). */
  readonly path?: string
  /** Answer with this status; absent = answer normally after `delayMs`. */
  readonly status?: number
  readonly count: number
  /** `Retry-After` header value ("0", "1", or an HTTP date). */
  readonly retryAfter?: string
  /** JSON body of the injected answer. */
  readonly body?: unknown
  /** Wait this long before answering. */
  readonly delayMs?: number
}

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: Headers
  status: number
}

/**
 * What every fake does before its routes: records each request (`requests`, the answer's status
 * filled in when known), counts how many were in flight at once (`maxInFlight`), answers the
 * first matching injected failure, then lets `gate` refuse the request (bad credentials) or delay
 * it, and only then runs the routes.
 */
export interface RequestFront {
  readonly requests: Array<RecordedRequest>
  /** Most requests in flight at once (a test may reset it). */
  maxInFlight: number
  readonly inject: (injection: Injection) => void
  readonly middleware: MiddlewareHandler
}

export interface RequestFrontOptions {
  /** The JSON body of an injected failure that brings none of its own. */
  readonly errorBody: (status: number) => unknown
  /** Which requests an injection without a `path` applies to (all when absent). */
  readonly injectsInto?: (path: string) => boolean
  /** A response refuses the request (recorded with its status); `undefined` lets it through. */
  readonly gate?: (c: Context, url: URL) => Promise<Response | undefined> | Response | undefined
}

export const requestFront = (options: RequestFrontOptions): RequestFront => {
  const requests: Array<RecordedRequest> = []
  const injections: Array<Injection & { remaining: number }> = []
  let inFlight = 0

  const injected = async (c: Context, url: URL, record: RecordedRequest): Promise<Response | undefined> => {
    const injection = injections.find(
      (i) =>
        i.remaining > 0 &&
        (i.path === undefined ? (options.injectsInto?.(url.pathname) ?? true) : i.path === url.pathname)
    )
    if (injection === undefined) return undefined
    injection.remaining--
    if (injection.delayMs !== undefined) await sleep(injection.delayMs)
    if (injection.status === undefined) return undefined
    record.status = injection.status
    const headers: Record<string, string> = {}
    if (injection.retryAfter !== undefined) headers["retry-after"] = injection.retryAfter
    return c.json(injection.body ?? options.errorBody(injection.status), injection.status as 429, headers)
  }

  const middleware: MiddlewareHandler = async (c, next) => {
    const url = new URL(c.req.url)
    const record: RecordedRequest = {
      method: c.req.method,
      path: url.pathname,
      query: url.searchParams,
      headers: c.req.raw.headers,
      status: 0
    }
    requests.push(record)
    inFlight++
    front.maxInFlight = Math.max(front.maxInFlight, inFlight)
    try {
      const refused = (await injected(c, url, record)) ?? (await options.gate?.(c, url))
      if (refused !== undefined) {
        record.status = refused.status
        return refused
      }
      await next()
      record.status = c.res.status
      return undefined
    } finally {
      inFlight--
    }
  }

  const front: RequestFront = {
    requests,
    maxInFlight: 0,
    inject: (injection) => injections.push({ ...injection, remaining: injection.count }),
    middleware
  }
  return front
}
