/**
 * The OpenAPI 3.1 document, generated from the route declarations (the same schemas that validate
 * requests). It lints clean under Redocly's recommended rules (`npm run lint:openapi`, `redocly.yaml`)
 * so that a typed client can be generated from it (`docs/api-reference.md`). The `/docs` page that
 * renders it is in `docsPage.ts`.
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

const pascal = (word: string) => word.charAt(0).toUpperCase() + word.slice(1)

/**
 * A route's `operationId` when its declaration names none: the method, then the path's fixed words
 * in camelCase, then `By` and its parameters — `get /jobs/:job_id` → `getJobsByJobId`,
 * `post /:file_id/process` → `postProcessByFileId`. A path that starts with its method's word
 * (`get /get-metrics`) does not repeat it: `getMetrics`. Derived from the method and the path only,
 * so it stays the same while the route does.
 */
export const operationIdOf = (method: string, path: string): string => {
  const words: Array<string> = []
  const params: Array<string> = []
  for (const segment of path.split("/")) {
    if (segment === "") continue
    if (segment.startsWith(":")) params.push(...segment.slice(1).split(/[-_]/))
    else words.push(...segment.split(/[-_.]/).filter((w) => w !== ""))
  }
  if (words.length === 0) words.push("root")
  if (words[0]!.toLowerCase() === method) words.shift()
  const name = [method, ...words.map((w) => pascal(w.toLowerCase()))].join("")
  return params.length === 0 ? name : `${name}By${params.map((w) => pascal(w.toLowerCase())).join("")}`
}

const API_DESCRIPTION = `The optimizer's HTTP API, generated from the routes the server runs.

**Authorisation.** Every operation except the public ones (\`/\`, \`/health\`, \`/docs\`, \`/openapi.json\`)
needs an API key, sent as \`X-API-Key: <key>\` or \`Authorization: Bearer <key>\`. Keys are made with
\`npx optimizer keys create --role viewer|operator|admin\` (or \`POST /api-keys\` by an admin). Each
operation names the least role it needs; roles are ordered viewer < operator < admin.

**Errors** answer \`{"detail", "code", "request_id"}\` with the status; \`request_id\` is also the
\`X-Request-Id\` response header and names the request in the server's log.`

/** Every error's body (`ErrorBody` in `errors.ts`). */
const ERROR_SCHEMA = {
  type: "object",
  description: "An error: what went wrong, a stable code and the request's id",
  required: ["detail", "code", "request_id"],
  properties: {
    detail: { type: "string", description: "What went wrong, for a person" },
    code: { type: "string", description: "A stable code for programs: `VALIDATION_ERROR`, `UNAUTHORIZED`, …" },
    request_id: { type: "string", description: "The request's id, as in the `X-Request-Id` header and the log" }
  }
}
const ERROR_CONTENT = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } }

export const openApiDocument = (
  operations: ReadonlyArray<OpenApiOperation>,
  info: { title: string; version: string }
) => {
  const operationIds = new Map<string, string>()
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
    const operationId = spec.operationId ?? operationIdOf(method, path)
    const clash = operationIds.get(operationId)
    if (clash !== undefined) throw new Error(`operationId ${operationId} of ${method} ${path} is also ${clash}'s`)
    operationIds.set(operationId, `${method} ${path}`)
    const operation: Json = {
      operationId,
      summary: spec.summary,
      tags: [spec.tag],
      parameters,
      responses: {
        // A route that only ever answers 202 (work queued) declares `accepted` and no `response`.
        ...(spec.accepted !== undefined && spec.response === undefined && spec.produces === undefined
          ? {}
          : {
              "200": {
                description: spec.returns ?? "Success",
                // JSON unless declared otherwise; its schema when the route declares one, else any JSON value.
                content:
                  spec.produces !== undefined
                    ? { [spec.produces]: { schema: { type: "string" } } }
                    : {
                        "application/json": {
                          schema: spec.response === undefined ? {} : schemaOf(spec.response as Schema.Top)
                        }
                      }
              }
            }),
        ...(spec.accepted === undefined
          ? {}
          : {
              "202": {
                description: spec.accepted.description,
                content: { "application/json": { schema: schemaOf(spec.accepted.schema) } }
              }
            }),
        "4XX": { description: "Client error", content: ERROR_CONTENT },
        "5XX": { description: "Server or upstream error", content: ERROR_CONTENT }
      }
    }
    if (spec.description) operation.description = spec.description
    if (spec.role === "public") {
      operation.security = []
      operation.description = `${spec.description ? spec.description + "\n\n" : ""}Public: no API key needed.`
    } else {
      operation.security = [{ apiKey: [] }, { bearer: [] }]
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
    info: {
      ...info,
      description: API_DESCRIPTION,
      // Not open source (`"license": "UNLICENSED"` in package.json); SPDX's way to name such a licence.
      license: { name: "Proprietary (UNLICENSED): not for redistribution", identifier: "LicenseRef-Proprietary" }
    },
    // Relative: the server that serves this document (whatever its host, port or scheme behind a proxy).
    servers: [{ url: "/", description: "The server that serves this document" }],
    paths,
    components: {
      schemas: { ...components, Error: ERROR_SCHEMA },
      securitySchemes: {
        apiKey: {
          type: "apiKey",
          in: "header",
          name: "X-API-Key",
          description: "An API key in the `X-API-Key` header (`npx optimizer keys create --role …`)"
        },
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "The same API key as `Authorization: Bearer <key>`: use one of the two"
        }
      }
    }
  }
}
