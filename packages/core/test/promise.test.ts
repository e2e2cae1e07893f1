/**
 * The Promise facade against a real database: configured by an options object (bad options throw
 * `InvalidConfig` at once), lazy (a list operation opens the pool but creates neither pg-boss's
 * schema nor the file-store folder; the first job does), failures are the exported error classes,
 * and `await using` / `close()` release everything.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Readable } from "node:stream"
import { afterAll, describe, expect, it } from "vitest"
import { useDatabaseWithClient } from "../../../test/support/database.ts"
import { InvalidConfig, NotConfigured, ValidationError } from "../src/platform/Errors.ts"
import { createOptimizer } from "../src/promise.ts"

const database = useDatabaseWithClient()
const dir = mkdtempSync(join(tmpdir(), "optimizer-facade-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const pgBossSchemaExists = async () =>
  (await database.client.query("SELECT 1 FROM pg_namespace WHERE nspname = 'pgboss'")).rowCount === 1

describe("createOptimizer", () => {
  it("throws InvalidConfig naming every bad option, before connecting anything", () => {
    expect(() => createOptimizer({ database: "mysql://x", workerConcurrency: 0 })).toThrow(InvalidConfig)
    try {
      createOptimizer({ database: "mysql://x", workerConcurrency: 0 })
    } catch (error) {
      expect((error as InvalidConfig).message).toMatch(/database\.url.*workerConcurrency/)
    }
  })

  it("builds lazily: lists use the pool only; the first job starts pg-boss and the file store", async () => {
    const files = join(dir, "files")
    {
      await using optimizer = createOptimizer({ database: database.db.url, storage: { dir: files } })
      expect(optimizer.phone.normalize("07700 900123", "GB")).toEqual({ ok: true, e164: "447700900123", country: "GB" })

      const added = await optimizer.lists.add(["+44 7700 900601", "07700 900602", "nope"], {
        reason: "COMPLAINT",
        source: "facade-test",
        defaultCountry: "GB"
      })
      expect(added).toMatchObject({ added: 2, invalid: 1, total: 3 })
      const explained = await optimizer.lists.explain("07700 900602", { defaultCountry: "GB" })
      expect(explained).toMatchObject({ list: "blacklist", reason: "COMPLAINT" })
      await expect(optimizer.lists.remove("nope")).rejects.toBeInstanceOf(ValidationError)
      expect(
        await optimizer.lists.move("07700 900601", "monitor", { defaultCountry: "GB", reason: "REVIEW" })
      ).toMatchObject({
        moved: 1
      })
      await expect(optimizer.encryption.encrypt("447700900601")).rejects.toBeInstanceOf(NotConfigured)
      expect(await pgBossSchemaExists()).toBe(false)
      expect(existsSync(files)).toBe(false)

      const started = await optimizer.exports.start("blacklist")
      const job = await optimizer.jobs.wait(started.job_id, { timeoutMs: 30_000, pollMs: 100 })
      expect(job.state).toBe("completed")
      expect(await pgBossSchemaExists()).toBe(true)
      expect(existsSync(files)).toBe(true)

      const out = join(dir, "cleaned.txt")
      const stats = await optimizer.cleaning.cleanStream(
        Readable.from(["phone\n+447700900601\n", "07700 900603\n12\n"]),
        {
          out,
          country: "GB",
          includeMonitor: true
        }
      )
      expect(stats).toMatchObject({ total_records: 3, removed_monitor: 1, removed_invalid: 1, final_clean_count: 1 })
      expect(readFileSync(out, "utf8").trim()).toBe("447700900603")
    }
    // Left the block: every pool of the facade is closed. A closed connection's server process may
    // still be listed for a moment while it exits, so the count is read until it reaches 0.
    const openConnections = async () =>
      Number(
        (
          await database.client.query<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'optimizer'"
          )
        ).rows[0]!.n
      )
    let open = await openConnections()
    for (const deadline = Date.now() + 10_000; open > 0 && Date.now() < deadline; open = await openConnections()) {
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(open).toBe(0)
  })

  it("a closed optimizer rejects", async () => {
    const optimizer = createOptimizer({ database: database.db.url })
    await optimizer.close()
    await expect(optimizer.lists.counts()).rejects.toThrow(/closed/)
  })
})
