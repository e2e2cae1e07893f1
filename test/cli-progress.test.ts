/**
 * Progress of long work as an operator sees it: under a terminal (a pseudo-terminal from util-linux's
 * `script`) a bar with count, rate and ETA is redrawn in place on stderr; on a pipe nothing but the
 * answer; `--progress json` gives JSON lines for scripts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli, runCliInTerminal } from "./support/cli.ts"
import { createTestDatabase, type TestDatabase } from "./support/database.ts"

let dir: string
let db: TestDatabase
let env: Record<string, string>

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "optimizer-progress-"))
  db = await createTestDatabase()
  env = { DATABASE_URL: db.url, STORAGE_DIR: path.join(dir, "files") }
  // 60,000 numbers (~800 KB): read in a dozen chunks, so the bar is drawn several times.
  const numbers = Array.from({ length: 60_000 }, (_, i) => `4477009${String(i).padStart(5, "0")}`)
  writeFileSync(path.join(dir, "numbers.txt"), `${numbers.join("\n")}\n`)
})
afterAll(async () => {
  await db?.drop()
  rmSync(dir, { recursive: true, force: true })
})

describe("progress", () => {
  it("on a terminal: a bar with count, rate and ETA, redrawn in place on one line", async () => {
    const run = await runCliInTerminal(["lists", "import", "monitor", "numbers.txt"], { env, cwd: dir })
    expect(run.code, run.output).toBe(0)
    // Each redraw returns to the line's start and erases the rest of it.
    const redraws = run.output.split("\r\x1b[K").length - 1 + (run.output.match(/\rimport monitor/g)?.length ?? 0)
    expect(redraws).toBeGreaterThanOrEqual(2)
    expect(run.output).toMatch(
      /\rimport monitor \[[#-]{24}\]\s+\d+% [\d.]+ [KM]?B \/ [\d.]+ [KM]?B\s+[\d.]+ [KM]?B\/s\s+ETA \d+:\d\d/
    )
    expect(run.output).toMatch(/\[#{24}\] 100%/)
    expect(run.output).toContain("60000 rows read into monitor")
  })

  it("on a pipe: no bar, only the answer; --progress json: JSON lines on stderr", async () => {
    const piped = await runCli(["lists", "import", "monitor", "numbers.txt", "--json"], { env, cwd: dir })
    expect(piped.code).toBe(0)
    expect(piped.stderr).toBe("")
    expect(JSON.parse(piped.stdout)).toMatchObject({ list: "monitor", total: 60_000 })

    const plain = await runCli(["lists", "import", "monitor", "numbers.txt"], { env, cwd: dir })
    expect(plain.stderr).toBe("")
    expect(plain.stdout).not.toContain("\r")

    const scripted = await runCli(["lists", "import", "monitor", "numbers.txt", "--progress", "json"], {
      env,
      cwd: dir
    })
    expect(scripted.code).toBe(0)
    const lines = scripted.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.length).toBeGreaterThanOrEqual(1)
    expect(lines.at(-1)).toMatchObject({ progress: "import monitor", unit: "bytes", processed: lines.at(-1)!.total })
    expect(Object.keys(lines.at(-1)!)).toEqual(
      expect.arrayContaining(["processed", "total", "rate", "eta_seconds", "elapsed_seconds"])
    )
  })

  it("an export into the store shows its rows under a terminal; --progress json ends at the row count", async () => {
    // the earlier tests imported numbers into the monitor list
    const onList = (
      JSON.parse((await runCli(["lists", "counts", "--json"], { env, cwd: dir })).stdout) as {
        monitor: number
      }
    ).monitor
    expect(onList).toBeGreaterThan(0)
    const run = await runCliInTerminal(["export", "monitor"], { env, cwd: dir })
    expect(run.code, run.output).toBe(0)
    expect(run.output).toMatch(/\rexport monitor .*rows/)
    expect(run.output).toContain(`exported ${onList} rows of monitor`)

    const scripted = await runCli(["export", "monitor", "--progress", "json", "--json"], { env, cwd: dir })
    expect(scripted.code).toBe(0)
    expect(JSON.parse(scripted.stdout)).toMatchObject({ table_name: "monitor", row_count: onList })
    const last = JSON.parse(scripted.stderr.trim().split("\n").at(-1)!) as Record<string, unknown>
    expect(last).toMatchObject({ progress: "export monitor", processed: onList })
  })

  it("--json on a terminal: no bar either, one JSON answer", async () => {
    const run = await runCliInTerminal(["lists", "counts", "--json"], { env, cwd: dir })
    expect(run.code).toBe(0)
    expect(run.output).not.toContain("\r\x1b[K")
    const counts = JSON.parse(run.output) as Record<string, number>
    expect(counts).toMatchObject({ blacklist: 0, whitelist: 0 })
    expect(counts.monitor).toBeGreaterThan(0)
  })
})
