/**
 * `optimizer lists …` as a shell runs it: a child process on a test database, JSON on stdout with
 * `--json`, the reason on stderr and a non-zero exit when something is wrong.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli } from "./support/cli.ts"
import { createTestDatabase, type TestDatabase } from "./support/database.ts"

let dir: string
let db: TestDatabase

/** Runs `optimizer …` in a scratch folder with only the given settings. */
const optimizer = (args: ReadonlyArray<string>) => runCli(args, { cwd: dir, env: { DATABASE_URL: db.url } })

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "optimizer-lists-cli-"))
  db = await createTestDatabase()
})
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await db?.drop()
})

describe("optimizer lists", () => {
  it("import <list> <file> --json prints the counts; explain, remove, counts and export follow", async () => {
    writeFileSync(path.join(dir, "numbers.txt"), "+44 7700 900123\n07700 900124\n447700900123\nnot-a-number\n")
    const imported = await optimizer([
      "lists",
      "import",
      "blacklist",
      "numbers.txt",
      "--country",
      "GB",
      "--reason",
      "FRAUD",
      "--source",
      "ops",
      "--json"
    ])
    expect(imported.stderr).toBe("")
    expect(imported.code).toBe(0)
    expect(JSON.parse(imported.stdout)).toEqual({
      list: "blacklist",
      total: 4,
      added: 2,
      moved: 0,
      updated: 0,
      unchanged: 0,
      keptSticky: 0,
      invalid: 1,
      // the file types one number twice: counted, written once
      repeated: 1,
      invalidSamples: ["not-a-number"]
    })

    writeFileSync(path.join(dir, "white.csv"), "Phone,Reason\n447700900124,OS\n447700900125,OS\n")
    const moved = JSON.parse((await optimizer(["lists", "import", "whitelist", "white.csv", "--json"])).stdout)
    expect(moved).toMatchObject({ added: 1, moved: 1 })

    const explained = await optimizer(["lists", "explain", "+44 7700 900123", "--json"])
    expect(explained.code).toBe(0)
    expect(JSON.parse(explained.stdout)).toMatchObject({
      phone: "447700900123",
      list: "blacklist",
      reason: "FRAUD",
      source: "ops",
      sticky: true,
      history: [{ action: "add", to_list: "blacklist", actor: "cli" }]
    })

    const removed = await optimizer(["lists", "remove", "447700900123", "447700900999", "--json"])
    expect(JSON.parse(removed.stdout)).toEqual({ removed: 1, not_listed: 1, invalid: [] })

    const counts = await optimizer(["lists", "counts", "--json"])
    expect(JSON.parse(counts.stdout)).toEqual({ blacklist: 0, whitelist: 2, monitor: 0 })

    const exported = await optimizer(["lists", "export", "whitelist", "white-export.csv"])
    expect(exported.code).toBe(0)
    const lines = readFileSync(path.join(dir, "white-export.csv"), "utf8").trim().split("\n")
    expect(lines[0]!.startsWith("custom_variable_1,")).toBe(true)
    expect(
      lines
        .slice(1)
        .map((l) => l.split(",")[0])
        .sort()
    ).toEqual(["447700900124", "447700900125"])
  })

  it("fails with exit 1 and the reason on stderr", async () => {
    writeFileSync(path.join(dir, "empty.csv"), "")
    const [empty, country, invalid] = await Promise.all([
      optimizer(["lists", "import", "monitor", "empty.csv"]),
      optimizer(["lists", "import", "monitor", "empty.csv", "--country", "XX"]),
      optimizer(["lists", "explain", "hello"])
    ])
    expect(empty.code).toBe(1)
    expect(empty.stderr).toMatch(/no numbers/)
    expect(country.code).toBe(1)
    expect(country.stderr).toMatch(/unknown country code "XX"/)
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toMatch(/INVALID_PHONE_NUMBER/)
  }, 120_000)
})
