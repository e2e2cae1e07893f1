/**
 * Serving the app on a port with graceful shutdown: on stop, the listener closes (no new
 * connections), in-flight requests get up to `drainMs` to finish, then the runtime's resources
 * (database pools) are released.
 *
 * The server's own limits come from the settings (`AppSettings.http`, docs/security.md): how long
 * a client may take to send its headers and its whole request, and how many sockets may be open.
 */
import type { ServerOptions } from "node:http"
import type { AddressInfo } from "node:net"
import { serve, type ServerType } from "@hono/node-server"
import { defaultHttpLimits, type AppRuntime, type HttpLimits } from "@optimizer/core"
import { makeApp, type AppOptions } from "./app.ts"

/** Node's default idle time of a keep-alive socket between requests. */
const KEEP_ALIVE_MS = 5_000

/**
 * Node's socket timeouts for the limits. Node checks the header and request timeouts of open
 * sockets every `connectionsCheckingInterval` (30 s by default, which would let a slow client keep
 * a socket for up to 30 s past its timeout): here a quarter of the shorter timeout, 0.25 s to 30 s.
 * Node refuses a `headersTimeout` above `requestTimeout`, and the keep-alive idle time stays below
 * `headersTimeout` so that a socket idle between requests is closed as idle, not timed out.
 */
export const serverOptionsOf = (limits: HttpLimits): ServerOptions => {
  const requestTimeout = limits.requestTimeoutMs
  const headersTimeout = Math.min(limits.headersTimeoutMs, requestTimeout)
  return {
    requestTimeout,
    headersTimeout,
    keepAliveTimeout: Math.min(KEEP_ALIVE_MS, Math.floor(headersTimeout / 2)),
    connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(headersTimeout / 4)))
  }
}

export interface RunningServer {
  readonly port: number
  readonly url: string
  /** Stops accepting, drains, closes idle keep-alive sockets. Does not dispose the runtime. */
  readonly close: (drainMs?: number) => Promise<void>
}

export const startHttpServer = (
  runtime: AppRuntime,
  options: AppOptions & { readonly port: number; readonly hostname?: string }
): Promise<RunningServer> => {
  const { app } = makeApp(runtime, options)
  const limits = options.http ?? defaultHttpLimits()
  return new Promise((resolve, reject) => {
    let server: ServerType
    const onError = (e: Error) => reject(e)
    server = serve(
      {
        fetch: app.fetch,
        port: options.port,
        hostname: options.hostname ?? "0.0.0.0",
        serverOptions: serverOptionsOf(limits)
      },
      (info: AddressInfo) => {
        server.off("error", onError)
        const host = options.hostname && options.hostname !== "0.0.0.0" ? options.hostname : "127.0.0.1"
        resolve({
          port: info.port,
          url: `http://${host}:${info.port}`,
          close: (drainMs = 10_000) =>
            new Promise<void>((done) => {
              const s = server as import("node:http").Server
              const timer = setTimeout(() => {
                s.closeAllConnections?.()
                done()
              }, drainMs)
              s.close(() => {
                clearTimeout(timer)
                done()
              })
              s.closeIdleConnections?.()
            })
        })
      }
    )
    server.once("error", onError)
    // Beyond it, Node closes a new socket as soon as it is accepted (no response: nothing was read).
    server.maxConnections = limits.maxConnections
  })
}
