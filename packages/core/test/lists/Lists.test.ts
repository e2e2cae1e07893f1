/**
 * The phone lists against a real PostgreSQL database of their own: a number is on one list at a
 * time whatever wrote it, sticky entries survive the Voluum classification but not an admin,
 * every change leaves an audit row naming its actor, one number typed two ways is one entry,
 * explain tells where a number is and how it got there, and bulk writes take 50,000 rows at once.
 */
import { Effect, Exit, Layer, ManagedRuntime, Stream } from "effect"
import pg from "pg"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { Lists } from "../../src/lists/Lists.ts"
import { sinkFilterCounts } from "../../src/lists/ListWriteSink.ts"
import type { ApplyOptions, ListEntry, ListName } from "../../src/lists/ListSchemas.ts"
import { AppConfig } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"

const makeRuntime = (url: string) =>
  ManagedRuntime.make(
    Lists.layer.pipe(Layer.provide(DatabaseLayer), Layer.provide(AppConfig.layerFrom({ DATABASE_URL: url })))
  )

let db: TestDatabase
let runtime: ReturnType<typeof makeRuntime>
let client: pg.Client

beforeAll(async () => {
  db = await createTestDatabase()
  runtime = makeRuntime(db.url)
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
})

afterAll(async () => {
  await runtime?.dispose()
  await client?.end()
  await db?.drop()
})

beforeEach(async () => {
  await client.query("TRUNCATE blacklist, whitelist, monitor, list_audit, main_database")
})

const lists = <A, E>(f: (lists: Lists["Service"]) => Effect.Effect<A, E>) => runtime.runPromise(Lists.use(f))
const failure = async <A, E>(f: (lists: Lists["Service"]) => Effect.Effect<A, E>) => {
  const exit = await runtime.runPromiseExit(Lists.use(f))
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  return JSON.parse(JSON.stringify(exit.cause)) as unknown
}
const apply = (list: ListName, entries: ReadonlyArray<ListEntry>, options: ApplyOptions) =>
  lists((l) => l.applyEntries(list, entries, options))

/** Every list a number is on (the invariant says: at most one). */
const whereIs = async (phone: string): Promise<Array<string>> => {
  const result = await client.query<{ list: string }>(
    `SELECT 'blacklist' AS list FROM blacklist WHERE custom_variable_1 = $1
     UNION ALL SELECT 'whitelist' FROM whitelist WHERE custom_variable_1 = $1
     UNION ALL SELECT 'monitor' FROM monitor WHERE custom_variable_1 = $1`,
    [phone]
  )
  return result.rows.map((r) => r.list)
}

const audit = async (phone: string) =>
  (
    await client.query<{
      action: string
      from_list: string | null
      to_list: string | null
      actor: string
      reason: string | null
    }>("SELECT action, from_list, to_list, actor, reason FROM list_audit WHERE custom_variable_1 = $1 ORDER BY id", [
      phone
    ])
  ).rows

const A = "447700900123"
const B = "447700900124"
const C = "447700900125"

