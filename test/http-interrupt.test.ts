/**
 * A client that goes away before the answer interrupts the handler's Effect (a long query is
 * cancelled and its connection freed), and a client that waits gets its answer. Real Hono app with
 * the project's route kit, on a real HTTP server on loopback.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { serveRoutes, type RoutesServer } from "./support/routesServer.ts"

let server: RoutesServer
let url: string
const runtime = ManagedRuntime.make(Layer.empty)
let interrupted: () => void
const wasInterrupted = new Promise<void>((resolve) => (interrupted = resolve))
let slowFinished = false

beforeAll(async () => {
  server = await serveRoutes(runtime, (routes) =>
    routes
      .add({ method: "get", path: "/slow", role: "public", summary: "waits 10 s", tag: "test" }, () =>
        Effect.sleep("10 seconds").pipe(
          Effect.tap(() => Effect.sync(() => (slowFinished = true))),
          Effect.onInterrupt(() => Effect.sync(() => interrupted()))
        )
      )
      .add({ method: "get", path: "/quick", role: "public", summary: "answers after 50 ms", tag: "test" }, () =>
        Effect.sleep("50 millis").pipe(Effect.as({ ok: true }))
      )
  )
  url = server.url
})
afterAll(async () => {
  server?.close()
  await runtime.dispose()
})

it("interrupts the handler when the client disconnects before the answer", async () => {
  const abort = new AbortController()
  const request = fetch(`${url}/slow`, { signal: abort.signal }).catch((e: unknown) => e)
  await new Promise((r) => setTimeout(r, 200))
  abort.abort()
  expect(await request).toBeInstanceOf(Error)
  const outcome = await Promise.race([
    wasInterrupted.then(() => "interrupted"),
    new Promise((r) => setTimeout(() => r("still running after 5 s"), 5000))
  ])
  expect(outcome).toBe("interrupted")
  expect(slowFinished).toBe(false)
})

it("answers a client that waits, on a kept-alive connection, and again on the same one", async () => {
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`${url}/quick`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ok: true })
  }
})
