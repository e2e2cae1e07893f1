/**
 * `GET /metrics` as Prometheus scrapes it, after real traffic: requests over HTTP (with and without
 * keys, a route with a path parameter, an unknown path), a cleaning job run by a worker, and an SQS
 * batch through fauxqs into PostgreSQL. Each scrape is parsed strictly (test/support/prometheus.ts)
 * and the counters must have moved by exactly what the traffic did. Also: the worker's metrics port
 * (`METRICS_PORT`), and that no label carries a raw path or a phone number.
 *
 * The API, the worker and the consumer run in this one process, so they share its registry: the
 * API's `/metrics` shows all three here (in production each process serves its own).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs"
import { Effect, Exit, ManagedRuntime, Result, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { consumerLayer, parseSettings, processMetrics, resetSampling } from "@optimizer/core"
import { DEFAULT_TUNING, makeConsumer } from "../packages/adapters-sqs/src/Consumer.ts"
import { makeSqsClient } from "../packages/adapters-sqs/src/SqsQueue.ts"
import { clickEvent, phoneAt, snsBody, TEST_AES_KEY } from "../packages/core/test/live-events/fixtures.ts"
import { makeApp } from "../packages/adapters-http/src/app.ts"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { startFauxqs, type Fauxqs } from "./support/fauxqs.ts"
import { parsePrometheus, type Scrape } from "./support/prometheus.ts"
import { startTcpProxy } from "./support/tcpProxy.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let app: TestApp
let worker: TestWorker
let aws: Fauxqs
let storageDir: string
let operator: string
let viewer: string

beforeAll(async () => {
  storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-metrics-"))
  const env = { STORAGE_DIR: storageDir, AES_KEY: TEST_AES_KEY }
  app = await startTestApp(env)
  worker = await startTestWorker({ ...env, DATABASE_URL: app.db.url })
  operator = await app.createKey("operator")
  viewer = await app.createKey("viewer")
  aws = await startFauxqs()
})

afterAll(async () => {
  await worker?.close()
  await app?.close()
  await aws?.stop()
  rmSync(storageDir, { recursive: true, force: true })
})

const scrape = async (url = app.url): Promise<Scrape> => {
  resetSampling()
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
  return parsePrometheus(await res.text())
}

const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000) => {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe("GET /metrics", () => {
  it("needs no API key, and counts requests by route pattern, method and status", async () => {
    const before = await scrape()
    for (let i = 0; i < 3; i++) expect((await call(app.url, viewer, "/files")).status).toBe(200)
    expect((await call(app.url, undefined, "/files")).status).toBe(401)
    expect((await call(app.url, viewer, "/jobs/00000000-0000-0000-0000-000000000001")).status).toBe(404)
    expect((await call(app.url, viewer, "/no/such/447700900123")).status).toBe(404)
    const after = await scrape()

    const moved = (labels: Record<string, string>) =>
      after.value("optimizer_http_requests_total", labels) - before.value("optimizer_http_requests_total", labels)
    expect(moved({ route: "/files", method: "GET", status: "200" })).toBe(3)
    expect(moved({ route: "/files", method: "GET", status: "401" })).toBe(1)
    expect(moved({ route: "/jobs/:job_id", method: "GET", status: "404" })).toBe(1)
    expect(moved({ route: "unmatched", method: "GET", status: "404" })).toBe(1)
    // The first scrape is counted by the second.
    expect(moved({ route: "/metrics", method: "GET", status: "200" })).toBe(1)
    const histogramCount = (s: Scrape) =>
      s.value("optimizer_http_request_duration_seconds_count", { route: "/files", method: "GET" })
    expect(histogramCount(after) - histogramCount(before)).toBe(4)

    // Route patterns only: no raw path, no phone number in any label.
    for (const sample of after.samples) {
      for (const value of Object.values(sample.labels)) {
        expect(value).not.toMatch(/\d{6,}/)
        expect(value).not.toContain("00000000-0000")
      }
    }
    expect(after.families.get("optimizer_http_requests_total")?.type).toBe("counter")
    expect(after.families.get("optimizer_http_request_duration_seconds")?.type).toBe("histogram")
  })

  it("counts a cleaning job from enqueue to completion, with its rows", async () => {
    const before = await scrape()
    const form = new FormData()
    const numbers = Array.from({ length: 25 }, (_, i) => phoneAt(100 + i)).join("\n") + "\n"
    form.append("file", new Blob([numbers]), "list.csv")
    const uploaded = await call(app.url, operator, "/upload", { body: form })
    expect(uploaded.status).toBe(200)
    const { id } = (await uploaded.json()) as { id: string }
    expect((await call(app.url, operator, `/${id}/process`, { method: "POST" })).status).toBe(200)
    await waitUntil("the cleaning job to complete", async () => {
      const s = await scrape()
      return (
        s.value("optimizer_jobs_completed_total", { queue: "cleaning.process" }) >
        before.value("optimizer_jobs_completed_total", { queue: "cleaning.process" })
      )
    })
    const after = await scrape()
    const moved = (name: string, labels: Record<string, string>) =>
      after.value(name, labels) - before.value(name, labels)
    const q = { queue: "cleaning.process" }
    expect(moved("optimizer_jobs_enqueued_total", q)).toBe(1)
    expect(moved("optimizer_jobs_started_total", q)).toBe(1)
    expect(moved("optimizer_jobs_completed_total", q)).toBe(1)
    expect(moved("optimizer_jobs_failed_total", q)).toBe(0)
    expect(moved("optimizer_job_duration_seconds_count", { ...q, outcome: "completed" })).toBe(1)
    expect(after.value("optimizer_jobs_running", q)).toBe(0)
    expect(moved("optimizer_rows_processed_total", { operation: "cleaning" })).toBe(25)
    expect(moved("optimizer_run_rows_count", { operation: "cleaning" })).toBe(1)
    // Sampled from the database when scraped.
    expect(
      after.families
        .get("optimizer_list_rows")
        ?.samples.map((s) => s.labels.list)
        .sort()
    ).toEqual(["blacklist", "main_database", "monitor", "whitelist"])
    expect(after.value("optimizer_db_pool_connections", { pool: "bulk", state: "idle" })).toBeGreaterThanOrEqual(0)
    expect(after.families.has("optimizer_db_pool_waiting")).toBe(true)
    expect(after.sum("optimizer_db_connections")).toBeGreaterThan(0)
  })

  it("counts an SQS batch: received, committed, failed and dead-lettered, with the commit latency", async () => {
    const { queueUrl } = await aws.createQueueWithDeadLetter(undefined, { maxReceiveCount: 1 })
    const sqs = new SQSClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials })
    const good = [0, 1, 2, 3].map((i) => snsBody(clickEvent({ phone: phoneAt(200 + i) })))
    const poison = "{ this is not json"
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [...good, poison].map((body, i) => ({ Id: String(i), MessageBody: body }))
      })
    )
    const parsed = parseSettings({
      DATABASE_URL: app.db.url,
      SQS_QUEUE_URL: queueUrl,
      SQS_ENDPOINT: aws.endpoint,
      AWS_REGION: aws.region,
      AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
      AES_KEY: TEST_AES_KEY,
      LOG_LEVEL: "Error"
    })
    if (Result.isFailure(parsed) || !parsed.success.sqs.configured) throw new Error("bad SQS settings")
    const before = await scrape()
    const runtime = ManagedRuntime.make(consumerLayer(parsed.success))
    const scope = await runtime.runPromise(Scope.make())
    const client = makeSqsClient(parsed.success.sqs.value)
    const handle = await runtime.runPromise(
      makeConsumer(client, queueUrl, {
        ...DEFAULT_TUNING,
        receivers: 1,
        visibilityTimeoutSeconds: 5,
        waitTimeSeconds: 1,
        statsIntervalSeconds: 3600
      }).pipe(Scope.provide(scope))
    )
    try {
      await waitUntil("the batch to be committed", async () => {
        const s = await runtime.runPromise(handle.stats)
        return s.committed + s.failed >= 5 && s.deleted >= 4
      })
    } finally {
      await runtime.runPromise(handle.stop)
      await runtime.runPromise(Scope.close(scope, Exit.void))
      client.destroy()
      sqs.destroy()
      await runtime.dispose()
    }
    const after = await scrape()
    const moved = (name: string) => after.value(name) - before.value(name)
    expect(moved("optimizer_sqs_messages_received_total")).toBe(5)
    expect(moved("optimizer_sqs_messages_committed_total")).toBe(4)
    expect(moved("optimizer_sqs_messages_failed_total")).toBe(1)
    expect(moved("optimizer_sqs_messages_dead_lettered_total")).toBe(1)
    expect(moved("optimizer_sqs_messages_deleted_total")).toBe(4)
    expect(moved("optimizer_sqs_batch_commit_duration_seconds_count")).toBeGreaterThanOrEqual(1)
    expect(after.families.get("optimizer_sqs_oldest_message_age_seconds")?.type).toBe("gauge")
  })

  it("is off the API port when served elsewhere (METRICS_PORT) or disabled (METRICS_ENABLED=false)", async () => {
    for (const metrics of ["elsewhere", "off"] as const) {
      const { app: hono } = makeApp(app.runtime, {
        corsOrigins: [],
        version: "test",
        metrics,
        validateResponses: true
      })
      const before = (await scrape()).value("optimizer_http_requests_total", {
        route: "/health",
        method: "GET",
        status: "200"
      })
      expect((await hono.request("/metrics")).status, metrics).toBe(404)
      expect((await hono.request("/health")).status, metrics).toBe(200)
      const after = (await scrape()).value("optimizer_http_requests_total", {
        route: "/health",
        method: "GET",
        status: "200"
      })
      // Counted when served elsewhere, not when disabled.
      expect(after - before, metrics).toBe(metrics === "off" ? 0 : 1)
    }
  })

  it("is served on METRICS_PORT by the other processes, and can be kept off the API port", async () => {
    const port = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const bound = yield* processMetrics(
            { metricsEnabled: true, metricsPort: 0, metricsHost: "127.0.0.1" },
            "worker",
            "test"
          )
          const res = yield* Effect.promise(() => fetch(`http://127.0.0.1:${bound}/metrics`))
          const text = yield* Effect.promise(() => res.text())
          const parsed = parsePrometheus(text)
          expect(parsed.value("optimizer_process_info", { role: "worker", version: "test" })).toBe(1)
          expect((yield* Effect.promise(() => fetch(`http://127.0.0.1:${bound}/other`))).status).toBe(404)
          return bound
        })
      )
    )
    // Closed with its scope.
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow()
    // Disabled: no server.
    const none = await Effect.runPromise(
      Effect.scoped(
        processMetrics({ metricsEnabled: true, metricsPort: undefined, metricsHost: "127.0.0.1" }, "worker", "test")
      )
    )
    expect(none).toBeUndefined()
  })
})

describe("GET /metrics while the database does not answer", () => {
  it("still answers, with the database's gauges at their last values", async () => {
    const u = new URL(app.db.url)
    const proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port || 5432) })
    const cut = await startTestApp(
      {},
      {
        databaseUrl: (url) => {
          const through = new URL(url)
          through.host = `127.0.0.1:${proxy.port}`
          return through.toString()
        }
      }
    )
    try {
      // Builds the runtime, whose layer registers its database sampler.
      await cut.createKey("viewer")
      const first = await scrape(cut.url)
      expect(first.families.has("optimizer_list_rows")).toBe(true)
      proxy.pause()
      // The sampling queries hang; the scrape does not wait for them past its bound.
      const second = await scrape(cut.url)
      expect(second.families.has("optimizer_list_rows")).toBe(true)
      expect(second.value("optimizer_http_requests_total", { route: "/metrics", method: "GET", status: "200" })).toBe(
        first.value("optimizer_http_requests_total", { route: "/metrics", method: "GET", status: "200" }) + 1
      )
    } finally {
      proxy.resume()
      await cut.close()
      await proxy.close()
    }
  })
})
