/**
 * `/find_records` beside dashboards polling `/get-metrics` (issue "Hardening the API"): 8 viewers
 * polling the six table counts once held PostgreSQL with full scans, and `/find_records` went from
 * 3 ms to seconds. Here the find-records benchmark's data (1M listed numbers, 1.1M history rows)
 * plus 1.2M rows of `main_database` (2.2M rows counted in all), `optimizer serve` in a process of
 * its own, and the find-records load (50 connections, one admin key, not rate limited) for a phase
 * alone, then for a phase of the same length beside 8 autocannon clients polling `/get-metrics`
 * with a viewer key (each client once a second by default; viewers keep the default rate limit of
 * 100/s per key, so more than 12/s each is answered 429 in part). Target: the p99 of
 * `/find_records` beside the polling within 2× its p99 alone.
 *
 *   npm run bench -- metrics-polling                                   # 60 s phases
 *   BENCH_POLLING_SECONDS=10 npm run bench -- metrics-polling          # a quick check
 *   BENCH_POLLING_RATE=5 npm run bench -- metrics-polling              # each poller 5 times a second
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import pg from "pg"
import { bodies, createKey, fill, load, serveCommand } from "./find-records.ts"
import { loadTest } from "./load.ts"
import type { Benchmark } from "./support.ts"

const POLLERS = 8
const MAIN_DATABASE_ROWS = 1_200_000

const envNumber = (name: string, fallback: number): number => {
  const raw = process.env[name]
  const n = raw === undefined || raw.trim() === "" ? fallback : Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number >= 1, got "${raw}"`)
  return n
}

/** `main_database` as a running installation has it: numbers added over the last 60 days. */
const fillMainDatabase = async (url: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`
      INSERT INTO main_database (custom_variable_1, timestamp_created)
        SELECT '447' || (600000000 + i)::text, now() - (i % 60) * interval '1 day'
        FROM generate_series(0, ${MAIN_DATABASE_ROWS - 1}) AS i;
      ANALYZE main_database`)
    await client.query("VACUUM main_database")
  } finally {
    await client.end()
  }
}

export const metricsPollingBenchmark: Benchmark = {
  name: "metrics-polling",
  description: `POST /find_records p99 alone vs beside ${POLLERS} clients polling GET /get-metrics (optimizer serve, 1 process)`,
  run: async (server) => {
    const seconds = envNumber("BENCH_POLLING_SECONDS", 60)
    const rate = envNumber("BENCH_POLLING_RATE", 1)
    const scratch = mkdtempSync(path.join(tmpdir(), "optimizer-bench-polling-"))
    const bodiesFile = path.join(scratch, "bodies.json")
    writeFileSync(bodiesFile, JSON.stringify(bodies()))
    const url = await server.freshDatabase()
    await fill(url)
    await fillMainDatabase(url)
    // `serveCommand` turns the rate limit off for admins: one key makes all the find_records load.
    const findKey = await createKey(url, "admin", "bench-find")
    const pollKey = await createKey(url, "viewer", "bench-poll")
    const serve = await serveCommand(url, 1)
    try {
      const findRecords = `${serve.url}/find_records`
      // Warm-up (JIT, pool connections, index pages), as in the find-records benchmark.
      for (let round = 0; round < 2; round++) await load(findRecords, bodiesFile, findKey)
      const solo = await load(findRecords, bodiesFile, findKey, seconds)
      const [beside, polls] = await Promise.all([
        load(findRecords, bodiesFile, findKey, seconds),
        loadTest(`${serve.url}/get-metrics`, {
          connections: POLLERS,
          seconds,
          headers: { authorization: `Bearer ${pollKey}` },
          connectionRate: rate
        })
      ])
      const ratio = solo.p99Ms > 0 ? beside.p99Ms / solo.p99Ms : Number.POSITIVE_INFINITY
      return {
        "phase length s": seconds,
        "pollers (req/s each)": `${POLLERS} (${rate})`,
        "find_records alone: req/s": solo.requestsPerSecond,
        "find_records alone: p50 / p99 ms": `${solo.p50Ms} / ${solo.p99Ms}`,
        "find_records beside polling: req/s": beside.requestsPerSecond,
        "find_records beside polling: p50 / p99 ms": `${beside.p50Ms} / ${beside.p99Ms}`,
        "p99 beside / alone": `${ratio.toFixed(2)}×`,
        "target (p99 within 2× alone)": ratio <= 2 ? "met" : "missed",
        "get-metrics: req/s / p99 ms": `${polls.requestsPerSecond} / ${polls.p99Ms}`,
        "non-2xx or errors": solo.non2xx + solo.errors + beside.non2xx + beside.errors + polls.non2xx + polls.errors
      }
    } finally {
      await serve.close()
      rmSync(scratch, { recursive: true, force: true })
    }
  }
}
