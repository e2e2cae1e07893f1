/**
 * Traces as a collector receives them: the API and a worker export over OTLP/HTTP (JSON) to a
 * receiver on loopback (test/support/otlp.ts). One request that queues a cleaning job, sent with a
 * `traceparent`, must give one trace: the caller's span → the API's server span → `Jobs.enqueue` →
 * the worker's job span → the job's database queries, each with the right parent, under the
 * services `optimizer-api` and `optimizer-worker`. A failed request's span carries the `request_id`
 * of its error body. Log lines written inside a span carry its trace and span ids.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Effect, Logger, Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ApiKeys, jsonLogger, makeRuntime, parseSettings, type AppRuntime } from "@optimizer/core"
import { startHttpServer, type RunningServer } from "@optimizer/adapters-http"
import { call } from "./support/app.ts"
import { createTestDatabase, type TestDatabase } from "./support/database.ts"
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "./support/otlp.ts"
import { startTestWorker, type TestWorker } from "./support/worker.ts"

let otlp: OtlpReceiver
let db: TestDatabase
let runtime: AppRuntime
let server: RunningServer
let worker: TestWorker
let storageDir: string

beforeAll(async () => {
  otlp = await startOtlpReceiver()
  db = await createTestDatabase()
  storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-tracing-"))
  const env = {
    LOG_LEVEL: "Warn",
    DATABASE_URL: db.url,
    STORAGE_DIR: storageDir,
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url
  }
  const parsed = parseSettings(env)
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  runtime = makeRuntime(parsed.success, { role: "api" })
  server = await startHttpServer(runtime, {
    port: 0,
    hostname: "127.0.0.1",
    corsOrigins: [],
    version: "test",
    log: { pretty: false, level: "info" },
    tracing: true,
    validateResponses: true
  })
  worker = await startTestWorker(env)
})

afterAll(async () => {
  await otlp?.close()
  await db?.drop()
  rmSync(storageDir, { recursive: true, force: true })
})

const hex = (bytes: number) => randomBytes(bytes).toString("hex")

const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000) => {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe("traces over OTLP/HTTP", () => {
  it("links a request, the job it queues and the job's queries in one trace", async () => {
    const key = await runtime.runPromise(
      ApiKeys.use((k) => k.create({ name: "tracing", role: "operator" })).pipe(Effect.map((k) => k.key))
    )
    const form = new FormData()
    form.append("file", new Blob(["447700900001\n447700900002\n"]), "list.csv")
    const uploaded = await call(server.url, key, "/upload", { body: form })
    expect(uploaded.status).toBe(200)
    const { id } = (await uploaded.json()) as { id: string }

    // The caller's trace: its span is the parent of the API's.
    const traceId = hex(16)
    const callerSpanId = hex(8)
    const logged: Array<string> = []
    const write = process.stderr.write
    process.stderr.write = ((chunk: string) => {
      logged.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    let processed: Response
    try {
      processed = await call(server.url, key, `/${id}/process`, {
        method: "POST",
        headers: { traceparent: `00-${traceId}-${callerSpanId}-01` }
      })
      // The access log is written after the answer, on a later turn of the event loop: wait for the line.
      const sent = processed.headers.get("x-request-id") ?? ""
      await waitUntil("the request's access-log line", async () => logged.some((chunk) => chunk.includes(sent)), 10_000)
    } finally {
      process.stderr.write = write
    }
    expect(processed.status).toBe(200)
    const requestId = processed.headers.get("x-request-id")
    // The request's access-log line leads to its trace.
    const accessLine = logged
      .flatMap((chunk) => chunk.split("\n"))
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.message === "request" && line.request_id === requestId)
    expect(accessLine).toMatchObject({ trace_id: traceId, status: 200 })

    // A failure: its span has the error body's request_id.
    const failedTrace = hex(16)
    const missing = await call(server.url, key, `/${"0".repeat(8)}-0000-4000-8000-${"0".repeat(12)}/process`, {
      method: "POST",
      headers: { traceparent: `00-${failedTrace}-${hex(8)}-01` }
    })
    expect(missing.status).toBe(404)
    const errorBody = (await missing.json()) as { request_id: string }

    await waitUntil("the file to be processed", async () => {
      const res = await call(server.url, key, "/files")
      const items = ((await res.json()) as { items: Array<{ id: string; status: string }> }).items
      return items.find((i) => i.id === id)?.status === "processed"
    })
    // Releasing the runtimes flushes their exporters.
    await worker.close()
    await server.close(1000)
    await runtime.dispose()

    expect(otlp.rejected).toEqual([])
    const trace = otlp.spans.filter((s) => s.traceId === traceId)
    const byId = new Map(trace.map((s) => [s.spanId, s]))
    const one = (what: string, predicate: (s: ReceivedSpan) => boolean) => {
      const found = trace.filter(predicate)
      expect(
        found.map((s) => s.name),
        what
      ).toHaveLength(1)
      return found[0]!
    }
    const ancestors = (span: ReceivedSpan): Array<ReceivedSpan> => {
      const chain: Array<ReceivedSpan> = []
      let parent = span.parentSpanId === undefined ? undefined : byId.get(span.parentSpanId)
      while (parent !== undefined) {
        chain.push(parent)
        parent = parent.parentSpanId === undefined ? undefined : byId.get(parent.parentSpanId)
      }
      return chain
    }

    const request = one("the server span", (s) => s.name === "POST /:file_id/process")
    expect(request.service).toBe("optimizer-api")
    expect(request.parentSpanId).toBe(callerSpanId)
    expect(request.kind).toBe(2) // SERVER
    expect(request.attributes).toMatchObject({ request_id: requestId, "http.route": "/:file_id/process" })

    const enqueue = one("the enqueue span", (s) => s.name === "Jobs.enqueue")
    expect(enqueue.service).toBe("optimizer-api")
    expect(ancestors(enqueue)).toContain(request)

    const job = one("the job span", (s) => s.name === "job cleaning.process")
    expect(job.service).toBe("optimizer-worker")
    expect(job.parentSpanId).toBe(enqueue.spanId)
    expect(job.attributes).toMatchObject({ "job.queue": "cleaning.process", "job.attempt": 1 })

    const queries = trace.filter((s) => s.service === "optimizer-worker" && s.kind === 3 && ancestors(s).includes(job))
    expect(queries.length).toBeGreaterThan(0)
    expect(queries.some((q) => Object.keys(q.attributes).some((k) => k.startsWith("db.")))).toBe(true)

    const failed = otlp.spans.filter((s) => s.traceId === failedTrace && s.name === "POST /:file_id/process")
    expect(failed).toHaveLength(1)
    expect(failed[0]!.attributes).toMatchObject({
      request_id: errorBody.request_id,
      "http.response.status_code": 404,
      "error.code": "NOT_FOUND"
    })
  })

  it("writes the trace and span ids on log lines written inside a span", async () => {
    const lines: Array<string> = []
    const write = process.stderr.write
    process.stderr.write = ((chunk: string) => {
      lines.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    let ids: { traceId: string; spanId: string } | undefined
    try {
      await Effect.runPromise(
        Effect.gen(function* () {
          const span = yield* Effect.currentSpan
          ids = { traceId: span.traceId, spanId: span.spanId }
          yield* Effect.logInfo("inside a span")
        }).pipe(Effect.withSpan("outer"), Effect.provide(Logger.layer([jsonLogger])))
      )
      await Effect.runPromise(Effect.logInfo("outside").pipe(Effect.provide(Logger.layer([jsonLogger]))))
    } finally {
      process.stderr.write = write
    }
    const inside = JSON.parse(lines.find((l) => l.includes("inside a span"))!) as Record<string, unknown>
    expect(inside).toMatchObject({ trace_id: ids!.traceId, span_id: ids!.spanId })
    const outside = JSON.parse(lines.find((l) => l.includes("outside"))!) as Record<string, unknown>
    expect(outside.trace_id).toBeUndefined()
  })
})
