/**
 * `npm run bench`: the performance figures of the docs, measured on this machine. Each benchmark
 * in scripts/bench/ runs against a fresh database (DATABASE_URL's server, else the embedded one)
 * and prints its figures; the whole run is also written to .bench/results.json.
 *
 *   npm run bench                 # every benchmark
 *   npm run bench -- http         # only those whose name contains "http"
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { benchmarks } from "./bench/index.ts"
import { benchDatabaseServer } from "./bench/support.ts"

const filter = process.argv.slice(2).filter((a) => !a.startsWith("-"))
const selected = benchmarks.filter((b) => filter.length === 0 || filter.some((f) => b.name.includes(f)))
if (selected.length === 0) {
  console.error(`no benchmark matches ${filter.join(", ")}; there are: ${benchmarks.map((b) => b.name).join(", ")}`)
  process.exit(2)
}

const server = await benchDatabaseServer()
const results: Array<{ name: string; figures: Record<string, number | string> }> = []
try {
  for (const bench of selected) {
    console.log(`\n== ${bench.name}: ${bench.description}`)
    const started = performance.now()
    const figures = await bench.run(server)
    await server.dropDatabases()
    for (const [k, v] of Object.entries(figures)) console.log(`   ${k.padEnd(34)} ${v}`)
    console.log(`   (${((performance.now() - started) / 1000).toFixed(1)} s)`)
    results.push({ name: bench.name, figures })
  }
} finally {
  await server.stop()
}
mkdirSync(".bench", { recursive: true })
writeFileSync(
  ".bench/results.json",
  JSON.stringify(
    { at: new Date().toISOString(), node: process.version, cpus: (await import("node:os")).cpus().length, results },
    null,
    2
  )
)
console.log("\nwritten to .bench/results.json")
