/**
 * The foundation as the frontend sees it: the original's first endpoints with their exact shapes,
 * API keys and roles, the FastAPI-compatible error body, the OpenAPI document and docs page.
 */
import { Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeApp } from "@optimizer/adapters-http"
import { makeRuntime, parseSettings } from "@optimizer/core"
import { call, startTestApp, type TestApp } from "./support/app.ts"

/** Routes that need no key: the banner, the probe, Prometheus's scrape and the API's own docs. */
const PUBLIC_ROUTES = [
  "GET /",
  "GET /health",
  "GET /metrics",
  "GET /openapi.json",
  "GET /docs",
  "GET /docs/assets/:name"
]

/** Every route the app declares, as "METHOD /path", in order (declaring them connects to nothing). */
const appRoutes = (): ReadonlyArray<string> => {
  const parsed = parseSettings({ DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" })
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  const { app } = makeApp(makeRuntime(parsed.success), { corsOrigins: [], version: "test" })
  return app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`)
}

let app: TestApp
let admin: string
let viewer: string

beforeAll(async () => {
  app = await startTestApp({ CORS_ORIGINS: "https://frontend.example" })
  admin = await app.createKey("admin")
  viewer = await app.createKey("viewer")
})
afterAll(() => app.close())

describe("original endpoints", () => {
  it("GET / answers the original banner without a key", async () => {
    const res = await call(app.url, undefined, "/")
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ message: "Optimizer Backend is running!" })
  })

  it("GET /health answers ok when the database answers", async () => {
    const res = await call(app.url, undefined, "/health")
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: "ok" })
  })

  it("GET /get-metrics gives the six tables, each [total, last 24 hours, last 7 days]", async () => {
    const res = await call(app.url, viewer, "/get-metrics")
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, Array<number>>
    expect(Object.keys(body).sort()).toEqual(
      ["api_hlr_live_numbers", "api_voluum_conversions", "blacklist", "main_database", "monitor", "whitelist"].sort()
    )
    for (const triple of Object.values(body)) expect(triple).toEqual([0, 0, 0])
  })
})

describe("API keys and roles", () => {
  it("answers 401 without a key, with a FastAPI-style body", async () => {
    const res = await call(app.url, undefined, "/get-metrics")
    expect(res.status).toBe(401)
    const body = (await res.json()) as Record<string, string>
    expect(body.detail).toMatch(/API key/)
    expect(body.code).toBe("UNAUTHORIZED")
    expect(body.request_id).toBe(res.headers.get("x-request-id"))
  })

  it("declares each method and path once (no handler shadows another)", () => {
    const routes = appRoutes()
    expect(routes.filter((r, i) => routes.indexOf(r) !== i)).toEqual([])
  })

  it("every route but the public ones answers 401 without a key", async () => {
    const routes = appRoutes()
    expect(routes.length).toBeGreaterThan(60)
    const open: Array<string> = []
    for (const route of routes) {
      if (PUBLIC_ROUTES.includes(route)) continue
      const [method, pattern] = route.split(" ") as [string, string]
      const path = pattern.replace(/:[a-z_]+/g, "00000000-0000-4000-8000-000000000000")
      const res = await fetch(`${app.url}${path}`, { method })
      if (res.status !== 401) open.push(`${route} → ${res.status}`)
      await res.body?.cancel()
    }
    expect(open).toEqual([])
  })

  it("answers 401 for an unknown key, by either header", async () => {
    const bogus = "opt_abcdefgh_" + "x".repeat(43)
    expect((await call(app.url, bogus, "/get-metrics")).status).toBe(401)
    expect((await fetch(`${app.url}/get-metrics`, { headers: { "x-api-key": bogus } })).status).toBe(401)
  })

  it("accepts X-API-Key as well as Authorization: Bearer", async () => {
    expect((await fetch(`${app.url}/get-metrics`, { headers: { "x-api-key": viewer } })).status).toBe(200)
  })

  it("answers 403 when a viewer calls an admin-only endpoint", async () => {
    const res = await call(app.url, viewer, "/api-keys")
    expect(res.status).toBe(403)
    expect(((await res.json()) as { detail: string }).detail).toMatch(/admin/)
    expect((await call(app.url, admin, "/api-keys")).status).toBe(200)
  })

  it("a revoked key stops working at once", async () => {
    const created = (await (
      await call(app.url, admin, "/api-keys", { json: { name: "temp", role: "viewer" } })
    ).json()) as {
      key: string
      id: string
    }
    expect((await call(app.url, created.key, "/get-metrics")).status).toBe(200)
    expect((await call(app.url, admin, `/api-keys/${created.id}/revoke`, { method: "POST" })).status).toBe(200)
    expect((await call(app.url, created.key, "/get-metrics")).status).toBe(401)
  })

  it("validates request bodies and names the field", async () => {
    const res = await call(app.url, admin, "/api-keys", { json: { name: "x", role: "superuser" } })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { detail: string }).detail).toMatch(/role/)
  })
})

describe("edges", () => {
  it("unknown paths are 404 with the error body", async () => {
    const res = await call(app.url, admin, "/no-such-thing")
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ detail: "Not Found", code: "NOT_FOUND" })
  })

  it("CORS allows the configured frontend origin", async () => {
    const res = await fetch(`${app.url}/get-metrics`, {
      method: "OPTIONS",
      headers: { origin: "https://frontend.example", "access-control-request-method": "GET" }
    })
    expect(res.headers.get("access-control-allow-origin")).toBe("https://frontend.example")
  })

  it("serves the OpenAPI document and a docs page generated from the routes", async () => {
    const doc = (await (await call(app.url, undefined, "/openapi.json")).json()) as {
      openapi: string
      paths: Record<string, Record<string, { parameters?: unknown; requestBody?: unknown }>>
    }
    expect(doc.openapi).toBe("3.1.0")
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/", "/health", "/get-metrics", "/api-keys"]))
    expect(doc.paths["/api-keys"]!.post!.requestBody).toBeDefined()
  })

  it("serves /docs as Swagger UI with its assets from the installed package, without a key", async () => {
    const res = await call(app.url, undefined, "/docs")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'")
    const html = await res.text()
    expect(html).toContain('<div id="swagger-ui">')
    // Relative URLs only: no CDN, and the page works behind a proxy's prefix.
    expect(html).not.toMatch(/https?:\/\//)
    for (const asset of ["swagger-ui-bundle.js", "swagger-ui.css", "init.js"]) {
      expect(html).toContain(`docs/assets/${asset}`)
      const file = await call(app.url, undefined, `/docs/assets/${asset}`)
      expect(file.status, asset).toBe(200)
      expect((await file.arrayBuffer()).byteLength, asset).toBeGreaterThan(100)
    }
    // fetch asks for gzip and unpacks it: the bundle arrives whole either way.
    const plain = await call(app.url, undefined, "/docs/assets/swagger-ui-bundle.js", {
      headers: { "accept-encoding": "identity" }
    })
    expect(plain.headers.get("content-encoding")).toBeNull()
    const zipped = await call(app.url, undefined, "/docs/assets/swagger-ui-bundle.js")
    expect(zipped.headers.get("content-encoding")).toBe("gzip")
    expect(await zipped.text()).toBe(await plain.text())
    expect((await call(app.url, undefined, "/docs/assets/package.json")).status).toBe(404)
    expect((await call(app.url, undefined, "/docs/assets/..%2Fpackage.json")).status).toBe(404)
  })
})
