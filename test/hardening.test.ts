/**
 * The API under abuse and during a database incident, through real HTTP and real PostgreSQL:
 * bounded JSON bodies (413 before parsing), NUL and control characters refused at the boundary
 * (400 naming the parameter, never the driver's text), a database that stops answering (a TCP
 * proxy that stops forwarding) or disappears (dropped) answered 503 with Retry-After within the
 * request deadline, and normal service once it is back.
 */
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startTestApp, type TestApp } from "./support/app.ts"
import { startTcpProxy, type TcpProxy } from "./support/tcpProxy.ts"

interface ErrorBody {
  detail: string
  code: string
  request_id: string
}

/** Nothing of the driver, SQL or the server's files in what a client reads. */
const expectNoInternals = (body: ErrorBody) => {
  const text = JSON.stringify(body)
  for (const leak of [
    /relation "|syntax error|column "|SQLSTATE|invalid byte sequence|0x00|PgConnection/i,
    /database "/,
    /\/tmp|\.optimizer|\/var\//
  ]) {
    expect(text).not.toMatch(leak)
  }
}

describe("bounded and clean input", () => {
  let app: TestApp
  let viewer: string
  let admin: string
  let operator: string

  beforeAll(async () => {
    app = await startTestApp({ JSON_BODY_MAX_BYTES: "4096" })
    viewer = await app.createKey("viewer")
    operator = await app.createKey("operator")
    admin = await app.createKey("admin")
  })
  afterAll(() => app?.close())

  it("a JSON body over JSON_BODY_MAX_BYTES is a 413 before it is parsed, declared or chunked", async () => {
    const big = JSON.stringify({ phone_number: "4".repeat(5000) })
    const declared = await call(app.url, viewer, "/find_records", { json: JSON.parse(big) })
    expect(declared.status).toBe(413)
    const body = (await declared.json()) as ErrorBody
    expect(body.code).toBe("PAYLOAD_TOO_LARGE")
    expect(body.detail).toMatch(/at most 4096 bytes/)
    // Without a Content-Length (a streamed body): read up to the limit, then refused.
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++)
          controller.enqueue(new TextEncoder().encode(i === 0 ? '{"phone_number":"' : "4".repeat(1000)))
        controller.enqueue(new TextEncoder().encode('"}'))
        controller.close()
      }
    })
    const chunked = await fetch(`${app.url}/find_records`, {
      method: "POST",
      headers: { authorization: `Bearer ${viewer}`, "content-type": "application/json" },
      body: chunks,
      duplex: "half"
    } as RequestInit)
    expect(chunked.status).toBe(413)
    // Under the limit, the same route answers as usual.
    expect((await call(app.url, viewer, "/find_records", { json: { phone_number: "447700900123" } })).status).toBe(200)
  })

  it("a NUL in a body field, a query parameter or a path parameter is a 400 naming it, never a database error", async () => {
    const answers = [
      await call(app.url, viewer, "/find_records", { json: { phone_number: "4477009\u00000123" } }),
      await call(app.url, viewer, "/jobs?queue=cleaning%00process"),
      await call(app.url, admin, "/api-keys", { json: { name: "ops\u0000key", role: "viewer" } }),
      await call(app.url, admin, "/api-keys/abc%00def/revoke", { method: "POST" }),
      await call(app.url, operator, "/00000000-0000-0000-0000-000000000000/process?phone_column=ph%00one", {
        method: "POST"
      })
    ]
    const details: Array<string> = []
    for (const res of answers) {
      expect(res.status).toBe(400)
      const body = (await res.json()) as ErrorBody
      expect(body.code).toBe("VALIDATION_ERROR")
      expectNoInternals(body)
      details.push(body.detail)
    }
    expect(details[0]).toMatch(/body: the NUL character/)
    expect(details[1]).toMatch(/query\.queue: control characters/)
    expect(details[2]).toMatch(/body: the NUL character/)
    expect(details[3]).toMatch(/path\.key_id: control characters/)
    expect(details[4]).toMatch(/query\.phone_column: control characters/)
  })

  it("an over-long query parameter is a 400 naming it", async () => {
    const res = await call(app.url, viewer, `/jobs?queue=${"q".repeat(3000)}`)
    expect(res.status).toBe(400)
    expect(((await res.json()) as ErrorBody).detail).toMatch(/query\.queue: at most 2000 characters/)
  })
})

