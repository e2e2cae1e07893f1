/**
 * Phone lists: import 1,000,000 numbers typed in messy formats (`+44 7400 123456`, `0044…`,
 * `447…`, `07…` with a GB hint, `+44 (0)…`, French and German numbers) into the blacklist through
 * the real service — normalise, stage by COPY, upsert, move off the other lists, audit — with
 * 10 % of them already on the whitelist or the monitor list, so 100,000 moves happen.
 *
 * Target (issue "Phone numbers, the three lists…"): >= 150,000 rows/s, peak RSS < 300 MB. The
 * reference figure is the same database work done by PostgreSQL alone (COPY + INSERT … SELECT of
 * canonical numbers, no normalisation, no per-number decisions), on a fresh database, inserting in key
 * order as the service does.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Layer, ManagedRuntime, Result } from "effect"
import pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import { AppConfig, DatabaseLayer, Lists, parseSettings, type ListEntry } from "@optimizer/core"
import { keyAt, ROWS } from "./lists-data.ts"
import { perSecond, type Benchmark } from "./support.ts"

/** Every tenth number is already listed: half on the whitelist, half on the monitor list. */
const preListed = (list: "whitelist" | "monitor"): Array<ListEntry> => {
  const out: Array<ListEntry> = []
  for (let i = list === "whitelist" ? 3 : 13; i < ROWS; i += 20) {
    out.push({ phone: keyAt(i), source: "VOLUUM", reason: "OS_VERSION", metrics: { clicks: 1, visits: 2 } })
  }
  return out
}

/** Streams `lines` into `COPY … FROM STDIN`, 256 KiB per write. */
const copyIn = async (client: pg.Client, statement: string, lines: Iterable<string>): Promise<void> => {
  const stream = client.query(copyFrom(statement))
  const done = new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve)
    stream.on("error", reject)
  })
  let buffer = ""
  for (const line of lines) {
    buffer += line
    if (buffer.length >= 256 * 1024) {
      if (!stream.write(buffer)) await new Promise((resolve) => stream.once("drain", resolve))
      buffer = ""
    }
  }
  stream.end(buffer)
  await done
}

function* keyLines(from: number, step: number): Generator<string> {
  for (let i = from; i < ROWS; i += step) yield `${keyAt(i)}\n`
}

/**
 * The reference (`docs/performance.md`): the same database work done by PostgreSQL's own COPY and SQL, with
 * numbers already canonical — COPY into a staging table, delete the moved numbers from the other
 * lists, insert into the blacklist, one audit row each — in one transaction.
 */
const reference = async (url: string): Promise<number> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await copyIn(client, "COPY whitelist (custom_variable_1) FROM STDIN", keyLines(3, 20))
    await copyIn(client, "COPY monitor (custom_variable_1) FROM STDIN", keyLines(13, 20))
    const started = performance.now()
    await client.query(
      'BEGIN; SET LOCAL jit = off; CREATE TEMP TABLE stage (phone text COLLATE "C" NOT NULL) ON COMMIT DROP'
    )
    await copyIn(client, "COPY stage (phone) FROM STDIN", keyLines(0, 1))
    await client.query(`DELETE FROM whitelist WHERE custom_variable_1 IN (SELECT phone FROM stage);
      DELETE FROM monitor WHERE custom_variable_1 IN (SELECT phone FROM stage);
      INSERT INTO blacklist (custom_variable_1, reason, source, sticky) SELECT phone, 'BENCH', 'bench', true FROM stage ORDER BY phone;
      INSERT INTO list_audit (custom_variable_1, action, to_list, reason, source, actor)
        SELECT phone, 'add', 'blacklist', 'BENCH', 'bench', 'bench' FROM stage ORDER BY phone;
      COMMIT`)
    return performance.now() - started
  } finally {
    await client.end()
  }
}

const WORKER = fileURLToPath(new URL("./lists-worker.ts", import.meta.url))

interface WorkerResult {
  readonly ms: number
  readonly cpuSeconds: number
  readonly peakRssMb: number
  readonly counts: { readonly total: number; readonly added: number; readonly moved: number; readonly invalid: number }
}

/** Runs the import in a process of its own (lists-worker.ts); its JSON line. */
const runWorker = (url: string): Promise<WorkerResult> =>
  new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      // The young-generation size the optimizer command runs with (its shebang, the Dockerfile).
      ["--max-semi-space-size=16", "--conditions=@optimizer/source", WORKER],
      { env: { PATH: process.env.PATH ?? "", DATABASE_URL: url }, maxBuffer: 1024 * 1024, timeout: 30 * 60_000 },
      (error, stdout, stderr) => {
        if (error !== null) return reject(new Error(`the list-import worker failed: ${stderr || error.message}`))
        resolve(JSON.parse(stdout.trim().split("\n").pop()!) as WorkerResult)
      }
    )
  )

/**
 * Lists as a long-running installation has them: 2M other numbers (1M blacklisted, 500k each on
 * the whitelist and the monitor list, none of them in the import), analysed as autovacuum would.
 * The import then reads 2.1M keys into its filter, and probes its first rows until it does.
 */
