/**
 * Cleaning a local file (DATABASE_URL): invalid numbers, repeats and blacklisted numbers removed;
 * the counts come back, the cleaned list is written to `out`.
 *
 *   DATABASE_URL=postgres://… node examples/cleaning.ts
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createOptimizer } from "@optimizer/core/promise"

const database = process.env["DATABASE_URL"]
if (database === undefined) throw new Error("set DATABASE_URL")
const dir = mkdtempSync(join(tmpdir(), "optimizer-example-"))

await using optimizer = createOptimizer({ database, storage: { dir: join(dir, "files") } })
await optimizer.migrate()
await optimizer.lists.add("+44 7700 900201", { reason: "COMPLAINT", source: "example" })

const input = join(dir, "campaign.csv")
writeFileSync(input, "name,phone\nAda,+44 7700 900201\nBob,07700 900202\nBob again,+447700900202\nEve,12345\n")
const stats = await optimizer.cleaning.cleanFile(input, {
  out: join(dir, "cleaned.txt"),
  rejectsOut: join(dir, "rejects.csv"),
  includeBlacklist: true,
  country: "GB"
})
console.log("stats:", JSON.stringify(stats))
console.log("cleaned:", readFileSync(join(dir, "cleaned.txt"), "utf8").trim().split("\n"))
