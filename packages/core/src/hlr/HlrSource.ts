/**
 * The source of an HLR batch: the processed file's numbers, less those with a cached result younger
 * than `HLR_CACHE_DAYS` (`hlr_lookups_cache`), one per line. Split from `Hlr.ts` (the run) because it
 * is the one part of the run that reads the file and the cache row by row.
 */
import { Effect } from "effect"
import { PgBulk } from "../platform/Database.ts"
import { FileStore } from "../platform/FileStore.ts"

/**
 * The checked numbers without a cached result younger than `HLR_CACHE_DAYS`, as the batch's
 * source (one per line) and their count. The file is read as a stream and looked up in the
 * cache 50,000 numbers at a time, so only the source text is held.
 */
export const numbersToSend = (numbersKey: string, cacheDays: number) =>
  Effect.gen(function* () {
    const files = yield* FileStore
    const bulk = yield* PgBulk
    const body = yield* files.get(numbersKey)
    return yield* bulk.withClient(async (c) => {
      // Each batch's numbers to send written as bytes at once: a million small strings (or a
      // rope of them) would sit in the heap until the end and lift the worker's peak memory.
      const parts: Array<Buffer> = []
      let size = 0
      let count = 0
      let batch: Array<string> = []
      const flush = async () => {
        if (batch.length === 0) return
        const fresh =
          cacheDays <= 0
            ? new Set<string>()
            : new Set(
                (
                  await c.query<{ phone: string }>(
                    `SELECT custom_variable_1 AS phone FROM hlr_lookups_cache
                     WHERE custom_variable_1 = ANY($1::text[]) AND looked_up_at > now() - make_interval(days => $2)`,
                    [batch, cacheDays]
                  )
                ).rows.map((row) => row.phone)
              )
        let bytes = 0
        for (const n of batch) if (!fresh.has(n)) bytes += Buffer.byteLength(n) + 1
        const part = Buffer.allocUnsafe(bytes)
        let at = 0
        for (const n of batch) {
          if (fresh.has(n)) continue
          at += part.write(n, at)
          part[at++] = 10
          count++
        }
        parts.push(part)
        size += bytes
        batch = []
      }
      const decoder = new TextDecoder()
      let rest = ""
      const take = (line: string) => {
        const n = line.trim()
        if (n !== "") batch.push(n)
      }
      for await (const chunk of body) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
        rest = lines.pop() ?? ""
        for (const line of lines) take(line)
        if (batch.length >= 50_000) await flush()
      }
      take(rest + decoder.decode())
      await flush()
      return { csv: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size), count }
    })
  })