describe("one list per number", () => {
  it("moves a number between lists in every mode, never leaving it on two", async () => {
    await apply("whitelist", [{ phone: A, source: "VOLUUM" }], { actor: "sync:voluum-reports", mode: "classification" })
    expect(await whereIs(A)).toEqual(["whitelist"])

    const toBlacklist = await apply("blacklist", [{ phone: A, reason: "OS_VERSION", source: "VOLUUM" }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    expect(toBlacklist).toMatchObject({ added: 0, moved: 1 })
    expect(await whereIs(A)).toEqual(["blacklist"])

    await apply("monitor", [{ phone: A, reason: "HLR_MONITORED", source: "CSV_CLEAN_UPLOAD" }], {
      actor: "job:hlr-1",
      mode: "hlr"
    })
    expect(await whereIs(A)).toEqual(["monitor"])

    await apply("whitelist", [{ phone: A }], { actor: "cli", mode: "manual" })
    expect(await whereIs(A)).toEqual(["whitelist"])
  })

  it("HLR moves a number off the other lists (the original left it on both) and keeps an existing entry's reason", async () => {
    await apply("whitelist", [{ phone: A }], { actor: "sync:voluum-reports", mode: "classification" })
    await apply("blacklist", [{ phone: B, reason: "OS_VERSION" }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    const counts = await apply(
      "blacklist",
      [
        { phone: A, reason: "HLR_FAILED", source: "CSV_CLEAN_UPLOAD" },
        { phone: B, reason: "HLR_RISKY_NETWORK", source: "CSV_CLEAN_UPLOAD" }
      ],
      { actor: "job:hlr-2", mode: "hlr" }
    )
    expect(counts).toMatchObject({ moved: 1, added: 0 })
    expect(await whereIs(A)).toEqual(["blacklist"])
    const rows = (
      await client.query("SELECT custom_variable_1, reason, sticky FROM blacklist ORDER BY custom_variable_1")
    ).rows
    expect(rows).toEqual([
      { custom_variable_1: A, reason: "HLR_FAILED", sticky: true },
      // an existing entry keeps its reason, and HLR's verdict makes it sticky
      { custom_variable_1: B, reason: "OS_VERSION", sticky: true }
    ])
  })

  it("HLR_MONITORED entries are not sticky", async () => {
    await apply("monitor", [{ phone: A, reason: "HLR_MONITORED" }], { actor: "job:hlr-3", mode: "hlr" })
    const row = (await client.query("SELECT sticky FROM monitor WHERE custom_variable_1 = $1", [A])).rows[0]
    expect(row).toEqual({ sticky: false })
    await apply("whitelist", [{ phone: A }], { actor: "sync:voluum-reports", mode: "classification" })
    expect(await whereIs(A)).toEqual(["whitelist"])
  })
})

describe("concurrent writers", () => {
  it("never leave a number on two lists, and the lists keep working after a failed stream", async () => {
    const phones = Array.from({ length: 3_000 }, (_, i) => `4475${String(10_000_000 + i)}`)
    await Promise.all([
      apply(
        "whitelist",
        phones.map((phone) => ({ phone })),
        { actor: "sync:voluum-reports", mode: "classification" }
      ),
      apply(
        "blacklist",
        phones.map((phone) => ({ phone, reason: "HLR_FAILED" })),
        { actor: "job:hlr", mode: "hlr" }
      ),
      apply(
        "monitor",
        [...phones].reverse().map((phone) => ({ phone })),
        { actor: "cli", mode: "manual" }
      )
    ])
    const doubles = await client.query(
      `SELECT count(*)::int AS n FROM (
         SELECT custom_variable_1 FROM blacklist UNION ALL SELECT custom_variable_1 FROM whitelist
         UNION ALL SELECT custom_variable_1 FROM monitor) u
       GROUP BY custom_variable_1 HAVING count(*) > 1`
    )
    expect(doubles.rows).toEqual([])
    expect(await lists((l) => l.counts)).toMatchObject({
      blacklist: expect.any(Number),
      whitelist: expect.any(Number),
      monitor: expect.any(Number)
    })
    const total = await lists((l) => l.counts)
    expect(total.blacklist + total.whitelist + total.monitor).toBe(3_000)

    // A source that fails half-way: nothing of the unfinished batch is written, no connection leaks.
    for (let attempt = 0; attempt < 6; attempt++) {
      const broken = Stream.concat(Stream.make({ phone: "447700900777" }), Stream.fail(new Error("the source broke")))
      const exit = await runtime.runPromiseExit(
        Lists.use((l) => l.applyStream("blacklist", broken, { actor: "cli", mode: "manual" }))
      )
      expect(Exit.isFailure(exit)).toBe(true)
    }
    expect(await whereIs("447700900777")).toEqual([])
    expect(await apply("blacklist", [{ phone: "447700900777" }], { actor: "cli", mode: "manual" })).toMatchObject({
      added: 1
    })
  })

  it("two imports of several batches each, at once, both finish and leave each number on one list", async () => {
    // More than LIST_BATCH_ROWS per lane for both writers: each holds open COPYs while it waits
    // for the other's batches (connections drawn from a shared pool could deadlock here).
    const phones = Array.from({ length: 120_000 }, (_, i) => `4474${String(10_000_000 + i * 3)}`)
    const [black, monitor] = await Promise.all([
      lists((l) =>
        l.importNumbers("blacklist", Stream.fromIterable(phones.map((phone) => ({ phone }))), {
          actor: "cli",
          mode: "manual"
        })
      ),
      lists((l) =>
        l.importNumbers("monitor", Stream.fromIterable([...phones].reverse().map((phone) => ({ phone }))), {
          actor: "cli",
          mode: "manual"
        })
      )
    ])
    expect(black.total).toBe(120_000)
    expect(monitor.total).toBe(120_000)
    const total = await lists((l) => l.counts)
    expect(total.blacklist + total.monitor).toBe(120_000)
    // Every number was added once, and moved once by whichever writer came second.
    expect(black.added + monitor.added).toBe(120_000)
    expect(black.moved + monitor.moved).toBe(120_000)
    const audit = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM list_audit")
    expect(audit.rows[0]!.n).toBe(240_000)
  }, 120_000)
})

describe("large imports skip the probes of numbers on no list", () => {
  /**
   * How often a list's primary key was searched, once the sinks' connections have closed, beyond
   * the searches of rows written before a filter was in place (`sinkFilterCounts`): each of those
   * is probed, and how many there are depends on how fast the filter is read — on a loaded machine
   * 40,000 rows of an 80,000-row write once passed first. What is left are the probes the filter
   * decided on: the numbers it has seen (listed, or repeated), its false alarms, and the numbers
   * other writers listed meanwhile. Without the filter's marks it would be every row written after
   * the filter was read.
   */
  const probes = async (list: ListName): Promise<number> => {
    for (let i = 0; i < 100; i++) {
      const open = await client.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'optimizer-lists'")
      if (open.rowCount === 0) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const result = await client.query<{ n: string }>(
      "SELECT idx_scan AS n FROM pg_stat_user_indexes WHERE indexrelname = $1",
      [`${list}_pkey`]
    )
    return Number(result.rows[0]!.n) - sinkFilterCounts.unfilteredRows
  }
  /** How many writes have read a filter of the listed numbers (once it has, `probes` counts what it saves). */
  const filtersRead = () => sinkFilterCounts.filtered

  it("moves the listed ones, writes a number repeated across batches once, and probes the rest not at all", async () => {
    const phones = Array.from({ length: 200_000 }, (_, i) => `4473${String(10_000_000 + i * 7)}`)
    await apply(
      "whitelist",
      phones.filter((_, i) => i % 40 === 1).map((phone) => ({ phone })),
      { actor: "sync:voluum-reports", mode: "classification" }
    )
    await apply(
      "monitor",
      phones.filter((_, i) => i % 40 === 2).map((phone) => ({ phone })),
      { actor: "sync:voluum-reports", mode: "classification" }
    )
    const probedBefore = await probes("whitelist")
    const filteredBefore = filtersRead()
    // Numbers of the first rows again at the end, in later batches; one number twice in one batch.
    const rows = [...phones, ...phones.slice(0, 1_000)].map((phone, i) => ({
      phone,
      reason: "BULK",
      source: "file",
      ip: i % 2 === 0 ? "10.0.0.1" : null
    }))
    rows.splice(120_000, 0, { phone: phones[119_990]!, reason: "AGAIN", source: "file", ip: null })
    const counts = await lists((l) =>
      l.importNumbers("blacklist", Stream.fromIterable(rows), { actor: "cli", mode: "manual" })
    )
    expect(counts).toMatchObject({
      total: 201_001,
      added: 190_000,
      moved: 10_000,
      updated: 0,
      unchanged: 1_000,
      repeated: 1
    })
    expect(await lists((l) => l.counts)).toEqual({ blacklist: 200_000, whitelist: 0, monitor: 0 })
    const entry = (phone: string) =>
      client
        .query(
          "SELECT reason, source, ip, sticky, timestamp_created > now() - interval '1 hour' AS recent FROM blacklist WHERE custom_variable_1 = $1",
          [phone]
        )
        .then((r) => r.rows)
    // A new number copied straight to the list has the row's data; the repeated one its last row's.
    expect(await entry(phones[100_000]!)).toEqual([
      { reason: "BULK", source: "file", ip: "10.0.0.1", sticky: true, recent: true }
    ])
    expect(await entry(phones[119_990]!)).toEqual([
      { reason: "AGAIN", source: "file", ip: null, sticky: true, recent: true }
    ])
    const auditRows = await client.query(
      "SELECT action, count(*)::int AS n FROM list_audit WHERE actor = 'cli' GROUP BY 1 ORDER BY 1"
    )
    expect(auditRows.rows).toEqual([
      { action: "add", n: 190_000 },
      { action: "move", n: 10_000 }
    ])
    // Without the filter each of the 201,000 rows searches the whitelist's key once; with it, the
    // 10,000 listed numbers and the 1,000 repeated ones (fewer: those before the filter was read).
    expect(filtersRead() - filteredBefore).toBe(1)
    expect((await probes("whitelist")) - probedBefore).toBeLessThan(15_000)
  }, 120_000)

  it("a large whitelist write stages its new numbers unprobed, still moves the others and spares sticky ones", async () => {
    const phones = Array.from({ length: 80_000 }, (_, i) => `4471${String(10_000_000 + i * 7)}`)
    await apply(
      "monitor",
      phones.filter((_, i) => i % 100 === 5).map((phone) => ({ phone, reason: "OS_VERSION" })),
      { actor: "sync:voluum-reports", mode: "classification" }
    )
    await apply(
      "blacklist",
      phones.filter((_, i) => i % 100 === 6).map((phone) => ({ phone, reason: "HLR_FAILED" })),
      { actor: "job:hlr", mode: "hlr" }
    )
    const probedBefore = await probes("monitor")
    const filteredBefore = filtersRead()
    const counts = await apply(
      "whitelist",
      phones.map((phone) => ({ phone, metrics: { clicks: 3 } })),
      { actor: "sync:voluum-reports", mode: "classification" }
    )
    expect(counts).toEqual({ added: 78_400, moved: 800, updated: 0, unchanged: 0, keptSticky: 800 })
    // Probed besides the rows before the filter was read (16,384 or more): the 1,600 listed ones, a
    // few false alarms.
    expect(filtersRead() - filteredBefore).toBe(1)
    expect((await probes("monitor")) - probedBefore).toBeLessThan(4_000)
    expect(await lists((l) => l.counts)).toEqual({ blacklist: 800, whitelist: 79_200, monitor: 0 })
    const added = await client.query("SELECT country_code, clicks FROM whitelist WHERE custom_variable_1 = $1", [
      phones[70_000]
    ])
    expect(added.rows).toEqual([{ country_code: "GB", clicks: 3 }])
    expect(await whereIs(phones[70_006]!)).toEqual(["blacklist"])
  }, 120_000)

  it("a large monitor import copies its new numbers straight in as well, with their audit rows", async () => {
    const phones = Array.from({ length: 150_000 }, (_, i) => `4478${String(10_000_000 + i * 7)}`)
    await apply(
      "blacklist",
      phones.filter((_, i) => i % 50 === 7).map((phone) => ({ phone, reason: "OLD" })),
      { actor: "sync:voluum-reports", mode: "classification" }
    )
    const counts = await lists((l) =>
      l.importNumbers(
        "monitor",
        Stream.fromIterable(phones.map((phone) => ({ phone, reason: "WATCH", source: "ops" }))),
        { actor: "cli", mode: "manual" }
      )
    )
    expect(counts).toMatchObject({ total: 150_000, added: 147_000, moved: 3_000 })
    expect(await lists((l) => l.counts)).toEqual({ blacklist: 0, whitelist: 0, monitor: 150_000 })
    const auditRows = await client.query(
      "SELECT action, to_list, count(*)::int AS n FROM list_audit WHERE actor = 'cli' GROUP BY 1, 2 ORDER BY 1"
    )
    expect(auditRows.rows).toEqual([
      { action: "add", to_list: "monitor", n: 147_000 },
      { action: "move", to_list: "monitor", n: 3_000 }
    ])
    expect(await audit(phones[140_001]!)).toEqual([
      { action: "add", from_list: null, to_list: "monitor", actor: "cli", reason: "WATCH" }
    ])
    const row = await client.query("SELECT reason, source FROM monitor WHERE custom_variable_1 = $1", [phones[140_001]])
    expect(row.rows).toEqual([{ reason: "WATCH", source: "ops" }])
  }, 120_000)

  /**
   * An import of `phones` into the blacklist that pauses after 60,000 rows (its filter is read after
   * 16,384) until `meanwhile` has run.
   */
  const importAround = async (phones: ReadonlyArray<string>, meanwhile: () => Promise<void>) => {
    let paused!: () => void
    const pausedAt = new Promise<void>((resolve) => {
      paused = resolve
    })
    let resume!: () => void
    const resumed = new Promise<void>((resolve) => {
      resume = resolve
    })
    const rows = async function* () {
      for (let i = 0; i < phones.length; i++) {
        if (i === 60_000) {
          paused()
          await resumed
        }
        yield { phone: phones[i]! }
      }
    }
    const importing = lists((l) =>
      l.importNumbers(
        "blacklist",
        Stream.fromAsyncIterable(rows(), (e) => e as Error),
        { actor: "cli", mode: "manual" }
      )
    )
    await pausedAt
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    await meanwhile()
    resume()
    return importing
  }

  it("goes on trusting its filter after another writer listed some of its numbers, and moves them", async () => {
    const phones = Array.from({ length: 150_000 }, (_, i) => `4472${String(10_000_000 + i * 7)}`)
    // Meanwhile a classification puts numbers the import has staged already, and numbers still to
    // come, on the whitelist: the filter knows none of them. The classification logs them (the
    // import is a registered reader), so the import corrects those rows and trusts the rest.
    const listedMeanwhile = phones.filter((_, i) => i % 50 === 3)
    const probedBefore = await probes("whitelist")
    const filteredBefore = filtersRead()
    const counts = await importAround(phones, async () => {
      await apply(
        "whitelist",
        listedMeanwhile.map((phone) => ({ phone })),
        { actor: "sync:voluum-reports", mode: "classification" }
      )
    })
    expect(counts).toMatchObject({ total: 150_000, added: 147_000, moved: 3_000 })
    expect(await lists((l) => l.counts)).toEqual({ blacklist: 150_000, whitelist: 0, monitor: 0 })
    expect(await whereIs(listedMeanwhile[0]!)).toEqual(["blacklist"])
    expect(await audit(listedMeanwhile.at(-1)!)).toEqual([
      { action: "add", from_list: null, to_list: "whitelist", actor: "sync:voluum-reports", reason: null },
      { action: "move", from_list: "whitelist", to_list: "blacklist", actor: "cli", reason: null }
    ])
    // Probing every number after the classification would search the whitelist ~90,000 times more;
    // the import probes the 3,000 numbers listed meanwhile.
    expect(filtersRead() - filteredBefore).toBe(1)
    expect((await probes("whitelist")) - probedBefore).toBeLessThan(6_000)
  }, 120_000)

  it("goes on trusting its filter across a removal by an admin in the middle", async () => {
    const phones = Array.from({ length: 150_000 }, (_, i) => `4471${String(20_000_000 + i * 7)}`)
    const listed = phones.filter((_, i) => i % 50 === 9)
    await apply(
      "whitelist",
      listed.map((phone) => ({ phone })),
      { actor: "sync:voluum-reports", mode: "classification" }
    )
    const probedBefore = await probes("whitelist")
    const filteredBefore = filtersRead()
    // Half of the listed numbers are taken off the whitelist while the import is paused: the
    // import moves the others, adds those, and the removal's versions (logged, with no numbers)
    // do not stop it trusting its filter.
    const removed = listed.filter((_, i) => i % 2 === 0)
    const counts = await importAround(phones, async () => {
      await lists((l) => l.remove(removed, { actor: "api_key:admin", list: "whitelist" }))
    })
    expect(counts).toMatchObject({ total: 150_000, added: 147_000 + removed.length, moved: 3_000 - removed.length })
    expect(await lists((l) => l.counts)).toEqual({ blacklist: 150_000, whitelist: 0, monitor: 0 })
    // The 3,000 listed numbers are probed, not the others.
    expect(filtersRead() - filteredBefore).toBe(1)
    expect((await probes("whitelist")) - probedBefore).toBeLessThan(6_000)
  }, 120_000)

  it("probes again in a lane where a version was written without a log row", async () => {
    const phones = Array.from({ length: 150_000 }, (_, i) => `4477${String(10_000_000 + i * 7)}`)
    // A writer that takes the lane's lock and bumps its version but logs nothing (an older optimizer
    // sharing the database): the import cannot know its numbers and must probe that lane's numbers.
    const listedMeanwhile = phones.filter((_, i) => i % 50 === 3)
    const counts = await importAround(phones, async () => {
      for (const lane of [0, 1]) {
        await client.query("BEGIN")
        await client.query("SELECT pg_advisory_xact_lock($1, $2)", [0x4c495354, lane])
        await client.query("UPDATE list_lane_versions SET version = version + 1 WHERE lane = $1", [lane])
        await client.query("INSERT INTO whitelist (custom_variable_1) SELECT unnest($1::text[])", [
          listedMeanwhile.filter((phone) => Number(phone.at(-1)) % 2 === lane)
        ])
        await client.query("COMMIT")
      }
    })
    expect(counts).toMatchObject({ total: 150_000, added: 147_000, moved: 3_000 })
    expect(await lists((l) => l.counts)).toEqual({ blacklist: 150_000, whitelist: 0, monitor: 0 })
  }, 120_000)
})

describe("sticky entries", () => {
  it("survive a Voluum classification and HLR, and give way to an admin", async () => {
    await apply("blacklist", [{ phone: A, reason: "FRAUD", source: "ops" }], { actor: "api_key:admin", mode: "manual" })

    const classified = await apply("whitelist", [{ phone: A, source: "VOLUUM" }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    expect(classified).toEqual({ added: 0, moved: 0, updated: 0, unchanged: 0, keptSticky: 1 })
    const overwrite = await apply("blacklist", [{ phone: A, reason: "OS_VERSION", source: "VOLUUM" }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    expect(overwrite.keptSticky).toBe(1)
    const hlr = await apply("monitor", [{ phone: A, reason: "HLR_MONITORED" }], { actor: "job:hlr", mode: "hlr" })
    expect(hlr.keptSticky).toBe(1)
    expect((await client.query("SELECT reason, sticky FROM blacklist")).rows).toEqual([
      { reason: "FRAUD", sticky: true }
    ])

    const moved = await lists((l) => l.move([A], "whitelist", { actor: "api_key:admin", reason: "cleared" }))
    expect(moved).toMatchObject({ moved: 1, invalid: [] })
    expect(await whereIs(A)).toEqual(["whitelist"])
  })

  it("classification skips sticky numbers but writes the others of the same batch", async () => {
    await apply("blacklist", [{ phone: A, reason: "MANUAL" }], { actor: "cli", mode: "manual" })
    const counts = await apply("whitelist", [{ phone: A }, { phone: B }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    expect(counts).toEqual({ added: 1, moved: 0, updated: 0, unchanged: 0, keptSticky: 1 })
    expect(await whereIs(A)).toEqual(["blacklist"])
    expect(await whereIs(B)).toEqual(["whitelist"])
  })
})

describe("audit", () => {
  it("records every add, move, update and removal with its actor", async () => {
    await apply("whitelist", [{ phone: A, source: "VOLUUM" }], { actor: "sync:voluum-reports", mode: "classification" })
    await apply("blacklist", [{ phone: A, reason: "OS_VERSION" }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    await apply("blacklist", [{ phone: A, reason: "OS_VERSION", metrics: { clicks: 3 } }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    // The same values again change nothing: no audit row.
    const again = await apply("blacklist", [{ phone: A, reason: "OS_VERSION", metrics: { clicks: 3 } }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    expect(again).toMatchObject({ unchanged: 1, updated: 0 })
    const removed = await lists((l) => l.remove(["+44 7700 900123"], { actor: "api_key:ops", reason: "opt-out" }))
    expect(removed).toEqual({ removed: 1, notListed: 0, invalid: [] })

    expect(await audit(A)).toEqual([
      { action: "add", from_list: null, to_list: "whitelist", actor: "sync:voluum-reports", reason: null },
      {
        action: "move",
        from_list: "whitelist",
        to_list: "blacklist",
        actor: "sync:voluum-reports",
        reason: "OS_VERSION"
      },
      {
        action: "update",
        from_list: "blacklist",
        to_list: "blacklist",
        actor: "sync:voluum-reports",
        reason: "OS_VERSION"
      },
      { action: "remove", from_list: "blacklist", to_list: null, actor: "api_key:ops", reason: "opt-out" }
    ])
  })
})

describe("canonical keys", () => {
  it("'+44 7700 900123' imported by hand and '447700900123' from Voluum are one entry", async () => {
    const imported = await lists((l) =>
      l.importNumbers("blacklist", Stream.make({ phone: "+44 7700 900123", reason: "MANUAL", source: "ops" }), {
        actor: "cli",
        mode: "manual"
      })
    )
    expect(imported).toMatchObject({ total: 1, added: 1, invalid: 0 })
    const classified = await apply("blacklist", [{ phone: "447700900123", reason: "OS_VERSION" }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    expect(classified.keptSticky).toBe(1) // the same, sticky, entry
    expect((await client.query("SELECT custom_variable_1 FROM blacklist")).rows).toEqual([{ custom_variable_1: A }])
  })

  it("refuses a key that is not canonical, before writing anything", async () => {
    const cause = await failure((l) =>
      l.applyEntries("blacklist", [{ phone: A }, { phone: "+447700900124" }], { actor: "cli", mode: "manual" })
    )
    expect(JSON.stringify(cause)).toContain("not a canonical phone key")
    expect(await whereIs(A)).toEqual([])
  })
})

describe("explain", () => {
  it("gives the list, reason, source, stickiness, since and the history newest first", async () => {
    await apply("whitelist", [{ phone: A, source: "VOLUUM" }], { actor: "sync:voluum-reports", mode: "classification" })
    await apply("blacklist", [{ phone: A, reason: "HLR_FAILED", source: "CSV_CLEAN_UPLOAD" }], {
      actor: "job:42",
      mode: "hlr"
    })
    const explained = await lists((l) => l.explain("+44 7700 900123"))
    expect(explained).toMatchObject({
      phone: A,
      list: "blacklist",
      reason: "HLR_FAILED",
      source: "CSV_CLEAN_UPLOAD",
      sticky: true
    })
    expect(explained.since).toBeInstanceOf(Date)
    expect(explained.history.map((h) => [h.action, h.fromList, h.toList, h.actor])).toEqual([
      ["move", "whitelist", "blacklist", "job:42"],
      ["add", null, "whitelist", "sync:voluum-reports"]
    ])
  })

  it("says a number is on no list, and refuses what is not a phone number", async () => {
    expect(await lists((l) => l.explain("447700900999"))).toMatchObject({ list: null, history: [], sticky: false })
    expect(JSON.stringify(await failure((l) => l.explain("not a number")))).toContain("INVALID_PHONE_NUMBER")
  })
})

describe("bulk", () => {
  it("writes 50,000 numbers in one call, moving those already on another list", async () => {
    const phones = Array.from({ length: 50_000 }, (_, i) => `4474${String(10_000_000 + i)}`)
    await apply(
      "monitor",
      phones.slice(0, 5_000).map((phone) => ({ phone, reason: "OS_VERSION" })),
      { actor: "sync:voluum-reports", mode: "classification" }
    )
    const counts = await apply(
      "blacklist",
      phones.map((phone) => ({ phone, reason: "BULK", source: "test" })),
      { actor: "cli", mode: "manual" }
    )
    expect(counts).toEqual({ added: 45_000, moved: 5_000, updated: 0, unchanged: 0, keptSticky: 0 })
    expect(await lists((l) => l.counts)).toEqual({ blacklist: 50_000, whitelist: 0, monitor: 0 })
    const auditRows = await client.query("SELECT count(*)::int AS n FROM list_audit WHERE actor = 'cli'")
    expect(auditRows.rows[0]).toEqual({ n: 50_000 })
  })

  it("keeps the last entry of a number repeated in one batch", async () => {
    const counts = await apply(
      "blacklist",
      [
        { phone: A, reason: "FIRST" },
        { phone: B, reason: "ONLY" },
        { phone: A, reason: "LAST" }
      ],
      { actor: "cli", mode: "manual" }
    )
    expect(counts.added).toBe(2)
    expect((await client.query("SELECT reason FROM blacklist WHERE custom_variable_1 = $1", [A])).rows).toEqual([
      { reason: "LAST" }
    ])
  })

  it("classification overwrites the data but keeps source and first-listed time; a move keeps the old row's data", async () => {
    await apply(
      "whitelist",
      [{ phone: A, source: "VOLUUM", ip: "10.0.0.1", metrics: { clicks: 1, cost_sources: "a,b" } }],
      {
        actor: "sync:voluum-reports",
        mode: "classification"
      }
    )
    const before = (await client.query("SELECT country_code FROM whitelist")).rows[0]
    expect(before).toEqual({ country_code: "GB" })
    await apply("blacklist", [{ phone: A, reason: "OS_VERSION", osVersion: "IOS 9.1" }], {
      actor: "cli",
      mode: "manual"
    })
    const moved = (await client.query("SELECT ip, os_version, clicks, cost_sources, source FROM blacklist")).rows[0]
    expect(moved).toEqual({ ip: "10.0.0.1", os_version: "IOS 9.1", clicks: 1, cost_sources: "a,b", source: "VOLUUM" })

    await apply("monitor", [{ phone: B, reason: "OS_VERSION", source: "VOLUUM", metrics: { clicks: 1 } }], {
      actor: "sync:voluum-reports",
      mode: "classification"
    })
    const first = (await client.query("SELECT timestamp_created FROM monitor")).rows[0].timestamp_created as Date
    const counts = await apply(
      "monitor",
      [{ phone: B, reason: "OS_VERSION", source: "OTHER", metrics: { clicks: 7 } }],
      {
        actor: "sync:voluum-reports",
        mode: "classification"
      }
    )
    expect(counts).toMatchObject({ updated: 1 })
    const after = (await client.query("SELECT clicks, source, timestamp_created FROM monitor")).rows[0]
    expect(after).toEqual({ clicks: 7, source: "VOLUUM", timestamp_created: first })
  })
})

describe("import, remove, export, main database", () => {
  it("imports a plain file of numbers and a CSV with a phone column, counting invalid rows", async () => {
    const plain = await lists((l) =>
      l.importCsv("monitor", "+44 7700 900123\n\n07700 900124\nnot a phone\n", {
        actor: "cli",
        mode: "manual",
        defaultCountry: "GB",
        reason: "IMPORT",
        source: "file"
      })
    )
    expect(plain).toMatchObject({ total: 3, added: 2, invalid: 1, invalidSamples: ["not a phone"] })
    const csv = await lists((l) =>
      l.importCsv("whitelist", "\uFEFFPhone,Country_Code\n447700900125,FR\n", { actor: "cli", mode: "manual" })
    )
    expect(csv).toMatchObject({ total: 1, added: 1 })
    expect((await client.query("SELECT country_code FROM whitelist")).rows).toEqual([{ country_code: "FR" }])
    expect(
      JSON.stringify(await failure((l) => l.importCsv("blacklist", "", { actor: "cli", mode: "manual" })))
    ).toContain("UnreadableFile")
  })

  it("counts numbers repeated in the file, so that the counts add up to the rows read", async () => {
    const counts = await lists((l) =>
      l.importCsv("blacklist", "+44 7700 900123\n447700900123\n07700 900123\n447700900124\nnope\n", {
        actor: "cli",
        mode: "manual",
        defaultCountry: "GB"
      })
    )
    expect(counts).toMatchObject({ total: 5, invalid: 1, repeated: 2, added: 2 })
    const { total, invalid, repeated, added, moved, updated, unchanged, keptSticky } = counts
    expect(invalid + repeated + added + moved + updated + unchanged + keptSticky).toBe(total)
  })

  it("reads a re-openable file whole before writing: a file broken after 120,000 rows writes nothing", async () => {
    const good = Array.from({ length: 120_000 }, (_, i) => `447700${String(i).padStart(6, "0")}\n`).join("")
    const text = `phone,reason\n${good}"447799999999,unclosed\n`
    const exit = JSON.stringify(
      await failure((l) => l.importCsv("blacklist", () => text, { actor: "cli", mode: "manual" }))
    )
    expect(exit).toContain("UnreadableFile")
    expect((await client.query("SELECT count(*)::int AS n FROM list_audit")).rows[0]).toEqual({ n: 0 })
  })

  it("removes from one list or all, and says which numbers were not listed", async () => {
    await apply("blacklist", [{ phone: A }], { actor: "cli", mode: "manual" })
    await apply("whitelist", [{ phone: B }], { actor: "cli", mode: "manual" })
    expect(await lists((l) => l.remove([B], { actor: "cli", list: "blacklist" }))).toEqual({
      removed: 0,
      notListed: 1,
      invalid: []
    })
    expect(await lists((l) => l.remove([A, B, C, "nope"], { actor: "cli" }))).toEqual({
      removed: 2,
      notListed: 1,
      invalid: ["nope"]
    })
    expect(await lists((l) => l.counts)).toEqual({ blacklist: 0, whitelist: 0, monitor: 0 })
  })

  it("exports a list as CSV with a header", async () => {
    await apply("blacklist", [{ phone: A, reason: "R" }], { actor: "cli", mode: "manual" })
    const chunks = await runtime.runPromise(Lists.use((l) => Stream.runCollect(l.exportList("blacklist"))))
    const text = Buffer.concat(chunks.map((c) => Buffer.from(c))).toString("utf8")
    const [header, row] = text.trim().split("\n")
    expect(header!.split(",").slice(0, 6)).toEqual([
      "custom_variable_1",
      "ip",
      "os_version",
      "browser_version",
      "timestamp_created",
      "reason"
    ])
    expect(row!.startsWith(`${A},,,,`)).toBe(true)
  })

  it("adds numbers to the main database once", async () => {
    expect(await lists((l) => l.addToMainDatabase([A, B, A]))).toBe(2)
    expect(await lists((l) => l.addToMainDatabase([B, C]))).toBe(1)
  })
})
