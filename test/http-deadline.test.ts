/**
 * A handler that outlives the request deadline is answered 503 DEADLINE_EXCEEDED with Retry-After at
 * the deadline; a write says its change may still have been saved (a transaction already committing
 * when the deadline passed may commit), a read only to retry. Real Hono app with the project's route
 * kit, on a real HTTP server on loopback.
 */
import type { AddressInfo } from "node:net"
import { serve, type ServerType } from "@hono/node-server"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Hono } from "hono"
import { afterAll, beforeAll, expect, it } from "vitest"
import { Routes, type AppEnv } from "@optimizer/adapters-http/http"

let server: ServerType
let url: string
const runtime = ManagedRuntime.make(Layer.empty)

beforeAll(async () => {
  const app = new Hono<AppEnv>()
  const slow = () => Effect.sleep("5 seconds").pipe(Effect.as({ ok: true }))
  new Routes(app, runtime, { jsonBodyMaxBytes: 1024, requestDeadlineMs: 300 })
    .add({ method: "get", path: "/slow", role: "public", summary: "reads for 5 s", tag: "test" }, slow)
    .add({ method: "post", path: "/slow", role: "public", summary: "writes for 5 s", tag: "test" }, slow)
  server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" })
  await new Promise((resolve) => server.once("listening", resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server?.close()
  await runtime.dispose()
})

it("answers 503 at the deadline; a write warns that its change may still have been saved", async () => {
  const read = await fetch(`${url}/slow`)
  expect(read.status).toBe(503)
  expect(read.headers.get("retry-after")).toBe("5")
  const readBody = (await read.json()) as { code: string; detail: string }
  expect(readBody.code).toBe("DEADLINE_EXCEEDED")
  expect(readBody.detail).toContain("retry later")

  const write = await fetch(`${url}/slow`, { method: "POST" })
  expect(write.status).toBe(503)
  const writeBody = (await write.json()) as { code: string; detail: string }
  expect(writeBody.code).toBe("DEADLINE_EXCEEDED")
  expect(writeBody.detail).toContain("may still have been saved: check before retrying")
})
