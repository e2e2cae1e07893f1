/**
 * List cleaning, the main job: 1M and 5M target rows in the formats operators upload
 * (`+44 7400 123456`, `0044…`, national `07400 123456` with the GB default, canonical digits), ~5 %
 * repeats of earlier rows in another format, ~2 % invalid, cleaned with all four flags against a
 * 1M-number blacklist, a 100k monitor list, 50k conversions and a 200k main_database (lists loaded
 * by COPY for setup speed), through the real job handler (`Cleaning.runJob`: read the stored file,
 * parse, normalise, COPY, set-based SQL, write the cleaned file, add the kept numbers to
 * main_database, stats) in a worker process of its own (its peak RSS is the figure). The upload is
 * not timed. For 1M, the same file is also cleaned with blacklist + monitor + conversion only (no
 * main_database writes), which is the reference's work plus parsing and normalisation.
 *
 * Reference, same run, same data: PostgreSQL alone on the canonical numbers — COPY into a TEMP
 * table, de-duplicate keeping the first occurrence, anti-join the blacklist and the monitor list,
 * COPY out in order (the reference of `docs/performance.md` "Reference measurements"). It does no parsing, normalisation or header handling,
 * filters two lists instead of four and writes nothing to main_database.
 *
 * Targets (issue "CSV list cleaning"): >= 200,000 rows/s on 1M rows and faster than the reference;
 * peak RSS < 300 MB and within 20 % between the 1M and 5M runs.
 */
import { execFile } from "node:child_process"
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { fileURLToPath } from "node:url"
import { Effect, Result } from "effect"
import pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
import { Cleaning, makeRuntime, parseSettings, type AppRuntime, type CleaningStats } from "@optimizer/core"
import { perSecond, type Benchmark, type BenchServer } from "./support.ts"

/** `CLEANING_BENCH_SIZES=200000` for a quick run. */
const SIZES = (process.env.CLEANING_BENCH_SIZES ?? "1000000,5000000").split(",").map(Number)

/** The canonical key of target number `n`: GB mobiles 07400 000000 – 07449 999999 (all valid). */
const keyOf = (n: number): string => `44${7_400_000_000 + ((n * 7) % 50_000_000)}`

/** Row `i` of the target file: its text and its canonical key (undefined when invalid). */
const rowAt = (i: number): { text: string; key: string | undefined } => {
  if (i % 50 === 49) return { text: i % 100 === 49 ? "n/a" : "12345", key: undefined }
  // Every 20th row repeats the number of 10 rows earlier, in another format.
  const key = keyOf(i % 20 === 19 ? i - 10 : i)
  const national = key.slice(2)
  switch (i % 4) {
    case 0:
      return { text: `+44 ${national.slice(0, 4)} ${national.slice(4)}`, key }
    case 1:
      return { text: `0044${national}`, key }
    case 2:
      return { text: `0${national.slice(0, 4)} ${national.slice(4)}`, key }
    default:
      return { text: key, key }
  }
}

/** Lines gathered into ~64 KiB strings. */
function* batched(lines: Iterable<string>): Generator<string> {
  let text = ""
  for (const line of lines) {
    text += line
    if (text.length >= 65_536) {
      yield text
      text = ""
    }
  }
  if (text !== "") yield text
}

function* targetFile(rows: number): Generator<string> {
  yield "phone\n"
  for (let i = 0; i < rows; i++) yield rowAt(i).text + "\n"
}

function* canonicalNumbers(rows: number): Generator<string> {
  for (let i = 0; i < rows; i++) {
    const { key } = rowAt(i)
    if (key !== undefined) yield key + "\n"
  }
}

/** `count` list numbers, `overlap` of them target numbers (every 10th, offset `offset`), the rest outside the file. */
function* listNumbers(count: number, overlap: number, offset: number, outside: number): Generator<string> {
  for (let k = 0; k < count; k++) yield k < overlap ? keyOf(k * 10 + offset) : `44${outside + k}`
}

const copyIn = async (client: pg.Client, sql: string, lines: Iterable<string>) => {
  await pipeline(Readable.from(batched(lines)), client.query(copyFrom(sql)))
}

