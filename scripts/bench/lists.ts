/**
 * Phone lists: import 1,000,000 numbers typed in messy formats (`+44 7400 123456`, `0044…`,
 * `447…`, `07…` with a GB hint, `+44 (0)…`, French and German numbers) into the blacklist through
 * the real service — normalise, stage by COPY, upsert, move off the other lists, audit — with
 * 10 % of them already on the whitelist or the monitor list, so 100,000 moves happen.
 *
 * Target (issue "Phone numbers, the three lists…"): >= 150,000 rows/s, peak RSS < 300 MB. The
 * reference figure is the same database work done by PostgreSQL alone (COPY + INSERT … SELECT of
 * canonical numbers, no normalisation, no per-number decisions), on a fresh database.
 */
import { Effect, Layer, ManagedRuntime, Result, Stream } from "effect"
import pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import { Lists } from "../../packages/core/src/lists/Lists.ts"
import type { ListEntry, RawListRow } from "../../packages/core/src/lists/ListSchemas.ts"
import { AppConfig, parseSettings } from "../../packages/core/src/platform/Config.ts"
import { DatabaseLayer } from "../../packages/core/src/platform/Database.ts"
import { perSecond, withPeakRss, type Benchmark } from "./support.ts"

const ROWS = 1_000_000

/** The i-th number's canonical key. */
const keyAt = (i: number): string => {
  const country = i % 10
  if (country === 8) return `336${String((i * 7) % 100_000_000).padStart(8, "0")}`
  if (country === 9) return `49151${String((i * 7) % 100_000_000).padStart(8, "0")}`
  // GB mobiles 07400 000000 – 07599 999999; i * 7 mod 2e8 is unique for every i below 2e8.
  return `447${400_000_000 + ((i * 7) % 200_000_000)}`
}

/** The i-th number as an operator's file might spell it. */
const typedAt = (i: number): string => {
  const key = keyAt(i)
  const country = i % 10
  if (country === 8) return `+33 6 ${key.slice(3, 5)} ${key.slice(5, 7)} ${key.slice(7, 9)} ${key.slice(9)}`
  if (country === 9) return `+49 151 ${key.slice(5)}`
  const national = key.slice(2)
  switch (Math.floor(i / 10) % 5) {
    case 0:
      return `+44 ${national.slice(0, 4)} ${national.slice(4)}`
    case 1:
      return `0044${national}`
    case 2:
      return key
    case 3:
      return `0${national.slice(0, 4)} ${national.slice(4, 7)} ${national.slice(7)}`
    default:
      return `+44 (0)${national}`
  }
}

/** Every tenth number is already listed: half on the whitelist, half on the monitor list. */
const preListed = (list: "whitelist" | "monitor"): Array<ListEntry> => {
  const out: Array<ListEntry> = []
  for (let i = list === "whitelist" ? 3 : 13; i < ROWS; i += 20) {
    out.push({ phone: keyAt(i), source: "VOLUUM", reason: "OS_VERSION", metrics: { clicks: 1, visits: 2 } })
  }
  return out
}

function* typedRows(): Generator<RawListRow> {
  for (let i = 0; i < ROWS; i++) yield { phone: typedAt(i), reason: "BENCH", source: "bench" }
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
 * The reference (SPEC.md §5): the same database work done by PostgreSQL's own COPY and SQL, with
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
    await client.query("BEGIN; SET LOCAL jit = off; CREATE TEMP TABLE stage (phone text NOT NULL) ON COMMIT DROP")
    await copyIn(client, "COPY stage (phone) FROM STDIN", keyLines(0, 1))
    await client.query(`DELETE FROM whitelist WHERE custom_variable_1 IN (SELECT phone FROM stage);
      DELETE FROM monitor WHERE custom_variable_1 IN (SELECT phone FROM stage);
      INSERT INTO blacklist (custom_variable_1, reason, source, sticky) SELECT phone, 'BENCH', 'bench', true FROM stage;
      INSERT INTO list_audit (custom_variable_1, action, to_list, reason, source, actor)
        SELECT phone, 'add', 'blacklist', 'BENCH', 'bench', 'bench' FROM stage;
      COMMIT`)
    return performance.now() - started
  } finally {
    await client.end()
  }
}

export const listsBenchmark: Benchmark = {
  name: "lists",
  description: "import 1M messy-format numbers into the blacklist (normalise + upsert + moves + audit), 10 % moved",
  run: async (server) => {
    const url = await server.freshDatabase()
    const parsed = parseSettings({ DATABASE_URL: url, LOG_LEVEL: "Warn" })
    if (Result.isFailure(parsed)) throw parsed.failure
    const runtime = ManagedRuntime.make(
      Lists.layer.pipe(Layer.provide(DatabaseLayer), Layer.provide(Layer.succeed(AppConfig, parsed.success)))
    )
    try {
      await runtime.runPromise(
        Effect.gen(function* () {
          const lists = yield* Lists
          yield* lists.applyEntries("whitelist", preListed("whitelist"), { actor: "bench", mode: "classification" })
          yield* lists.applyEntries("monitor", preListed("monitor"), { actor: "bench", mode: "classification" })
        })
      )
      const started = performance.now()
      const { value: counts, peakRssMb } = await withPeakRss(() =>
        runtime.runPromise(
          Lists.use((lists) =>
            lists.importNumbers("blacklist", Stream.fromIterable(typedRows()), {
              actor: "bench",
              mode: "manual",
              defaultCountry: "GB"
            })
          )
        )
      )
      const ms = performance.now() - started

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
      const referenceMs = await reference(await server.freshDatabase())
      return {
        rows: counts.total,
        "rows/s (normalise + upsert + moves + audit)": perSecond(counts.total, ms),
        seconds: Number((ms / 1000).toFixed(2)),
        "peak RSS MB": peakRssMb,
        added: counts.added,
        moved: counts.moved,
        invalid: counts.invalid,
        "blacklist rows after": db.blacklist,
        "whitelist + monitor rows after": db.whitelist + db.monitor,
        "audit rows written": db.audit,
        "reference rows/s (PostgreSQL COPY + SQL alone)": perSecond(ROWS, referenceMs),
        "reference seconds": Number((referenceMs / 1000).toFixed(2))
      }
    } finally {
      await runtime.dispose()
    }
  }
}
