/**
 * A typed client of the optimizer's HTTP API, as a frontend or another service would write one: the
 * types are generated from the server's `/openapi.json` by openapi-typescript into `api.d.ts` (see
 * README.md beside this file), and the calls are made with openapi-fetch. Prints one JSON line.
 *
 *   OPTIMIZER_URL=http://127.0.0.1:8000 OPTIMIZER_API_KEY=opt_… node client.ts +447700900123
 *
 * test/api-client.test.ts generates `api.d.ts` from a running server, type-checks this file with
 * `tsc` and runs it against that server.
 */
import createClient from "openapi-fetch"
import type { paths } from "./api.d.ts"

const baseUrl = process.env.OPTIMIZER_URL ?? "http://127.0.0.1:8000"
const apiKey = process.env.OPTIMIZER_API_KEY
if (apiKey === undefined || apiKey === "") {
  console.error("OPTIMIZER_API_KEY is not set: make a key with `npx optimizer keys create --role viewer`")
  process.exit(2)
}
const phone = process.argv[2] ?? "+447700900123"

const api = createClient<paths>({ baseUrl, headers: { "X-API-Key": apiKey } })

/** The body of a success, or the error's `detail` and `code` (typed from the document) as an exception. */
const ok = <T>(result: { data?: T; error?: { detail: string; code: string }; response: Response }): T => {
  if (result.error !== undefined || result.data === undefined) {
    const e = result.error
    throw new Error(`${result.response.url}: ${result.response.status} ${e?.code ?? ""} ${e?.detail ?? ""}`.trim())
  }
  return result.data
}

// Public: no key needed (sent anyway).
const health = ok(await api.GET("/health"))
const status: "ok" = health.status

const counts = ok(await api.GET("/lists/counts"))
const listed: number = counts.blacklist + counts.whitelist + counts.monitor

const found = ok(await api.POST("/find_records", { body: { phone_number: phone } }))
const list: "blacklist" | "whitelist" | "monitor" | null = found.list

// Every JSON answer is typed: a job's state is one of five words, its attempts a number.
const jobs = ok(await api.GET("/jobs"))
const states: Array<"queued" | "running" | "completed" | "failed" | "cancelled"> = jobs.items.map((j) => j.state)

// What the types refuse (each line would fail `tsc` without its comment).
// @ts-expect-error: a job's attempts is a number, not a string
void ((): Array<string> => jobs.items.map((j) => j.attempts))
// @ts-expect-error: no such path
void (() => api.GET("/no-such-path"))
// @ts-expect-error: find_records needs a body with phone_number
void (() => api.POST("/find_records", { body: { phone: phone } }))
// @ts-expect-error: a job's path needs its job_id
void (() => api.GET("/jobs/{job_id}", {}))

// A failure answers the document's error body.
const missing = await api.GET("/jobs/{job_id}", {
  params: { path: { job_id: "00000000-0000-0000-0000-000000000000" } }
})
const refused = { status: missing.response.status, code: missing.error?.code }

console.log(
  JSON.stringify({
    status,
    counts,
    listed,
    list,
    rows: found.results.length,
    columns: found.columns.length,
    jobs: states.length,
    refused
  })
)
