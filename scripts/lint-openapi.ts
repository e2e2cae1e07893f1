/**
 * `npm run lint:openapi`: lints the OpenAPI document of the HTTP app (as `/openapi.json` serves it)
 * with Redocly's recommended rules and `redocly.yaml`. Exits with Redocly's status: 0 when there is
 * neither an error nor a warning.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { openApiDocumentOfApp } from "./openapi/document.ts"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dir = mkdtempSync(join(tmpdir(), "optimizer-openapi-"))
try {
  const file = join(dir, "openapi.json")
  writeFileSync(file, JSON.stringify(await openApiDocumentOfApp(), null, 2) + "\n")
  const cli = join(dirname(createRequire(import.meta.url).resolve("@redocly/cli/package.json")), "bin", "cli.js")
  const run = spawnSync(
    process.execPath,
    [cli, "lint", "--config", join(root, "redocly.yaml"), "--max-problems", "200", file],
    // Redocly's usage telemetry off: this lint runs in CI and in tests.
    { stdio: "inherit", env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" } }
  )
  if (run.error !== undefined) throw run.error
  process.exitCode = run.status ?? 1
} finally {
  rmSync(dir, { recursive: true, force: true })
}
