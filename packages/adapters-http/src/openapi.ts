/**
 * The OpenAPI 3.1 document and the `/docs` page, generated from the route declarations (the same
 * schemas that validate requests). The docs page is self-contained HTML — no CDN — so it works on
 * a machine without internet access.
 */
import { Schema } from "effect"
import type { OpenApiOperation } from "./http.ts"

type Json = Record<string, unknown>

const rewriteRefs = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(rewriteRefs)
  if (value !== null && typeof value === "object") {
    const out: Json = {}
    for (const [k, v] of Object.entries(value)) {
      out[k] = k === "$ref" && typeof v === "string" ? v.replace("#/$defs/", "#/components/schemas/") : rewriteRefs(v)
    }
    return out
  }
  return value
}

const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")

export const openApiDocument = (
  operations: ReadonlyArray<OpenApiOperation>,
  info: { title: string; version: string }
) => {
  const paths: Record<string, Json> = {}
  const components: Json = {}
  const schemaOf = (schema: Schema.Top): Json => {
    const doc = Schema.toJsonSchemaDocument(schema)
    Object.assign(components, rewriteRefs(doc.definitions) as Json)
    return rewriteRefs(doc.schema) as Json
  }
  for (const { method, path, spec } of operations) {
    const parameters: Array<Json> = []
    for (const match of path.matchAll(/:([A-Za-z0-9_]+)/g)) {
      parameters.push({ name: match[1], in: "path", required: true, schema: { type: "string" } })
    }
    if (spec.query) {
      const q = schemaOf(spec.query as Schema.Top)
      const props = (q.properties ?? {}) as Record<string, Json>
      const required = new Set((q.required ?? []) as Array<string>)
      for (const [name, schema] of Object.entries(props)) {
        parameters.push({ name, in: "query", required: required.has(name), schema })
      }
    }
    const operation: Json = {
      summary: spec.summary,
      tags: [spec.tag],
      parameters,
      responses: {
        "200": { description: spec.returns ?? "Success" },
        "4XX": { description: 'Client error: `{"detail", "code", "request_id"}`' },
        "5XX": { description: 'Server or upstream error: `{"detail", "code", "request_id"}`' }
      }
    }
    if (spec.description) operation.description = spec.description
    if (spec.role !== "public") {
      operation.security = [{ bearer: [] }, { apiKey: [] }]
      operation["x-required-role"] = spec.role
      operation.description = `${spec.description ? spec.description + "\n\n" : ""}Requires the **${spec.role}** role.`
    }
    if (spec.body) {
      operation.requestBody = {
        required: true,
        content: { "application/json": { schema: schemaOf(spec.body as Schema.Top) } }
      }
    } else if (spec.upload) {
      operation.requestBody = {
        required: true,
        content: {
          "multipart/form-data": {
            schema: { type: "object", required: ["file"], properties: { file: { type: "string", format: "binary" } } }
          }
        }
      }
    }
    const key = toOpenApiPath(path)
    paths[key] = { ...(paths[key] ?? {}), [method]: operation }
  }
  return {
    openapi: "3.1.0",
    info,
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "Authorization: Bearer <API key>" },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key" }
      }
    }
  }
}

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** A readable, dependency-free rendering of the OpenAPI document. */
export const docsPage = (doc: ReturnType<typeof openApiDocument>): string => {
  const byTag = new Map<string, Array<string>>()
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods as Record<string, Json>)) {
      const tag = ((op.tags as Array<string>) ?? ["other"])[0]!
      const params = ((op.parameters as Array<Json>) ?? [])
        .map(
          (p) =>
            `<li><code>${escapeHtml(String(p.name))}</code> <em>${escapeHtml(String(p.in))}${p.required ? ", required" : ""}</em> ${escapeHtml(JSON.stringify(p.schema))}</li>`
        )
        .join("")
      const body = op.requestBody
        ? `<details><summary>request body</summary><pre>${escapeHtml(JSON.stringify((op.requestBody as Json).content, null, 2))}</pre></details>`
        : ""
      const role = op["x-required-role"]
        ? `<span class="role">${escapeHtml(String(op["x-required-role"]))}</span>`
        : `<span class="role public">public</span>`
      const html = `<div class="op"><div><span class="m ${method}">${method.toUpperCase()}</span> <code class="path">${escapeHtml(path)}</code> ${role}</div>
<p>${escapeHtml(String(op.summary ?? ""))}</p>${op.description ? `<p class="desc">${escapeHtml(String(op.description))}</p>` : ""}${params ? `<ul>${params}</ul>` : ""}${body}</div>`
      byTag.set(tag, [...(byTag.get(tag) ?? []), html])
    }
  }
  const sections = [...byTag.entries()]
    .map(([tag, ops]) => `<h2 id="${escapeHtml(tag)}">${escapeHtml(tag)}</h2>${ops.join("")}`)
    .join("")
  const toc = [...byTag.keys()].map((t) => `<a href="#${escapeHtml(t)}">${escapeHtml(t)}</a>`).join(" · ")
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)} API</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#222}
.op{border:1px solid #ddd;border-radius:6px;padding:.6rem .8rem;margin:.6rem 0}.m{font-weight:700;padding:1px 6px;border-radius:4px;color:#fff}
.get{background:#2f7dd1}.post{background:#2f9e44}.patch{background:#c77d00}.put{background:#7048e8}.delete{background:#c92a2a}
.path{font-size:15px}.role{float:right;font-size:12px;background:#eee;border-radius:4px;padding:1px 6px}.public{background:#d3f9d8}
pre{background:#f6f8fa;padding:.5rem;overflow:auto}.desc{color:#555}ul{margin:.3rem 0}</style></head><body>
<h1>${escapeHtml(doc.info.title)} <small>${escapeHtml(doc.info.version)}</small></h1>
<p>Every endpoint except the public ones needs an API key: <code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key: &lt;key&gt;</code>.
Errors answer <code>{"detail", "code", "request_id"}</code>. Machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p>
<p>${toc}</p>${sections}</body></html>`
}
