/**
 * `optimizer ongage-jobs …` as a shell runs it: upload, set, start, pause, resume, show, list and
 * archive with `--json` on a test database; a refused file or an unknown job exits non-zero with
 * the reason on stderr.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.ts"
import { createTestDatabase, type TestDatabase } from "./support/database.ts"

let dir: string
let db: TestDatabase

const optimizer = (args: ReadonlyArray<string>) => runCli(args, { cwd: dir, env: { DATABASE_URL: db.url } })
const jsonOf = async (args: ReadonlyArray<string>) => {
  const run = await optimizer([...args, "--json"])
  if (run.code !== 0) throw new Error(`optimizer ${args.join(" ")} exited ${run.code}: ${run.stderr}`)
  return JSON.parse(run.stdout) as Record<string, unknown>
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "optimizer-ongage-cli-"))
  db = await createTestDatabase()
})
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await db?.drop()
})

describe("optimizer ongage-jobs", () => {
  it("upload, set, start, pause, resume, show, list and archive with --json", async () => {
    writeFileSync(
      path.join(dir, "contacts.csv"),
      "List_ID,Email,Country,Source,Mobile,conversion_type,Original_source,HLR_Status,Uuid\n" +
        "112233,a@example.com,UK,S,4477,FTD,,live,u1\n112233,b@example.com,UK,S,4478,FTD,,live,u2\n"
    )
    const uploaded = await jsonOf(["ongage-jobs", "upload", "contacts.csv"])
    expect(uploaded).toMatchObject({ ok: true, original_filename: "contacts.csv", total_records: 2, status: "draft" })
    const id = uploaded.job_id as string
    expect(await jsonOf(["ongage-jobs", "set", id, "--interval", "120", "--lower", "1", "--upper", "2"])).toEqual({
      ok: true,
      job_id: id
    })
    expect(await jsonOf(["ongage-jobs", "start", id])).toEqual({ ok: true, status: "running" })
    expect(await jsonOf(["ongage-jobs", "pause", id])).toEqual({ ok: true, status: "paused" })
    expect(await jsonOf(["ongage-jobs", "resume", id])).toEqual({ ok: true, status: "running" })
    expect(await jsonOf(["ongage-jobs", "show", id])).toMatchObject({
      id,
      status: "running",
      interval_seconds: 120,
      upper_limit: 2,
      sent: 0,
      remaining: 2,
      failures: []
    })
    const listed = await jsonOf(["ongage-jobs", "list"])
    expect((listed.items as Array<{ id: string }>).map((j) => j.id)).toEqual([id])
    expect(await jsonOf(["ongage-jobs", "archive", id])).toEqual({ ok: true, status: "archived" })
    expect((await jsonOf(["ongage-jobs", "list"])).items).toEqual([])

    writeFileSync(path.join(dir, "bad.csv"), "email,List_ID\nx@example.com,1\n")
    const bad = await optimizer(["ongage-jobs", "upload", "bad.csv"])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toContain("Missing required columns: Email, Country")
    const unknown = await optimizer(["ongage-jobs", "start", "no-such-job"])
    expect(unknown.code).not.toBe(0)
    expect(unknown.stderr).toContain("Job not found")
  }, 120_000)
})
