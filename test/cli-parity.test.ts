/**
 * Every HTTP operation has a CLI command: the routes are read from the Hono app itself (what the
 * server answers), each must map to a command of the CLI's command tree, and every mapped command
 * must exist. A new route without a command fails here until it gets one (or a commented exception).
 */
import { Result } from "effect"
import type { Command } from "effect/cli"
import { describe, expect, it } from "vitest"
import { makeApp } from "@optimizer/adapters-http"
import { makeRuntime, parseSettings } from "@optimizer/core"
import { rootCommand } from "../packages/adapters-cli/src/cli.ts"

/** Routes with no command on purpose, and why. */
const EXCEPTIONS: Record<string, string> = {
  // The liveness banner: nothing to do from a shell.
  "GET /": "banner",
  // The load balancer's probe; `optimizer doctor` checks the database (and much more) from a shell.
  "GET /health": "probe",
  // The API's own description and its reference page: for HTTP clients only.
  "GET /openapi.json": "API description",
  "GET /docs": "API reference page",
  // The reference page's scripts and styles (Swagger UI, served by the server itself).
  "GET /docs/assets/:name": "API reference page assets",
  // Prometheus's scrape (docs/observability.md); a shell reads it with curl, as Prometheus does.
  "GET /metrics": "Prometheus metrics"
}

/** Route → the command that does the same (its words after `optimizer`). */
const COMMANDS: Record<string, string> = {
  "GET /get-metrics": "metrics",
  "GET /api-keys": "keys list",
  "POST /api-keys": "keys create",
  "POST /api-keys/:key_id/revoke": "keys revoke",
  "POST /db-manual-update/import": "lists manual-import",
  "GET /db-manual-update/history": "lists history",
  "GET /db-manual-update/:import_id/download": "lists result",
  "POST /import-blacklist-csv": "lists import-blacklist-csv",
  "GET /lists/explain": "lists explain",
  "GET /lists/counts": "lists counts",
  "POST /lists/:list/remove": "lists remove",
  "GET /jobs": "jobs list",
  "GET /jobs/:job_id": "jobs show",
  "POST /jobs/:job_id/cancel": "jobs cancel",
  "POST /upload": "files upload",
  "GET /files": "files list",
  "POST /:file_id/process": "files process",
  "GET /:file_id/stats": "files stats",
  "GET /:file_id/download": "files download",
  "POST /:file_id/archive": "files archive",
  "POST /:file_id/delete": "files delete",
  "POST /:file_id/hlr": "hlr start",
  "GET /:file_id/hlr": "hlr status",
  "GET /:file_id/hlr/download": "hlr download",
  // `hlr download --raw`
  "GET /:file_id/hlr/raw": "hlr download",
  // The CLI runs the sync in its own process; the route queues it as a job and waits.
  "POST /sync-voluum-reports": "voluum sync-reports",
  "POST /sync-voluum-reports_for_range": "voluum sync-reports-range",
  "POST /sync-voluum-conversions": "voluum sync-conversions",
  "POST /sync-voluum-conversions-for-range": "voluum sync-conversions-range",
  "POST /find-smart-cleaning-voluum": "smart-cleaning create",
  "POST /upload-smart-cleaning-voluum": "smart-cleaning upload",
  "GET /smart-cleaning-files-voluum": "smart-cleaning list",
  "POST /:file_id/process-smart-cleaning-files-voluum": "smart-cleaning process",
  "GET /:file_id/download-smart-cleaning-files-voluum": "smart-cleaning download",
  "POST /:file_id/archive-smart-cleaning-files-voluum": "smart-cleaning archive",
  "POST /:file_id/delete-smart-cleaning-files-voluum": "smart-cleaning delete",
  "POST /reg-search/search": "reg-search search",
  "GET /reg-search/files": "reg-search list",
  "POST /reg-search/:file_id/process": "reg-search process",
  "GET /reg-search/:file_id/download": "reg-search download",
  "POST /reg-search/:file_id/archive": "reg-search archive",
  "POST /reg-search/:file_id/delete": "reg-search delete",
  "POST /upload-encrypted": "encryption-files upload",
  "GET /encrypted-files": "encryption-files list",
  "POST /:file_id/process-encrypted": "encryption-files process",
  "GET /:file_id/download-encrypted": "encryption-files download",
  "POST /:file_id/archive-encrypted": "encryption-files archive",
  "POST /:file_id/delete-encrypted": "encryption-files delete",
  // `export <table>` runs the export in this process and records it as the job would.
  "POST /process_db": "export",
  "POST /fetch-latest-db-export": "export latest",
  "GET /db-download": "export download",
  "POST /find_records": "find-records",
  "GET /scheduler/runs": "runs",
  "POST /scheduler/:schedule/run-now": "runs now",
  "GET /update-costs-for-mmd": "mmd costs",
  "GET /save-data-for-previous-date": "mmd snapshot",
  "GET /save-data-for-specific-date": "mmd snapshot",
  // The SSE stream's own form: rows printed as they arrive (JSON lines with --json).
  "GET /get-live-broadcasts-stream": "mmd live",
  "GET /files-broadcasts": "mmd files",
  "GET /:file_id/download-broadcasts-history": "mmd download",
  "POST /csv-jobs/upload": "ongage-jobs upload",
  "GET /csv-jobs": "ongage-jobs list",
  "GET /csv-jobs/:job_id": "ongage-jobs show",
  "PATCH /csv-jobs/:job_id": "ongage-jobs set",
  "POST /csv-jobs/:job_id/start": "ongage-jobs start",
  "POST /csv-jobs/:job_id/pause": "ongage-jobs pause",
  "POST /csv-jobs/:job_id/resume": "ongage-jobs resume",
  "POST /csv-jobs/:job_id/archive": "ongage-jobs archive"
}

/** The routes the app serves, as "METHOD /path" (middleware excluded). */
const appRoutes = (): ReadonlyArray<string> => {
  const parsed = parseSettings({ DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" })
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  // The runtime is never built: declaring the routes connects to nothing.
  const { app } = makeApp(makeRuntime(parsed.success), { corsOrigins: [], version: "test" })
  return [...new Set(app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`))]
}

/** Whether `optimizer <words>` is a command of the tree. */
const hasCommand = (words: string): boolean => {
  let command: Command.Command.Any = rootCommand
  for (const word of words.split(" ")) {
    const next = command.subcommands.flatMap((g) => g.commands).find((c) => c.name === word)
    if (next === undefined) return false
    command = next
  }
  return true
}

describe("CLI parity with the HTTP API", () => {
  const routes = appRoutes()

  it("reads the app's routes", () => {
    expect(routes.length).toBeGreaterThan(60)
    expect(routes).toContain("GET /get-metrics")
  })

  it("every route has a command (or a commented exception)", () => {
    const missing = routes.filter((r) => EXCEPTIONS[r] === undefined && COMMANDS[r] === undefined)
    expect(missing, "routes without a CLI command: add one, and map it in COMMANDS").toEqual([])
  })

  it("every mapped command exists in the CLI", () => {
    const absent = Object.entries(COMMANDS)
      .filter(([, words]) => !hasCommand(words))
      .map(([route, words]) => `${route} → optimizer ${words}`)
    expect(absent).toEqual([])
  })

  it("the mapping names only routes that exist", () => {
    expect(Object.keys({ ...COMMANDS, ...EXCEPTIONS }).filter((r) => !routes.includes(r))).toEqual([])
  })
})
