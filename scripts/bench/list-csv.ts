/**
 * Reading list CSV files (`csvRows`, used by manual imports, `lists import`, `/import-blacklist-csv`
 * and smart cleaning): µs per row for a regular file and for a ragged one, whose rows have fewer
 * cells than its header (csv-parse builds an error object for each such row; see ListCsv.ts).
 */
import { Effect, Stream } from "effect"
import { csvRows } from "@optimizer/core/lists"
import type { Benchmark } from "./support.ts"

const ROWS = 500_000

const file = (ragged: boolean): string => {
  const lines = ["phone,reason,source"]
  for (let i = 0; i < ROWS; i++) {
    const phone = `4477${String(i).padStart(8, "0")}`
    lines.push(ragged && i % 2 === 0 ? phone : `${phone},FRAUD,ops`)
  }
  return lines.join("\n") + "\n"
}

/** µs per row to read `text` in 64 KiB chunks, as an upload arrives; the best of three rounds. */
const microsPerRow = async (text: string): Promise<number> => {
  const bytes = Buffer.from(text)
  const chunks: Array<Uint8Array> = []
  for (let at = 0; at < bytes.length; at += 64 * 1024) chunks.push(bytes.subarray(at, at + 64 * 1024))
  let best = Infinity
  for (let round = 0; round < 3; round++) {
    const started = performance.now()
    async function* upload() {
      yield* chunks
    }
    const rows = await Effect.runPromise(Stream.runCount(csvRows(upload())))
    if (rows !== ROWS + 1) throw new Error(`read ${rows} rows, expected ${ROWS + 1}`)
    best = Math.min(best, ((performance.now() - started) * 1000) / ROWS)
  }
  return Math.round(best * 100) / 100
}

export const listCsvBenchmark: Benchmark = {
  name: "list-csv",
  description: `read a ${ROWS / 1000}k-row list CSV: regular rows vs ragged ones (half the rows without their last two cells)`,
  run: async () => ({
    "regular file, µs per row": await microsPerRow(file(false)),
    "ragged file, µs per row": await microsPerRow(file(true))
  })
}
