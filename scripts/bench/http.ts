/**
 * HTTP overhead: bare Hono (the reference), the app's `/` (middleware + an Effect per request),
 * `/health` (plus a database ping) and an authenticated `/get-metrics` (plus a key check and six
 * counts), each with 50 connections from a second process for 5 s.
 */
import { serve } from "@hono/node-server"
import { Effect, Result } from "effect"
import { Hono } from "hono"
import type { AddressInfo } from "node:net"
import { ApiKeys, makeRuntime, parseSettings } from "@optimizer/core"
import { startHttpServer } from "@optimizer/adapters-http"
import { loadTest } from "./load.ts"
import type { Benchmark } from "./support.ts"

const bareHono = async () => {
  const app = new Hono()
  app.get("/", (c) => c.json({ message: "Optimizer Backend is running!" }))
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" })
  await new Promise((r) => server.once("listening", r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() }
}

export const httpBenchmark: Benchmark = {
  name: "http",
  description: "req/s and p99 under 50 connections: bare Hono vs the app's /, /health, authenticated /get-metrics",
  run: async (server) => {
    const bare = await bareHono()
    const reference = await loadTest(`${bare.url}/`)
    bare.close()
    const url = await server.freshDatabase()
    // The rate limit off for the viewer key's role: the figure is the server's capacity from one
    // key, which a per-key limit (100/s by default) would cap at the limit.
    const parsed = parseSettings({ DATABASE_URL: url, LOG_LEVEL: "Warn", RATE_LIMIT_VIEWER: "0" })
    if (Result.isFailure(parsed)) throw parsed.failure
    const runtime = makeRuntime(parsed.success)
    const key = await runtime.runPromise(
      ApiKeys.use((k) => k.create({ name: "bench", role: "viewer" })).pipe(Effect.map((k) => k.key))
    )
    const http = await startHttpServer(runtime, {
      port: 0,
      hostname: "127.0.0.1",
      corsOrigins: [],
      version: "bench",
      http: parsed.success.http,
      log: { pretty: false, level: "Warn" }
    })
    try {
      const root = await loadTest(`${http.url}/`)
      const health = await loadTest(`${http.url}/health`)
      const metrics = await loadTest(`${http.url}/get-metrics`, { headers: { authorization: `Bearer ${key}` } })
      return {
        "bare Hono GET / req/s": reference.requestsPerSecond,
        "app GET / req/s": root.requestsPerSecond,
        "app GET / p99 ms": root.p99Ms,
        "app GET /health req/s": health.requestsPerSecond,
        "app GET /health p99 ms": health.p99Ms,
        "app GET /get-metrics (auth) req/s": metrics.requestsPerSecond,
        "app GET /get-metrics p99 ms": metrics.p99Ms,
        "non-2xx or errors": root.non2xx + health.non2xx + metrics.non2xx + root.errors + health.errors + metrics.errors
      }
    } finally {
      await http.close(1000)
      await runtime.dispose()
    }
  }
}
