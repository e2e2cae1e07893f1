/**
 * A Voluum reports sync as a job (DATABASE_URL; VOLUUM_API_URL, VOLUUM_ACCESS_ID,
 * VOLUUM_ACCESS_KEY, VOLUUM_TRAFFIC_SOURCE_IDS — CI points them at a fake Voluum). The options
 * object is built by the caller; `fromEnv(process.env)` would read the adapters' variables instead.
 *
 *   DATABASE_URL=… VOLUUM_API_URL=… VOLUUM_ACCESS_ID=… VOLUUM_ACCESS_KEY=… node examples/voluum-sync.ts
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createOptimizer } from "@optimizer/core/promise"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`set ${name}`)
  return value
}

await using optimizer = createOptimizer({
  database: env("DATABASE_URL"),
  storage: { dir: join(mkdtempSync(join(tmpdir(), "optimizer-example-")), "files") },
  encryption: { key: randomBytes(32).toString("base64url") },
  voluum: {
    apiUrl: env("VOLUUM_API_URL"),
    accessId: env("VOLUUM_ACCESS_ID"),
    accessKey: env("VOLUUM_ACCESS_KEY"),
    trafficSourceIds: env("VOLUUM_TRAFFIC_SOURCE_IDS").split(",")
  }
})
await optimizer.migrate()

const outcome = await optimizer.voluum.syncReports(
  { from: "2025-05-06T00:00:00Z", to: "2025-05-07T00:00:00Z" },
  { waitSeconds: 60 }
)
console.log("sync:", outcome.state, "job", outcome.jobId)
if (outcome.state === "completed") console.log("result:", JSON.stringify(outcome.result))
const status = await optimizer.jobs.status(outcome.jobId)
console.log("job status:", status.state)
console.log("lists after the sync:", await optimizer.lists.counts())
