/**
 * The operator's commands as child processes, as a shell runs them: `encrypt` / `decrypt` (one
 * value, or a CSV with --file), `classify`, and `export` (to a file, or to the store).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import vectors from "../packages/core/test/encryption/aes-gcm-tokens.json" with { type: "json" }
import { runCli } from "./support/cli.ts"
import { createTestDatabase, type TestDatabase } from "./support/database.ts"

let dir: string

/**
 * Runs `optimizer …` in a scratch folder with only the given settings (no .env, no inherited
 * secrets). Each run is a Node process that loads the TypeScript sources: a few seconds on a busy
 * 2-core machine, hence the generous timeouts.
 */
const optimizer = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => runCli(args, { cwd: dir, env })

const withKey = { AES_KEY: vectors.aes_key }

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "optimizer-cli-"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("encrypt / decrypt", { timeout: 120_000 }, () => {
  it("encrypt <value> --json gives a token that decrypt <token> --json turns back", async () => {
    const encrypted = await optimizer(["encrypt", "447700900123", "--json"], withKey)
    expect(encrypted.code).toBe(0)
    const { value, token } = JSON.parse(encrypted.stdout) as { value: string; token: string }
    expect(value).toBe("447700900123")
    expect(token).toMatch(/^[A-Za-z0-9_-]{54}$/)
    const decrypted = await optimizer(["decrypt", token, "--json"], withKey)
    expect(decrypted.code).toBe(0)
    expect(JSON.parse(decrypted.stdout)).toEqual({ token, value: "447700900123" })
  })

  it("decrypt accepts the original's tokens, and plain output is the value alone", async () => {
    const vector = vectors.vectors[1]!
    const run = await optimizer(["decrypt", vector.token_standard_padded], withKey)
    expect(run).toMatchObject({ code: 0, stdout: `${vector.plaintext}\n` })
  })

  it("a token that does not decrypt, a missing key, or no value: exit 1 with the reason on stderr", async () => {
    const [foreign, notToken, noKey, nothing] = await Promise.all([
      optimizer(["decrypt", "A".repeat(54)], withKey),
      optimizer(["decrypt", "not a token!"], withKey),
      optimizer(["encrypt", "447700900123"]),
      optimizer(["encrypt"], withKey)
    ])
    expect(foreign.code).toBe(1)
    expect(foreign.stderr).toMatch(/does not decrypt with AES_KEY/)
    expect(foreign.stdout).toBe("")
    expect(notToken.code).toBe(1)
    expect(notToken.stderr).toMatch(/not a token/)
    expect(noKey.code).toBe(1)
    expect(noKey.stderr).toMatch(/AES_KEY/)
    expect(nothing.code).toBe(1)
    expect(nothing.stderr).toMatch(/give a value to encrypt, or --file/)
  })

  it("file forms: encrypt --file --out writes value,token lines; decrypt --file writes token,plaintext", async () => {
    writeFileSync(path.join(dir, "in.csv"), "phone\n447700900123\n\n15555550100,extra\n")
    const encrypted = await optimizer(["encrypt", "--file", "in.csv", "--out", "out.csv", "--json"], withKey)
    expect(encrypted.code).toBe(0)
    expect(JSON.parse(encrypted.stdout)).toEqual({ records: 3, failed: 0, out: "out.csv" })
    const lines = readFileSync(path.join(dir, "out.csv"), "utf8").trimEnd().split("\n")
    expect(lines.map((l) => l.split(",")[0])).toEqual(["phone", "447700900123", "15555550100"])

    writeFileSync(path.join(dir, "tokens.csv"), lines.map((l) => l.split(",")[1]).join("\n") + "\nbogus\n")
    const decrypted = await optimizer(["decrypt", "--file", "tokens.csv"], withKey)
    expect(decrypted.code).toBe(0)
    const back = decrypted.stdout.trimEnd().split("\n")
    expect(back.map((l) => l.split(",")[1])).toEqual(["phone", "447700900123", "15555550100", ""])
    expect(decrypted.stderr).toMatch(/decrypted 4 values, 1 failed/)

    const missing = await optimizer(["encrypt", "--file", "nope.csv"], withKey)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/no such file: nope.csv/)
  })
})

describe.concurrent("classify", { timeout: 120_000 }, () => {
  it('classify "IOS 18.7" --json names the category and the rule', async () => {
    const run = await optimizer(["classify", "IOS 18.7", "--json"])
    expect(run.code).toBe(0)
    const decision = JSON.parse(run.stdout) as { category: string; rule: string }
    expect(decision.category).toBe("WHITELIST")
    expect(decision.rule).toEqual(expect.any(String))
    expect(Object.keys(decision)).toEqual(["category", "rule"])
  })

  it("odd OS strings are UNKNOWN, never a crash", async () => {
    const run = await optimizer(["classify", "Android ", "--json"])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ category: "UNKNOWN" })
  })
})

describe("export", { timeout: 120_000 }, () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await createTestDatabase()
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    await client.query(
      `INSERT INTO monitor (custom_variable_1, reason, source) VALUES ('447700900123', 'OS_VERSION', 'VOLUUM')`
    )
    await client.end()
  })
  afterAll(() => db?.drop())

  it("export <table> --out streams the table as CSV with a header into the file", async () => {
    const run = await optimizer(["export", "monitor", "--out", "monitor.csv", "--json"], { DATABASE_URL: db.url })
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ table: "monitor", out: "monitor.csv" })
    const lines = readFileSync(path.join(dir, "monitor.csv"), "utf8").trimEnd().split("\n")
    expect(lines[0]).toMatch(/^custom_variable_1,/)
    expect(lines).toHaveLength(2)
    expect(lines[1]).toMatch(/^447700900123,.*OS_VERSION,VOLUUM/)
  })

  it("export <table> without --out stores and records the export and prints where", async () => {
    const run = await optimizer(["export", "monitor", "--json"], { DATABASE_URL: db.url, STORAGE_DIR: "store" })
    expect(run.code).toBe(0)
    const done = JSON.parse(run.stdout) as { status: string; row_count: number; location: string; file_path: string }
    expect(done).toMatchObject({ status: "completed", row_count: 1 })
    expect(done.location).toBe(path.join(dir, "store", done.file_path))
    expect(readFileSync(done.location, "utf8")).toMatch(/^custom_variable_1,/)
  })

  it("a table that is not allow-listed: exit 1 naming the allowed ones", async () => {
    const run = await optimizer(["export", "api_keys"], { DATABASE_URL: db.url })
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/cannot be exported; the allowed tables are: blacklist/)
  })
})
