/**
 * Lists, find records, exports and jobs against a database (DATABASE_URL): migrate, add numbers to
 * the blacklist with a reason and a source, import a file and a stream, explain, count, remove;
 * then export the blacklist as a job and wait for it.
 *
 *   DATABASE_URL=postgres://… node examples/lists.ts
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ValidationError } from "@optimizer/core/errors"
import { createOptimizer } from "@optimizer/core/promise"

const database = process.env["DATABASE_URL"]
if (database === undefined) throw new Error("set DATABASE_URL")
const dir = mkdtempSync(join(tmpdir(), "optimizer-example-"))

await using optimizer = createOptimizer({ database, storage: { dir: join(dir, "files") } })
console.log("migrate:", await optimizer.migrate())

console.log(
  "add:",
  await optimizer.lists.add(["+44 7700 900111", "07700 900112", "not a number"], {
    list: "blacklist",
    reason: "COMPLAINT",
    source: "crm",
    defaultCountry: "GB"
  })
)
writeFileSync(join(dir, "numbers.csv"), "phone,reason\n+447700900113,STOP\n+447700900114,\n")
console.log("import a file:", await optimizer.lists.importFile(join(dir, "numbers.csv"), { source: "file-import" }))
async function* fromAnotherSystem() {
  yield "+44 7700 900115"
  yield { phone: "+44 7700 900116", reason: "SPAM" }
}
console.log(
  "import a stream:",
  await optimizer.lists.importStream(fromAnotherSystem(), { list: "monitor", source: "stream" })
)

const explained = await optimizer.lists.explain("07700 900111", { defaultCountry: "GB" })
console.log("explain:", explained.list, explained.reason)
console.log("counts:", await optimizer.lists.counts())
console.log("find records:", (await optimizer.records.find("+447700900111")).list)
console.log("remove:", await optimizer.lists.remove("+44 7700 900114", { reason: "resolved" }))
try {
  await optimizer.lists.remove("not a number")
} catch (error) {
  console.log("remove an invalid number:", error instanceof ValidationError ? error.message : error)
}

// A job: the facade runs the job workers in this process (`runJobs`, default true).
const started = await optimizer.exports.start("blacklist")
const job = await optimizer.jobs.wait(started.job_id, { timeoutMs: 60_000 })
console.log("export job:", job.state)
const download = await optimizer.exports.download("blacklist")
const csv = await new Response(download.body).text()
console.log("exported:", download.filename, csv.trim().split("\n").length - 1, "rows")
