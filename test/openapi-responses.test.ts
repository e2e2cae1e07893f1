/**
 * Response schemas: every JSON operation of `/openapi.json` declares the schema of its answer, and
 * the check the tests run with (`validateResponses`, `http.ts`) refuses a body its schema does not
 * describe — a wrong type, a missing key or a key the schema does not name — with a 500 naming the
 * route, while production (the option off) answers the body as it is.
 */
import type { AddressInfo } from "node:net"
import { serve, type ServerType } from "@hono/node-server"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Hono } from "hono"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Routes, type AppEnv } from "@optimizer/adapters-http/http"
import { openApiDocumentOfApp } from "../scripts/openapi/document.ts"

type Json = Record<string, any>

describe("the OpenAPI document's responses", () => {
  it("gives every JSON operation a response schema", async () => {
    const document = (await openApiDocumentOfApp()) as Json
    const untyped: Array<string> = []
    let json = 0
    for (const [path, operations] of Object.entries<Json>(document.paths)) {
      for (const [method, operation] of Object.entries<Json>(operations)) {
        for (const status of ["200", "202"]) {
          const schema = operation.responses[status]?.content?.["application/json"]?.schema
          if (schema === undefined) continue
          json++
          if (Object.keys(schema).length === 0) untyped.push(`${method.toUpperCase()} ${path} ${status}`)
        }
      }
    }
    expect(untyped).toEqual([])
    expect(json).toBeGreaterThan(50)
  })

  it("names its components after the schemas' identifiers", async () => {
    const document = (await openApiDocumentOfApp()) as Json
    const getJob = document.paths["/jobs/{job_id}"].get.responses["200"].content["application/json"].schema
    expect(getJob).toEqual({ $ref: "#/components/schemas/JobInfo" })
    expect(Object.keys(document.components.schemas)).toEqual(
      expect.arrayContaining(["JobInfo", "CleaningFileItem", "HlrStatus", "CsvJob", "ProcessingStarted"])
    )
  })
})

describe("validateResponses", () => {
  const runtime = ManagedRuntime.make(Layer.empty)
  const servers: Array<ServerType> = []
  const urls: Record<"checked" | "unchecked", string> = { checked: "", unchecked: "" }
  const Answer = Schema.Struct({ n: Schema.Int, at: Schema.String })

  const start = async (validateResponses: boolean) => {
    const app = new Hono<AppEnv>()
    new Routes(app, runtime, undefined, false, validateResponses)
      .add({ method: "get", path: "/right", role: "public", summary: "t", tag: "t", response: Answer }, () =>
        // A Date is checked in its JSON form: an ISO string.
        Effect.succeed({ n: 1, at: new Date(0) })
      )
      .add({ method: "get", path: "/wrong-type", role: "public", summary: "t", tag: "t", response: Answer }, () =>
        Effect.succeed({ n: "1", at: "x" })
      )
      .add({ method: "get", path: "/extra-key", role: "public", summary: "t", tag: "t", response: Answer }, () =>
        Effect.succeed({ n: 1, at: "x", surprise: true })
      )
      .add({ method: "get", path: "/missing-key", role: "public", summary: "t", tag: "t", response: Answer }, () =>
        Effect.succeed({ n: 1 })
      )
      .add(
        {
          method: "post",
          path: "/accepted",
          role: "public",
          summary: "t",
          tag: "t",
          accepted: { description: "queued", schema: Schema.Struct({ job_id: Schema.String }) }
        },
        ({ c }) => Effect.succeed(c.json({ job_id: 7 }, 202))
      )
      .add({ method: "get", path: "/undeclared", role: "public", summary: "t", tag: "t" }, () =>
        Effect.succeed({ anything: true })
      )
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" })
    await new Promise((resolve) => server.once("listening", resolve))
    servers.push(server)
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  beforeAll(async () => {
    urls.checked = await start(true)
    urls.unchecked = await start(false)
  })
  afterAll(async () => {
    for (const server of servers) server.close()
    await runtime.dispose()
  })

  it("passes a body its schema describes", async () => {
    const response = await fetch(`${urls.checked}/right`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ n: 1, at: "1970-01-01T00:00:00.000Z" })
  })

  it.each([
    ["/wrong-type", "GET", "response.n"],
    ["/extra-key", "GET", "response.surprise"],
    ["/missing-key", "GET", "response.at"],
    ["/accepted", "POST", "response.job_id"],
    ["/undeclared", "GET", "declares no schema"]
  ])("answers %s with a 500 naming the route and the mismatch", async (path, method, names) => {
    const response = await fetch(`${urls.checked}${path}`, { method })
    expect(response.status).toBe(500)
    const body = (await response.json()) as { detail: string; code: string }
    expect(body.code).toBe("RESPONSE_SCHEMA_MISMATCH")
    expect(body.detail).toContain(`${method} ${path}`)
    expect(body.detail).toContain(names)
  })

  it("is off by default: the body goes out as the handler made it", async () => {
    const response = await fetch(`${urls.unchecked}/extra-key`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ n: 1, at: "x", surprise: true })
  })
})
