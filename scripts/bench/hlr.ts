/**
 * HLR: a processed file of 1,000,000 numbers through the real HLR job against the fake hlrlookup
 * batch API (`test/fakes/hlrlookup.ts`) — the numbers read and sent as one batch, the results (1M
 * rows, 27 dotted columns, every category) parsed and applied as they download, a copy streamed into
 * the store on the way: 200,000
 * blacklist entries (dead and risky), 100,000 monitor entries, 100,000 of them moved off the
 * whitelist, the audit, 700,000 live rows, the cache and the clean file.
 *
 * Target (issue "HLR lookups on cleaned files"): the results file parsed and applied at >= 150,000
 * rows/s (timed from the results download asked for to the job's end; the whole run, with the
 * upload and polling, is reported beside it), peak RSS < 300 MB. The reference
 * in the same run is the list import (`Lists.importNumbers`) of the same numbers into the blacklist.
 */
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { startFakeHlr, type Outcome } from "../../test/fakes/hlrlookup.ts"
import { perSecond, type Benchmark } from "./support.ts"

const ROWS = Number(process.env["HLR_BENCH_ROWS"] ?? 1_000_000)
const PREFIX = "4474"
const WORKER = fileURLToPath(new URL("./hlr-worker.ts", import.meta.url))

/** By the number's index: 10 % dead, 10 % absent (monitor), 10 % live on a risky network, the rest live. */
const outcomeAt = (i: number): Outcome =>
  i % 10 === 0
    ? { live_status: "DEAD" }
    : i % 10 === 1
      ? { live_status: "ABSENT_SUBSCRIBER" }
      : i % 10 === 2
        ? { live_status: "LIVE", network: "Aero2" }
        : { live_status: "LIVE" }

interface WorkerResult {
  readonly ms: number
  /** `Date.now()` in the worker when the job returned. */
  readonly endedAt: number
  readonly cpuSeconds: number
  readonly peakRssMb: number
  readonly referenceMs: number
  readonly result: { readonly counts?: { readonly results: number; readonly liveRowsAdded: number } }
}

export const hlrBenchmark: Benchmark = {
  name: "hlr",
  description:
    "HLR of 1M numbers against the fake: one batch, results streamed, parsed and applied (lists, live rows, cache)",
  run: async (server) => {
    const url = await server.freshDatabase()
    const referenceUrl = await server.freshDatabase()
    const fake = await startFakeHlr({ pollsToComplete: 1 })
    fake.state.outcomeFor = (n) => outcomeAt(Number(n.slice(PREFIX.length)))
    const storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-bench-hlr-"))
    const db = new pg.Client({ connectionString: url })
    await db.connect()
    try {
      const { rows } = await db.query<{ id: string }>(
        "INSERT INTO uploaded_csv_files (original_filename, status, processed_at) VALUES ('bench.csv', 'processed', now()) RETURNING id::text"
      )
      const id = rows[0]!.id
      mkdirSync(path.join(storageDir, "processed"), { recursive: true })
      const lines: Array<string> = []
      for (let i = 0; i < ROWS; i++) lines.push(`${PREFIX}${String(i).padStart(8, "0")}\n`)
      writeFileSync(path.join(storageDir, "processed", `${id}.csv`), lines.join(""))
      await db.query("UPDATE uploaded_csv_files SET processed_file_path = $2 WHERE id = $1", [
        id,
        `processed/${id}.csv`
      ])
      // Half the dead and half the absent numbers are on the whitelist: they move.
      await db.query(
        `INSERT INTO whitelist (custom_variable_1, source)
         SELECT $1 || lpad(g::text, 8, '0'), 'bench' FROM generate_series(0, $2 - 1) g WHERE g % 20 IN (0, 11)`,
        [PREFIX, ROWS]
      )
      await db.query("ANALYZE whitelist")
      const figures = await new Promise<WorkerResult>((resolve, reject) =>
        execFile(
          process.execPath,
          [
            "--max-semi-space-size=16",
            ...(process.env.HLR_TRACE_GC === undefined ? [] : ["--trace-gc"]),
            "--conditions=@optimizer/source",
            // HLR_CPU_PROF=<dir>: a CPU profile of the worker written there (node --cpu-prof).
            ...(process.env.HLR_CPU_PROF === undefined
              ? []
              : ["--cpu-prof", `--cpu-prof-dir=${process.env.HLR_CPU_PROF}`]),
            WORKER
          ],
          {
            env: {
              PATH: process.env.PATH ?? "",
              DATABASE_URL: url,
              REFERENCE_DATABASE_URL: referenceUrl,
              STORAGE_DIR: storageDir,
              HLRLOOKUP_APIKEY: fake.state.credentials.apiKey,
              HLRLOOKUP_SECRET: fake.state.credentials.secret,
              HLR_API_URL: fake.url,
              HLR_POLL_EVERY_SECONDS: "1",
              ...(process.env.HLR_MEM_TRACE === undefined ? {} : { HLR_MEM_TRACE: "1" }),
              FILE_ID: id,
              ROWS: String(ROWS),
              PREFIX
            },
            maxBuffer: 16 * 1024 * 1024,
            timeout: 30 * 60_000
          },
          (error, stdout, stderr) => {
            process.stderr.write(stderr)
            if (error !== null) return reject(new Error(`the HLR worker failed: ${stderr || error.message}`))
            if (process.env.HLR_TRACE_GC !== undefined) process.stderr.write(stdout)
            resolve(JSON.parse(stdout.trim().split("\n").pop()!) as WorkerResult)
          }
        )
      )
      // The figure: from the results download asked for to everything applied (the download
      // into the store, the parse, the lists with moves and audit, live rows, cache, clean file). The
      // fake is in this process and the job in the worker: both clocks are this machine's.
      // The download ends when the fake sent its last byte: the worker parses the results as they
      // arrive and the fake sends only as fast as the worker reads, so it spans most of the pass (the
      // rest is the commits and the list writes finishing), not the transfer alone.
      const resultsAt = fake.state.resultsRequestedAt
      if (resultsAt === undefined) throw new Error("the HLR worker never downloaded the results")
      const applyMs = figures.endedAt - resultsAt
      return {
        rows: ROWS,
        "rows/s (results parsed, applied)": perSecond(ROWS, applyMs),
        "seconds (results parsed, applied)": Number((applyMs / 1000).toFixed(2)),
        "seconds (download, overlapped)": Number(
          (((fake.state.resultsSentAt ?? resultsAt) - resultsAt) / 1000).toFixed(2)
        ),
        "rows/s (whole run)": perSecond(ROWS, figures.ms),
        "seconds (whole run)": Number((figures.ms / 1000).toFixed(2)),
        "cpu seconds": Number(figures.cpuSeconds.toFixed(2)),
        "peak RSS MB": figures.peakRssMb,
        "live rows added": figures.result.counts?.liveRowsAdded ?? 0,
        "reference rows/s (list import)": perSecond(ROWS, figures.referenceMs),
        "batches created": fake.state.batchesCreated
      }
    } finally {
      await db.end()
      await fake.close()
      rmSync(storageDir, { recursive: true, force: true })
    }
  }
}