describe("a database that stops answering", () => {
  let proxy: TcpProxy
  let app: TestApp
  let viewer: string
  let admin: string

  beforeAll(async () => {
    let target: { host: string; port: number } | undefined
    app = await startTestApp(
      { REQUEST_DEADLINE_SECONDS: "2" },
      {
        databaseUrl: (url) => {
          const u = new URL(url)
          target = { host: u.hostname, port: Number(u.port || 5432) }
          return url
        }
      }
    )
    await app.close()
    proxy = await startTcpProxy(target!)
    app = await startTestApp(
      { REQUEST_DEADLINE_SECONDS: "2" },
      {
        databaseUrl: (url) => {
          const u = new URL(url)
          u.host = `127.0.0.1:${proxy.port}`
          return u.toString()
        }
      }
    )
    viewer = await app.createKey("viewer")
    admin = await app.createKey("admin")
  })
  afterAll(async () => {
    proxy?.resume()
    await app?.close()
    await proxy?.close()
  })

  it("answers 503 with Retry-After on every route within the deadline, then serves again once it is back", async () => {
    // Answered once while the database is there (the key is now known to this process).
    expect((await call(app.url, viewer, "/find_records", { json: { phone_number: "447700900123" } })).status).toBe(200)
    expect((await call(app.url, admin, "/api-keys")).status).toBe(200)
    // A key this process has not seen yet: checking it needs the database too.
    const unseen = await app.createKey("viewer")
    proxy.pause()
    try {
      const during = [
        await call(app.url, viewer, "/find_records", { json: { phone_number: "447700900124" } }),
        await call(app.url, viewer, "/jobs"),
        await call(app.url, viewer, "/files"),
        await call(app.url, admin, "/api-keys"),
        await call(app.url, unseen, "/jobs"),
        await call(app.url, undefined, "/health")
      ]
      for (const res of during) {
        expect(res.status).toBe(503)
        const body = (await res.json()) as ErrorBody | { status: string }
        if ("code" in body) {
          expect(["DATABASE_UNAVAILABLE", "DEADLINE_EXCEEDED"]).toContain(body.code)
          expect(res.headers.get("retry-after")).toMatch(/^\d+$/)
          expectNoInternals(body)
        }
      }
    } finally {
      proxy.resume()
    }
    // Back: the same routes answer as usual (the first may still wait for the pool to recover).
    let status = 0
    for (let attempt = 0; attempt < 20 && status !== 200; attempt++) {
      status = (await call(app.url, viewer, "/find_records", { json: { phone_number: "447700900125" } })).status
      if (status !== 200) await new Promise((r) => setTimeout(r, 500))
    }
    expect(status).toBe(200)
    expect((await call(app.url, viewer, "/jobs")).status).toBe(200)
  })
})

describe("a database that disappears", () => {
  it("is a 503 DATABASE_UNAVAILABLE without the driver's text, not a 500", async () => {
    const app = await startTestApp()
    try {
      const viewer = await app.createKey("viewer")
      expect((await call(app.url, viewer, "/jobs")).status).toBe(200)
      const admin = new pg.Client({ connectionString: new URL("/postgres", app.db.url).toString() })
      await admin.connect()
      try {
        await admin.query(`DROP DATABASE ${app.db.name} WITH (FORCE)`)
      } finally {
        await admin.end()
      }
      const res = await call(app.url, viewer, "/jobs")
      expect(res.status).toBe(503)
      const body = (await res.json()) as ErrorBody
      expect(["DATABASE_UNAVAILABLE", "DEADLINE_EXCEEDED"]).toContain(body.code)
      expect(res.headers.get("retry-after")).toMatch(/^\d+$/)
      expectNoInternals(body)
    } finally {
      await app.close()
    }
  })
})