const fillLists = async (url: string): Promise<void> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    // 4478… numbers: outside keyAt's ranges (447400000000–447599999999, 336…, 49151…).
    await client.query(`
      INSERT INTO blacklist (custom_variable_1, reason, source) SELECT (447800000000 + g)::text, 'OLD', 'bench' FROM generate_series(1, 1000000) g;
      INSERT INTO whitelist (custom_variable_1, source) SELECT (447810000000 + g)::text, 'bench' FROM generate_series(1, 500000) g;
      INSERT INTO monitor (custom_variable_1, reason, source) SELECT (447820000000 + g)::text, 'OLD', 'bench' FROM generate_series(1, 500000) g;
      ANALYZE blacklist; ANALYZE whitelist; ANALYZE monitor`)
  } finally {
    await client.end()
  }
}

export const listsBenchmark: Benchmark = {
  name: "lists",
  description: "import 1M messy-format numbers into the blacklist (normalise + upsert + moves + audit), 10 % moved",
  run: async (server) => {
    const main = await importInto(await server.freshDatabase(), "quiet")
    // LISTS_BENCH_REFERENCE=0 skips the reference and the large lists (quicker iterations while tuning).
    const quick = process.env["LISTS_BENCH_REFERENCE"] === "0"
    const referenceMs = quick ? Number.NaN : await reference(await server.freshDatabase())
    const large = quick ? undefined : await importInto(await server.freshDatabase(), "large lists")
    const live = quick ? undefined : await importInto(await server.freshDatabase(), "live writer")
    return {
      ...main,
      "reference rows/s (PostgreSQL COPY + SQL alone)": perSecond(ROWS, referenceMs),
      "reference seconds": Number((referenceMs / 1000).toFixed(2)),
      ...(large === undefined
        ? {}
        : {
            "with 2M other numbers listed: rows/s": large["rows/s (normalise + upsert + moves + audit)"],
            "with 2M other numbers listed: peak RSS MB": large["peak RSS MB (the import's process)"],
            "with 2M other numbers listed: lists after":
              large["blacklist rows after"] + large["whitelist + monitor rows after"]
          }),
      ...(live === undefined
        ? {}
        : {
            "with a live writer: rows/s": live["rows/s (normalise + upsert + moves + audit)"],
            "with a live writer: its writes": live["live writes"]
          })
    }
  }
}

/**
 * A classification writing 10 other numbers to the monitor list every 200 ms, as the SQS consumer
 * does under live traffic, until `running` settles; how many writes it made. Each write bumps its
 * lanes' versions, so the import trusts its filter only until the first one (docs/lists.md).
 */
const liveWriter = async (runtime: ManagedRuntime.ManagedRuntime<Lists, unknown>, running: Promise<unknown>) => {
  let done = false
  void running.then(
    () => (done = true),
    () => (done = true)
  )
  let writes = 0
  while (!done) {
    const entries = Array.from({ length: 10 }, (_, i) => ({ phone: `4479${String(10_000_000 + writes * 10 + i)}` }))
    await runtime.runPromise(
      Lists.use((lists) => lists.applyEntries("monitor", entries, { actor: "bench-live", mode: "classification" }))
    )
    writes++
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return writes
}

/**
 * The import into a fresh database — `large lists`: with `fillLists` first; `live writer`: with
 * `liveWriter` running beside it — and what a user would check.
 */
const importInto = async (url: string, scenario: "quiet" | "large lists" | "live writer") => {
  const parsed = parseSettings({ DATABASE_URL: url, LOG_LEVEL: "Warn" })
  if (Result.isFailure(parsed)) throw parsed.failure
  const runtime = ManagedRuntime.make(
    Lists.layer.pipe(Layer.provide(DatabaseLayer), Layer.provide(Layer.succeed(AppConfig, parsed.success)))
  )
  try {
    if (scenario === "large lists") await fillLists(url)
    await runtime.runPromise(
      Effect.gen(function* () {
        const lists = yield* Lists
        yield* lists.applyEntries("whitelist", preListed("whitelist"), { actor: "bench", mode: "classification" })
        yield* lists.applyEntries("monitor", preListed("monitor"), { actor: "bench", mode: "classification" })
      })
    )
    const importing = runWorker(url)
    const liveWrites = scenario === "live writer" ? await liveWriter(runtime, importing) : 0
    const run = await importing
    const counts = run.counts
    const ms = run.ms

    // What a user would check: every number on exactly one list, one audit row per change.
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const check = await client.query<{ blacklist: number; whitelist: number; monitor: number; audit: number }>(
      `SELECT (SELECT count(*) FROM blacklist)::int AS blacklist, (SELECT count(*) FROM whitelist)::int AS whitelist,
                (SELECT count(*) FROM monitor)::int AS monitor,
                (SELECT count(*) FROM list_audit WHERE actor = 'bench' AND to_list = 'blacklist')::int AS audit`
    )
    await client.end()
    const db = check.rows[0]!
    return {
      rows: counts.total,
      "rows/s (normalise + upsert + moves + audit)": perSecond(counts.total, ms),
      seconds: Number((ms / 1000).toFixed(2)),
      "peak RSS MB (the import's process)": run.peakRssMb,
      "Node CPU seconds (the rest is PostgreSQL's)": Number(run.cpuSeconds.toFixed(2)),
      added: counts.added,
      moved: counts.moved,
      invalid: counts.invalid,
      "blacklist rows after": db.blacklist,
      "whitelist + monitor rows after": db.whitelist + db.monitor,
      "audit rows written": db.audit,
      "live writes": liveWrites
    }
  } finally {
    await runtime.dispose()
  }
}
