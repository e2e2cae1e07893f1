/**
 * Serving the app on a port with graceful shutdown: on stop, the listener closes (no new
 * connections), in-flight requests get up to `drainMs` to finish, then the runtime's resources
 * (database pools) are released.
 */
import type { AddressInfo } from "node:net"
import { serve, type ServerType } from "@hono/node-server"
import type { AppRuntime } from "@optimizer/core"
import { makeApp, type AppOptions } from "./app.ts"

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
  return new Promise((resolve, reject) => {
    let server: ServerType
    const onError = (e: Error) => reject(e)
    server = serve(
      { fetch: app.fetch, port: options.port, hostname: options.hostname ?? "0.0.0.0" },
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
  })
}
