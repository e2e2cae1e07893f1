/**
 * Starts a fake external API (a Hono app) on a free loopback port, for tests that talk to it over
 * real HTTP. `close` also drops keep-alive connections, so a test file ends promptly.
 */
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { serve } from "@hono/node-server"
import type { Hono } from "hono"

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
