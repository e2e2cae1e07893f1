/**
 * A handler that outlives the request deadline is answered 503 DEADLINE_EXCEEDED with Retry-After at
 * the deadline; a write says its change may still have been saved (a transaction already committing
 * when the deadline passed may commit), a read only to retry. Real Hono app with the project's route
 * kit, on a real HTTP server on loopback.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { serveRoutes, type RoutesServer } from "./support/routesServer.ts"

let server: RoutesServer
let url: string
const runtime = ManagedRuntime.make(Layer.empty)

beforeAll(async () => {
  const slow = () => Effect.sleep("5 seconds").pipe(Effect.as({ ok: true }))
  server = await serveRoutes(
    runtime,
    (routes) =>
      routes
        .add({ method: "get", path: "/slow", role: "public", summary: "reads for 5 s", tag: "test" }, slow)
        .add({ method: "post", path: "/slow", role: "public", summary: "writes for 5 s", tag: "test" }, slow),
    { jsonBodyMaxBytes: 1024, requestDeadlineMs: 300 }
  )
  url = server.url
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
