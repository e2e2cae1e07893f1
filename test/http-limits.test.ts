/**
 * The API's limits through real HTTP and PostgreSQL: the per-key rate limit as configured by the
 * environment (429 with Retry-After for the key over its role's rate, other keys and keyless
 * requests unaffected, the key served again after Retry-After), and the server's own limits on raw
 * TCP sockets (headers sent too slowly are cut at headersTimeout; sockets beyond maxConnections are
 * closed at once).
 */
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startTestApp, type TestApp } from "./support/app.ts"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("the per-key rate limit", () => {
  let app: TestApp
  beforeAll(async () => {
    // 2 requests/s for viewers (a burst of 4), the other roles at their default.
    app = await startTestApp({ RATE_LIMIT_VIEWER: "2" })
  })
  afterAll(() => app?.close())

  it("answers 429 with Retry-After to a key over its role's rate; other keys are unaffected; the key works again after Retry-After", async () => {
    const [limitedKey, otherKey, operatorKey] = await Promise.all([
      app.createKey("viewer"),
      app.createKey("viewer"),
      app.createKey("operator")
    ])
    // As fast as the machine allows: the burst is 4, so a 429 comes within a few requests (more 200s
    // only when the machine is so slow that tokens come back meanwhile).
    const statuses: Array<number> = []
    let limited: Response | undefined
    for (let i = 0; i < 50 && limited === undefined; i++) {
      const res = await call(app.url, limitedKey, "/get-metrics")
      statuses.push(res.status)
      if (res.status === 429) limited = res
      else await res.arrayBuffer()
    }
    expect(limited, `statuses: ${statuses.join(" ")}`).toBeDefined()
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([])
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(4)
    const retryAfter = limited!.headers.get("retry-after")
    expect(retryAfter).toMatch(/^[1-9][0-9]*$/)
    const body = (await limited!.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(["code", "detail", "request_id"])
    expect(body.code).toBe("RATE_LIMITED")
    expect(body.request_id).toBe(limited!.headers.get("x-request-id"))

    // Another key of the same role, a key of another role, and requests without a key: served.
    expect((await call(app.url, otherKey, "/get-metrics")).status).toBe(200)
    expect((await call(app.url, operatorKey, "/get-metrics")).status).toBe(200)
    for (let i = 0; i < 20; i++) expect((await call(app.url, undefined, "/")).status).toBe(200)

    await sleep(Number(retryAfter) * 1000)
    expect((await call(app.url, limitedKey, "/get-metrics")).status).toBe(200)
  })
})

/** A raw socket to the app's port; resolves once connected. */
const connect = (url: string): Promise<net.Socket> => {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => resolve(socket))
    socket.once("error", reject)
  })
}

/** Resolves with what the server sent once it closed the socket, or "open" after `ms`. */
const closedWithin = (socket: net.Socket, ms: number): Promise<{ data: string } | "open"> =>
  new Promise((resolve) => {
    let data = ""
    socket.on("data", (d) => (data += d.toString()))
    socket.on("error", () => {})
    const timer = setTimeout(() => resolve("open"), ms)
    socket.once("close", () => {
      clearTimeout(timer)
      resolve({ data })
    })
  })

/** One keep-alive GET / on a raw socket; resolves with the response's status line. */
const getOn = (socket: net.Socket): Promise<string> =>
  new Promise((resolve, reject) => {
    let data = ""
    const onData = (d: Buffer) => {
      data += d.toString()
      // `/` answers a small JSON document; the whole response is in once its body is.
      if (data.includes("\r\n\r\n") && data.endsWith("}")) {
        socket.off("data", onData)
        resolve(data.split("\r\n")[0]!)
      }
    }
    socket.on("data", onData)
    socket.once("close", () => reject(new Error(`closed; got: ${data}`)))
    socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
  })

describe("the server's limits", () => {
  it("closes a socket whose headers do not arrive within headersTimeout", async () => {
    const app = await startTestApp({ HTTP_HEADERS_TIMEOUT_SECONDS: "1" })
    try {
      const socket = await connect(app.url)
      const started = performance.now()
      // A header line every 200 ms, never the blank line that ends them.
      socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n")
      const trickle = setInterval(() => socket.writable && socket.write("X-Slow: a\r\n"), 200)
      const outcome = await closedWithin(socket, 8000)
      clearInterval(trickle)
      const elapsed = performance.now() - started
      expect(outcome).not.toBe("open")
      if (outcome !== "open" && outcome.data !== "") expect(outcome.data).toMatch(/^HTTP\/1\.1 408/)
      expect(elapsed).toBeGreaterThanOrEqual(900)
      // A client that sends its request at once is served.
      expect((await call(app.url, undefined, "/")).status).toBe(200)
    } finally {
      await app.close()
    }
  })

  it("closes the sockets beyond maxConnections at once and keeps serving the others", async () => {
    const app = await startTestApp({ HTTP_MAX_CONNECTIONS: "3" })
    const sockets: Array<net.Socket> = []
    try {
      // Three sockets, each proven accepted by a request answered on it (kept alive).
      for (let i = 0; i < 3; i++) {
        const socket = await connect(app.url)
        sockets.push(socket)
        expect(await getOn(socket)).toBe("HTTP/1.1 200 OK")
      }
      const extra = await connect(app.url)
      sockets.push(extra)
      extra.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
      const outcome = await closedWithin(extra, 5000)
      expect(outcome).toEqual({ data: "" })
      // The first three still work.
      for (const socket of sockets.slice(0, 3)) expect(await getOn(socket)).toBe("HTTP/1.1 200 OK")
      // One closed, a new socket is accepted again.
      sockets[0]!.destroy()
      let accepted = false
      for (let attempt = 0; attempt < 20 && !accepted; attempt++) {
        await sleep(50)
        const socket = await connect(app.url)
        sockets.push(socket)
        accepted = await getOn(socket).then(
          (status) => status === "HTTP/1.1 200 OK",
          () => false
        )
      }
      expect(accepted).toBe(true)
    } finally {
      for (const socket of sockets) socket.destroy()
      await app.close()
    }
  })
})
