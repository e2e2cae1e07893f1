/**
 * The project's route kit (`Routes` in `packages/adapters-http/src/http.ts`) on a real HTTP server on
 * loopback, with only the routes a test declares: for tests of the kit's own behaviour.
 */
import type { AddressInfo } from "node:net"
import { serve } from "@hono/node-server"
import type { ManagedRuntime } from "effect"
import { Hono } from "hono"
import { Routes, type AppEnv, type RouteLimits } from "@optimizer/adapters-http/http"

export interface RoutesServer {
  readonly url: string
  readonly close: () => void
}

export const serveRoutes = async <R>(
  runtime: ManagedRuntime.ManagedRuntime<R, unknown>,
  declare: (routes: Routes<R>) => void,
  limits?: RouteLimits
): Promise<RoutesServer> => {
  const app = new Hono<AppEnv>()
  declare(limits === undefined ? new Routes(app, runtime) : new Routes(app, runtime, limits))
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" })
  await new Promise((resolve) => server.once("listening", resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() }
}