const loadLists = async (url: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const tagged = (numbers: Iterable<string>, suffix: string) =>
      (function* () {
        for (const n of numbers) yield `${n}\t${suffix}\n`
      })()
    await copyIn(
      client,
      "COPY blacklist (custom_variable_1, reason, source) FROM STDIN",
      tagged(listNumbers(1_000_000, 100_000, 0, 7_460_000_000), "OS_VERSION\tVOLUUM")
    )
    await copyIn(
      client,
      "COPY monitor (custom_variable_1, reason, source) FROM STDIN",
      tagged(listNumbers(100_000, 20_000, 1, 7_470_000_000), "OS_VERSION\tVOLUUM")
    )
    let i = 0
    await copyIn(
      client,
      "COPY api_voluum_conversions (custom_variable_1, click_id, transaction_id, conversion_type) FROM STDIN",
      (function* () {
        for (const n of listNumbers(50_000, 10_000, 2, 7_480_000_000)) yield `${n}\tc${i}\tt${i++}\tREG\n`
      })()
    )
    await copyIn(
      client,
      "COPY main_database (custom_variable_1, timestamp_created) FROM STDIN",
      tagged(listNumbers(200_000, 50_000, 3, 7_490_000_000), "2026-01-01T00:00:00Z")
    )
    // The steady state of a production database: lists vacuumed (visibility map set) and checkpointed.
    await client.query("VACUUM ANALYZE blacklist, monitor, api_voluum_conversions, main_database")
    await client.query("CHECKPOINT")
  } finally {
    await client.end()
  }
}

/** The SQL reference: COPY canonical numbers in, de-duplicate keeping order, anti-join two lists, COPY out to a file. */
const reference = async (url: string, rows: number, dir: string): Promise<{ ms: number }> => {
  // The canonical numbers are written to a file first, so the timed part is PostgreSQL's work alone.
  const input = path.join(dir, `reference-in-${rows}.txt`)
  await pipeline(Readable.from(batched(canonicalNumbers(rows))), createWriteStream(input))
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const started = performance.now()
    await client.query("BEGIN")
    // The same session settings the pipeline uses: a fair reference, not a spilling one.
    await client.query("SET LOCAL work_mem = '128MB'; SET LOCAL jit = off")
    await client.query("CREATE TEMP TABLE reference_numbers (seq bigserial, phone text NOT NULL) ON COMMIT DROP")
    await pipeline(createReadStream(input), client.query(copyFrom("COPY reference_numbers (phone) FROM STDIN")))
    const out = createWriteStream(path.join(dir, `reference-out-${rows}.txt`))
    await pipeline(
      client.query(
        copyTo(`COPY (
          SELECT u.phone FROM (SELECT phone, min(seq) AS seq FROM reference_numbers GROUP BY phone) u
          WHERE NOT EXISTS (SELECT 1 FROM blacklist b WHERE b.custom_variable_1 = u.phone)
            AND NOT EXISTS (SELECT 1 FROM monitor m WHERE m.custom_variable_1 = u.phone)
          ORDER BY u.seq) TO STDOUT`)
      ),
      out
    )
    await client.query("COMMIT")
    return { ms: performance.now() - started }
  } finally {
    await client.end()
  }
}

const WORKER = fileURLToPath(new URL("./cleaning-worker.ts", import.meta.url))

/** Runs the job handler in a worker process (cleaning-worker.ts); its JSON line. */
const runWorker = (env: Record<string, string>): Promise<{ ms: number; peakRssMb: number; status: string }> =>
  new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      // The young-generation size the optimizer command runs with (its shebang, the Dockerfile):
      // without it V8 sizes the young generation from the machine and lets it grow with the run's
      // length, which is what made the 5M run's RSS larger than the 1M run's.
      ["--max-semi-space-size=16", "--conditions=@optimizer/source", WORKER],
      {
        env: {
          PATH: process.env.PATH ?? "",
          LOG_LEVEL: "Warn",
          ...(process.env.OPTIMIZER_TRACE_CLEANING
            ? { OPTIMIZER_TRACE_CLEANING: process.env.OPTIMIZER_TRACE_CLEANING }
            : {}),
          ...env
        },
        maxBuffer: 1024 * 1024,
        timeout: 30 * 60_000
      },
      (error, stdout, stderr) => {
        if (error !== null) return reject(new Error(`the cleaning worker failed: ${stderr || error.message}`))
        if (process.env.OPTIMIZER_TRACE_CLEANING) process.stderr.write(stderr)
        resolve(JSON.parse(stdout.trim().split("\n").pop()!) as { ms: number; peakRssMb: number; status: string })
      }
    )
  )

interface Timed {
  readonly ms: number
  readonly peakRssMb: number
  readonly stats: CleaningStats
}

