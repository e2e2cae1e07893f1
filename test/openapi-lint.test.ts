/**
 * The OpenAPI document lints clean under Redocly's recommended rules (`redocly.yaml`): generated from
 * the app by `npm run lint:openapi` (scripts/lint-openapi.ts), as `/openapi.json` serves it.
 */
import { spawnSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import { operationIdOf } from "../packages/adapters-http/src/openapi.ts"

describe("the OpenAPI document", () => {
  it("lints clean with Redocly's recommended rules: no error, no warning", () => {
    const run = spawnSync(process.execPath, ["--conditions=@optimizer/source", "scripts/lint-openapi.ts"], {
      encoding: "utf8",
      timeout: 60_000
    })
    const output = `${run.stdout}\n${run.stderr}`
    expect(run.status, output).toBe(0)
    expect(output).toContain("Your API description is valid")
    expect(output).not.toMatch(/warning/i)
  })

  it("derives a camelCase operationId from the method and the path", () => {
    expect(operationIdOf("get", "/")).toBe("getRoot")
    expect(operationIdOf("get", "/get-metrics")).toBe("getMetrics")
    expect(operationIdOf("get", "/jobs/:job_id")).toBe("getJobsByJobId")
    expect(operationIdOf("post", "/:file_id/process")).toBe("postProcessByFileId")
    expect(operationIdOf("post", "/sync-voluum-reports_for_range")).toBe("postSyncVoluumReportsForRange")
    expect(operationIdOf("post", "/find_records")).toBe("postFindRecords")
  })
})
