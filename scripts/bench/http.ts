/**
 * HTTP overhead: bare Hono (the reference), the app's `/` (middleware + an Effect per request),
 * `/health` (plus a database ping) and an authenticated `/get-metrics` (plus a key check and six
 * counts), each with 50 connections from a second process for 5 s.
 *
 * Then the cost of the Prometheus metrics (docs/observability.md): `/find_records` with an admin
 * key on two servers of one runtime, one counting every request (`metrics: "here"`) and one not
 * (`"off"`, METRICS_ENABLED=false), in alternating rounds of 5 s (on then off, off then on, …) so that other
 * work on the machine weighs on both alike; the best and the median round of each are reported.
 */
import { serve } from "@hono/node-server"
import { Effect, Result } from "effect"
import { Hono } from "hono"
import type { AddressInfo } from "node:net"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import pg from "pg"
import { ApiKeys, makeRuntime, parseSettings } from "@optimizer/core"
import { startHttpServer } from "@optimizer/adapters-http"
import { AES_KEY, bodies, load } from "./find-records.ts"
import { loadTest } from "./load.ts"
import { countRequest } from "../../packages/adapters-http/src/metrics.ts"
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
    const withMetrics = await findRecordsMetricsOnOff(url)
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
        ...withMetrics,
        "non-2xx or errors": root.non2xx + health.non2xx + metrics.non2xx + root.errors + health.errors + metrics.errors
      }
    } finally {
      await http.close(1000)
      await runtime.dispose()
    }
  }
}

const ROUNDS = 5
const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/**
 * A load round with this process's CPU time per answered request: the servers run in this process
 * and the load generator in another, so the process's CPU time is the server's. Unlike req/s, it
 * hardly moves when other work on the machine takes cores away.
 */
const measured = async (url: string, bodiesFile: string, key: string) => {
  const cpu = process.cpuUsage()
  const result = await load(url, bodiesFile, key)
  const used = process.cpuUsage(cpu)
  const requests = result.requestsPerSecond * 5
  return { ...result, cpuMicrosPerRequest: Math.round(((used.user + used.system) / Math.max(1, requests)) * 10) / 10 }
}

/** `/find_records` req/s with the metrics on and off, alternating rounds on one runtime. */
const findRecordsMetricsOnOff = async (url: string): Promise<Record<string, number | string>> => {
  const numbers = bodies()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    // The canonical numbers of the bodies on the blacklist: a lookup finds a row, as in production.
    const phones = numbers
      .map((b) => (JSON.parse(b) as { phone_number: string }).phone_number)
      .filter((p) => /^\d+$/.test(p))
    await client.query(
      `INSERT INTO blacklist (custom_variable_1, reason, source) SELECT p, 'HLR_FAILED', 'bench' FROM unnest($1::text[]) AS p ON CONFLICT DO NOTHING`,
      [phones]
    )
    await client.query("VACUUM ANALYZE blacklist")
  } finally {
    await client.end()
  }
  const scratch = mkdtempSync(path.join(tmpdir(), "optimizer-bench-metrics-"))
  const bodiesFile = path.join(scratch, "bodies.json")
  writeFileSync(bodiesFile, JSON.stringify(numbers))
  const parsed = parseSettings({ DATABASE_URL: url, LOG_LEVEL: "Warn", RATE_LIMIT_ADMIN: "0", AES_KEY })
  if (Result.isFailure(parsed)) throw parsed.failure
  const runtime = makeRuntime(parsed.success)
  const key = await runtime.runPromise(
    ApiKeys.use((k) => k.create({ name: "bench-admin", role: "admin" })).pipe(Effect.map((k) => k.key))
  )
  const options = {
    port: 0,
    hostname: "127.0.0.1",
    corsOrigins: [],
    version: "bench",
    http: parsed.success.http,
    log: { pretty: false, level: "Warn" }
  }
  const on = await startHttpServer(runtime, { ...options, metrics: "here" })
  const off = await startHttpServer(runtime, { ...options, metrics: "off" })
  try {
    // Warm-up of both (JIT, pool, key cache), not counted.
    await load(`${on.url}/find_records`, bodiesFile, key, 2)
    await load(`${off.url}/find_records`, bodiesFile, key, 2)
    const onRounds: Array<number> = []
    const offRounds: Array<number> = []
    const onCpu: Array<number> = []
    const offCpu: Array<number> = []
    let failures = 0
    for (let round = 0; round < ROUNDS; round++) {
      // Which goes first alternates too: neither always follows the other's garbage.
      const first = round % 2 === 0 ? on : off
      const a = await measured(`${first.url}/find_records`, bodiesFile, key)
      const b = await measured(`${(first === on ? off : on).url}/find_records`, bodiesFile, key)
      const [withOn, withOff] = first === on ? [a, b] : [b, a]
      onRounds.push(withOn.requestsPerSecond)
      offRounds.push(withOff.requestsPerSecond)
      onCpu.push(withOn.cpuMicrosPerRequest)
      offCpu.push(withOff.cpuMicrosPerRequest)
      failures += a.non2xx + a.errors + b.non2xx + b.errors
    }
    const ratio = median(onRounds) / median(offRounds)
    return {
      "/find_records metrics on req/s (rounds)": onRounds.join(" / "),
      "/find_records metrics off req/s (rounds)": offRounds.join(" / "),
      "/find_records metrics on, median req/s": median(onRounds),
      "/find_records metrics off, median req/s": median(offRounds),
      "/find_records metrics on / off (medians)": Math.round(ratio * 1000) / 1000,
      "/find_records metrics on / off (best rounds)":
        Math.round((Math.max(...onRounds) / Math.max(...offRounds)) * 1000) / 1000,
      "/find_records metrics on, CPU µs per request (rounds)": onCpu.join(" / "),
      "/find_records metrics off, CPU µs per request (rounds)": offCpu.join(" / "),
      "/find_records CPU per request on / off (medians)": Math.round((median(onCpu) / median(offCpu)) * 1000) / 1000,
      "/find_records non-2xx or errors": failures,
      "metrics cost per request, in-process ns": await countRequestCost()
    }
  } finally {
    await on.close(1000)
    await off.close(1000)
    await runtime.dispose()
    rmSync(scratch, { recursive: true, force: true })
  }
}

/**
 * What counting one request costs (route pattern, counter, histogram), timed in-process over a
 * million calls on a matched route's context: the load rounds above vary more than this between
 * rounds on a shared machine, so this is the figure to set against a request's CPU time.
 */
const countRequestCost = async (): Promise<number> => {
  const app = new Hono()
  let context: Parameters<typeof countRequest>[0] | undefined
  app.use(async (c, next) => {
    await next()
    context = c as unknown as Parameters<typeof countRequest>[0]
  })
  app.get("/jobs/:job_id", (c) => c.text("ok"))
  await app.request("/jobs/1")
  const c = context!
  const calls = 1_000_000
  let best = Infinity
  for (let round = 0; round < 3; round++) {
    const started = performance.now()
    for (let i = 0; i < calls; i++) countRequest(c, 200, 1.5)
    best = Math.min(best, ((performance.now() - started) * 1e6) / calls)
  }
  return Math.round(best)
}