/** Uploads the target file (not timed), queues it, and times its job handler in a worker process. */
const cleanOnce = async (
  runtime: AppRuntime,
  env: { readonly url: string; readonly storageDir: string },
  rows: number,
  includeMainDatabase: boolean
): Promise<Timed> => {
  const { id, run, jobId } = await runtime.runPromise(
    Effect.gen(function* () {
      const cleaning = yield* Cleaning
      const uploaded = yield* cleaning.upload("bench.csv", Readable.from(batched(targetFile(rows))))
      const started = yield* cleaning.process(uploaded.id, {
        includeBlacklist: true,
        includeMonitor: true,
        includeConversion: true,
        includeMainDatabase,
        country: "GB"
      })
      const file = yield* cleaning.get(uploaded.id)
      return { id: uploaded.id, run: file.processing_started_at!.toISOString(), jobId: started.job_id }
    })
  )
  // The job handler in a worker process of its own (no queue polling in the figure).
  const worker = await runWorker({
    DATABASE_URL: env.url,
    STORAGE_DIR: env.storageDir,
    FILE_ID: id,
    JOB_ID: jobId,
    RUN: run
  })
  if (worker.status !== "processed") throw new Error(`the run did not finish: ${JSON.stringify(worker)}`)
  const stats = await runtime.runPromise(Cleaning.use((cleaning) => cleaning.stats(id)))
  const removed =
    stats.removed_blacklist +
    stats.removed_monitor +
    stats.removed_conversion +
    stats.removed_maindatabase +
    stats.removed_duplicates +
    stats.removed_invalid
  if (stats.total_records !== rows || stats.total_records !== stats.final_clean_count + removed) {
    throw new Error(`stats do not add up: ${JSON.stringify(stats)}`)
  }
  return { ms: worker.ms, peakRssMb: worker.peakRssMb, stats }
}

/**
 * One size on a fresh database: all four flags; for 1M also blacklist + monitor + conversion alone
 * (no main_database writes: the same work as the reference, plus parsing and normalising); then the
 * SQL reference.
 */
const runSize = async (server: BenchServer, rows: number, storageDir: string) => {
  const url = await server.freshDatabase()
  await loadLists(url)
  const parsed = parseSettings({ DATABASE_URL: url, LOG_LEVEL: "Warn", STORAGE_DIR: storageDir })
  if (Result.isFailure(parsed)) throw parsed.failure
  const runtime = makeRuntime(parsed.success)
  try {
    const all = await cleanOnce(runtime, { url, storageDir }, rows, true)
    const withoutMain = rows === 1_000_000 ? await cleanOnce(runtime, { url, storageDir }, rows, false) : undefined
    const ref = await reference(url, rows, storageDir)
    return { all, withoutMain, ref }
  } finally {
    await runtime.dispose()
  }
}

export const cleaningBenchmark: Benchmark = {
  name: "cleaning",
  description:
    "clean 1M and 5M messy rows with all four flags (1M blacklist, 100k monitor) vs the SQL reference on the same data",
  run: async (server) => {
    const storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-bench-cleaning-"))
    const figures: Record<string, number | string> = {}
    try {
      const peaks: Array<number> = []
      for (const rows of SIZES) {
        const label = rows >= 1_000_000 ? `${rows / 1_000_000}M` : `${rows / 1000}k`
        const { all, withoutMain, ref } = await runSize(server, rows, storageDir)
        const { ms, peakRssMb, stats } = all
        peaks.push(peakRssMb)
        figures[`${label}: rows/s (all flags, end to end)`] = perSecond(rows, ms)
        figures[`${label}: seconds`] = Number((ms / 1000).toFixed(2))
        figures[`${label}: worker peak RSS MB`] = peakRssMb
        figures[`${label}: SQL reference rows/s`] = perSecond(rows, ref.ms)
        figures[`${label}: ratio to the reference`] = Number((ref.ms / ms).toFixed(2))
        figures[`${label}: kept / dup / invalid / black / mon / conv / main`] = [
          stats.final_clean_count,
          stats.removed_duplicates,
          stats.removed_invalid,
          stats.removed_blacklist,
          stats.removed_monitor,
          stats.removed_conversion,
          stats.removed_maindatabase
        ].join(" / ")
        if (withoutMain !== undefined) {
          figures[`${label}: rows/s without main_database (3 flags)`] = perSecond(rows, withoutMain.ms)
          figures[`${label}: ratio to the reference, 3 flags`] = Number((ref.ms / withoutMain.ms).toFixed(2))
        }
      }
      if (peaks.length === 2) {
        figures["peak RSS growth 1M → 5M"] = `${(((peaks[1]! - peaks[0]!) / peaks[0]!) * 100).toFixed(1)} %`
      }
      return figures
    } finally {
      rmSync(storageDir, { recursive: true, force: true })
    }
  }
}
