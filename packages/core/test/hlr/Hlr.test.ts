/**
 * HLR runs against real PostgreSQL and the fake hlrlookup batch API: a processed file through a batch
 * to the lists, the live table, the cache and the clean file; a run interrupted while polling resumes
 * the same batch; cached numbers are not sent again; eligibility, the one-run-at-a-time 409, a FAILED
 * batch, and the not-configured 503. The job handler is called directly (no worker), as a retry would.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Fiber, Layer, ManagedRuntime, References } from "effect"
import pg from "pg"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { RESULT_HEADERS, resultRow, resultsCsv, startFakeHlr, type FakeHlr } from "../../../../test/fakes/hlrlookup.ts"
import { RiskyOperators } from "../../src/classification/RiskyOperators.ts"
import { Hlr, HLR_QUEUE, HLR_RETRY_LIMIT } from "../../src/hlr/Hlr.ts"
import { HlrClient } from "../../src/hlr/HlrClient.ts"
import { Lists } from "../../src/lists/Lists.ts"
import { AppConfig, type Env } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"
import { FileStore } from "../../src/platform/FileStore.ts"
import { Jobs } from "../../src/platform/Jobs.ts"
import type { RunningJob } from "../../src/platform/Jobs.ts"
import { TEST_JOBS_OPTIONS } from "../platform/fixtures/jobsTestOptions.ts"

const makeRuntime = (env: Env) => {
  const config = AppConfig.layerFrom(env)
  const platform = Layer.mergeAll(Jobs.layerWith({ ...TEST_JOBS_OPTIONS, supervise: false }), FileStore.layer).pipe(
    Layer.provideMerge(DatabaseLayer),
    Layer.provideMerge(config)
  )
  const hlr = Hlr.layerNoDeps.pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        HlrClient.layerWith({ baseDelay: "5 millis", maxDelay: "20 millis", timeout: "2 seconds" }),
        Lists.layer,
        RiskyOperators.layer
      )
    )
  )
  return ManagedRuntime.make(
    hlr.pipe(Layer.provideMerge(platform), Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn")))
  )
}

let db: TestDatabase
let fake: FakeHlr
let storageDir: string
let runtime: ReturnType<typeof makeRuntime>
let client: pg.Client

const envOf = (extra: Env = {}): Env => ({
  DATABASE_URL: db.url,
  STORAGE_DIR: storageDir,
  HLRLOOKUP_APIKEY: fake.state.credentials.apiKey,
  HLRLOOKUP_SECRET: fake.state.credentials.secret,
  HLR_API_URL: fake.url,
  HLR_POLL_EVERY_SECONDS: "1",
  ...extra
})

beforeAll(async () => {
  db = await createTestDatabase()
  fake = await startFakeHlr({ pollsToComplete: 1 })
  storageDir = await mkdtemp(join(tmpdir(), "optimizer-hlr-"))
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
  runtime = makeRuntime(envOf())
  await runtime.runPromise(Effect.void)
})

afterAll(async () => {
  await runtime?.dispose()
  await client?.end()
  await fake?.close()
  await db?.drop()
  await rm(storageDir, { recursive: true, force: true })
})

beforeEach(async () => {
  await client.query(
    "TRUNCATE blacklist, whitelist, monitor, list_audit, api_hlr_live_numbers, hlr_lookups_cache, uploaded_csv_files CASCADE"
  )
  fake.state.outcomes.clear()
  fake.state.failBatches = false
  fake.state.cutResults = undefined
  fake.state.pollsToComplete = 1
  fake.state.submitted.length = 0
  fake.state.resultsText = undefined
})

/** A processed cleaning file holding `numbers`; its id. */
const processedFile = async (numbers: ReadonlyArray<string>, name = "list.csv"): Promise<string> => {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO uploaded_csv_files (original_filename, status, processed_at) VALUES ($1, 'processed', now()) RETURNING id::text`,
    [name]
  )
  const id = rows[0]!.id
  await runtime.runPromise(FileStore.use((files) => files.put(`processed/${id}.csv`, numbers.join("\n") + "\n")))
  await client.query("UPDATE uploaded_csv_files SET processed_file_path = $2 WHERE id = $1", [
    id,
    `processed/${id}.csv`
  ])
  return id
}

const hlr = <A, E>(f: (h: Hlr["Service"]) => Effect.Effect<A, E>) => runtime.runPromise(Hlr.use(f))
/** The failure of `f`: its tag and message. */
const failureOf = async <A, E>(f: (h: Hlr["Service"]) => Effect.Effect<A, E>) => {
  const exit = await runtime.runPromiseExit(Hlr.use(f).pipe(Effect.flip))
  if (Exit.isFailure(exit)) throw new Error(`expected a failure, got ${String(exit.cause)}`)
  return exit.value as { _tag: string; message: string }
}

const jobFor = async (fileId: string, attempt = 1): Promise<RunningJob> => {
  const { rows } = await client.query<{ run: Date; job: string }>(
    "SELECT hlr_started_at AS run, hlr_job_id::text AS job FROM uploaded_csv_files WHERE id = $1",
    [fileId]
  )
  return {
    id: rows[0]!.job,
    queue: HLR_QUEUE,
    data: { file_id: fileId, run: rows[0]!.run.toISOString() },
    attempt,
    progress: () => Effect.void
  }
}

const whereIs = async (phone: string) =>
  (
    await client.query<{ list: string; reason: string | null }>(
      `SELECT 'blacklist' AS list, reason FROM blacklist WHERE custom_variable_1 = $1
       UNION ALL SELECT 'monitor', reason FROM monitor WHERE custom_variable_1 = $1
       UNION ALL SELECT 'whitelist', NULL FROM whitelist WHERE custom_variable_1 = $1`,
      [phone]
    )
  ).rows

const N = (i: number) => `4477009001${String(i).padStart(2, "0")}`

const runJob = async (fileId: string, attempt = 1) => {
  const job = await jobFor(fileId, attempt)
  return hlr((h) => h.runJob(job))
}

const fileRow = async (id: string) =>
  (
    await client.query<Record<string, unknown>>(
      `SELECT hlr_status, hlr_batch_id, hlr_num_items, hlr_num_complete, hlr_error_message, hlr_raw_file_path,
         hlr_result_file_path, lock_owner FROM uploaded_csv_files WHERE id = $1`,
      [id]
    )
  ).rows[0]!

const readStored = (key: string) => runtime.runPromise(FileStore.use((files) => files.readText(key)))
/** The HLR files in the store of a file, whatever names them (or a writer's unfinished ones). */
const hlrFilesOf = async (fileId: string) =>
  (await readdir(join(storageDir, "hlr")).catch(() => [])).filter((name) => name.includes(fileId))
/** What the fake answers for `numbers` (its outcomes, else LIVE): the raw file stored must be exactly it. */
const expectedResults = (numbers: ReadonlyArray<string>) =>
  resultsCsv(numbers, (n) => fake.state.outcomes.get(n) ?? { live_status: "LIVE" })

describe("Hlr", () => {
  it("runs a processed file through one batch into the lists, the live table, the cache and the clean file", async () => {
    const numbers = [N(1), N(2), N(3), N(4), N(5), N(6), N(7)]
    fake.state.outcomes.set(N(2), { live_status: "DEAD" })
    fake.state.outcomes.set(N(3), { live_status: "LIVE", network: "BT Mobile - MVNO" })
    fake.state.outcomes.set(N(4), { live_status: "ABSENT_SUBSCRIBER" })
    fake.state.outcomes.set(N(5), { live_status: "SOMETHING_NEW" })
    fake.state.outcomes.set(N(6), { live_status: "NO_TELESERVICE_PROVISIONED", unformatted: true })
    fake.state.outcomes.set(N(7), { live_status: "LIVE", network: 'Three, "UK"' })
    const id = await processedFile(numbers)
    const created = fake.state.batchesCreated
    const started = await hlr((h) => h.start(id))
    expect(started).toMatchObject({ ok: true, file_id: id, hlr_status: "processing" })
    expect((await fileRow(id)).lock_owner).toBe("hlr")

    const result = await runJob(id)
    expect(fake.state.batchesCreated).toBe(created + 1)
    expect(result.status).toBe("complete")
    expect(result.sent).toBe(7)
    expect(result.counts).toMatchObject({
      results: 7,
      reused: 0,
      missing: 0,
      categories: { live: 2, risky: 1, dead: 2, monitor: 1, unknown: 1 },
      statuses: { LIVE: 3, DEAD: 1, ABSENT_SUBSCRIBER: 1, SOMETHING_NEW: 1, NO_TELESERVICE_PROVISIONED: 1 },
      liveRowsAdded: 2,
      clean: 2
    })
    expect(await whereIs(N(2))).toEqual([{ list: "blacklist", reason: "HLR_FAILED" }])
    expect(await whereIs(N(3))).toEqual([{ list: "blacklist", reason: "HLR_RISKY_NETWORK" }])
    expect(await whereIs(N(4))).toEqual([{ list: "monitor", reason: "HLR_MONITORED" }])
    expect(await whereIs(N(6))).toEqual([{ list: "blacklist", reason: "HLR_FAILED" }])
    expect(await whereIs(N(1))).toEqual([])
    expect(await whereIs(N(5))).toEqual([])
    const audit = await client.query("SELECT DISTINCT actor FROM list_audit")
    expect(audit.rows).toEqual([{ actor: `hlr:${id}` }])
    const live = await client.query(
      "SELECT custom_variable_1, current_network_details_name, request_parameters_cache_days_private, is_ported FROM api_hlr_live_numbers ORDER BY 1"
    )
    expect(live.rows).toEqual([
      {
        custom_variable_1: N(1),
        current_network_details_name: "Vodafone UK",
        request_parameters_cache_days_private: 30,
        is_ported: "NO"
      },
      {
        custom_variable_1: N(7),
        current_network_details_name: 'Three, "UK"',
        request_parameters_cache_days_private: 30,
        is_ported: "NO"
      }
    ])
    // The cell-by-cell path (a file with quotes): blank is NULL, the types kept.
    const typed = await client.query(
      `SELECT request_parameters_output_format AS format, credits_spent, "timestamp" FROM api_hlr_live_numbers WHERE custom_variable_1 = $1`,
      [N(1)]
    )
    expect(typed.rows).toEqual([{ format: null, credits_spent: 1, timestamp: new Date("2025-05-01T10:00:00Z") }])
    const row = await fileRow(id)
    expect(row).toMatchObject({ hlr_status: "complete", hlr_num_items: 7, hlr_num_complete: 7, lock_owner: null })
    expect(await readStored(row.hlr_result_file_path as string)).toBe(`phone_number\n${N(1)}\n${N(7)}\n`)
    // Applied as it downloaded, in one download: the raw file stored whole beside the lists above.
    expect(await readStored(row.hlr_raw_file_path as string)).toBe(expectedResults(numbers))
    expect(fake.state.count("GET", `/batches/${String(row.hlr_batch_id)}/results`)).toBe(1)
    const cache = await client.query("SELECT custom_variable_1, live_status FROM hlr_lookups_cache ORDER BY 1")
    expect(cache.rows).toHaveLength(7)
    expect(cache.rows.find((r) => r.custom_variable_1 === N(3))?.live_status).toBe("LIVE_RISKY_NETWORK")

    const status = await hlr((h) => h.status(id))
    expect(status).toMatchObject({ file_id: id, hlr_status: "complete", hlr_batch_id: row.hlr_batch_id })
    const download = await hlr((h) => h.download(id, "clean"))
    expect(download.filename).toBe("hlr_list.csv")
    expect((await hlr((h) => h.download(id, "raw"))).filename).toBe("hlr_raw_list.csv")

    // A second application of the same run (a retry after the work was done) is skipped.
    expect((await runJob(id, 2)).status).toBe("skipped")
  })

  it("cached numbers are not sent again: their cached status applies, and a file all cached sends no batch", async () => {
    await client.query(
      `INSERT INTO hlr_lookups_cache VALUES ($1, 'DEAD', now()), ($2, 'LIVE_RISKY_NETWORK', now()),
         ($3, 'LIVE', now() - interval '90 days')`,
      [N(20), N(21), N(22)]
    )
    // N(22) has a live row already (from an earlier run): it is kept as it is, its cache entry renewed.
    await client.query(
      "INSERT INTO api_hlr_live_numbers (custom_variable_1, is_ported, \"timestamp\") VALUES ($1, 'EARLIER', now() - interval '90 days')",
      [N(22)]
    )
    const id = await processedFile([N(20), N(21), N(22), N(23)])
    const before = fake.state.batchesCreated
    await hlr((h) => h.start(id))
    const result = await runJob(id)
    expect(fake.state.submitted).toEqual([N(22), N(23)])
    expect(result.sent).toBe(2)
    expect(result.counts).toMatchObject({
      results: 2,
      reused: 2,
      categories: { live: 2, dead: 1, risky: 1 },
      liveRowsAdded: 1
    })
    const earlier = await client.query(
      `SELECT l.is_ported, c.live_status, c.looked_up_at > now() - interval '1 hour' AS renewed
       FROM api_hlr_live_numbers l JOIN hlr_lookups_cache c USING (custom_variable_1) WHERE custom_variable_1 = $1`,
      [N(22)]
    )
    expect(earlier.rows).toEqual([{ is_ported: "EARLIER", live_status: "LIVE", renewed: true }])
    expect(await whereIs(N(20))).toEqual([{ list: "blacklist", reason: "HLR_FAILED" }])
    expect(await whereIs(N(21))).toEqual([{ list: "blacklist", reason: "HLR_RISKY_NETWORK" }])
    // A file without quotes takes the line-span path: every column as the cell-by-cell path writes it.
    const live = await client.query(
      `SELECT request_parameters_cache_days_private AS days, request_parameters_output_format AS format, credits_spent,
         current_network_details_name AS network, is_ported, "timestamp" FROM api_hlr_live_numbers WHERE custom_variable_1 = $1`,
      [N(23)]
    )
    expect(live.rows).toEqual([
      {
        days: 30,
        format: null,
        credits_spent: 1,
        network: "Vodafone UK",
        is_ported: "NO",
        timestamp: new Date("2025-05-01T10:00:00Z")
      }
    ])

    const all = await processedFile([N(20), N(23)], "again.csv")
    await hlr((h) => h.start(all))
    const again = await runJob(all)
    expect(fake.state.batchesCreated).toBe(before + 1)
    expect(again).toMatchObject({ status: "complete", batch_id: null, sent: 0 })
    expect(again.counts).toMatchObject({ reused: 2, clean: 1 })
  })

  it("reads results as a provider may write them: BOM, CRLF, padded and odd cells, a repeated number", async () => {
    const at = (name: (typeof RESULT_HEADERS)[number]) => RESULT_HEADERS.indexOf(name)
    const row = (phone: string, status: string, change: (cells: Array<string>) => void = () => undefined) => {
      const cells = [...resultRow(phone, { live_status: status })]
      change(cells)
      return cells.join(",")
    }
    fake.state.resultsText = () =>
      "\ufeff" +
      [
        RESULT_HEADERS.join(","),
        row(N(40), "LIVE"),
        row(N(41), "LIVE", (c) => (c[at("live_status")] = " live ")),
        row(N(42), "LIVE", (c) => (c[at("formatted_telephone_number")] = "+44 7700 900142")),
        row(N(43), "DEAD", (c) => (c[at("formatted_telephone_number")] = "")),
        row(N(44), "LIVE", (c) => (c[at("current_network_details.name")] = "Telefónica UK")),
        row(N(45), "LIVE", (c) => {
          c[at("credits_spent")] = "abc"
          c[at("timestamp")] = ""
          c[at("request_parameters.cache_days_private")] = "99999999999"
        }),
        row(N(46), "NO_COVERAGE"),
        "",
        row("n/a", "LIVE", (c) => (c[at("detected_telephone_number")] = "n/a")),
        row(N(40), "DEAD"),
        row(N(47), "LIVE", (c) => (c[at("current_network_details.name")] = "Aero2"))
      ].join("\r\n") +
      "\r\n"
    const numbers = [40, 41, 42, 43, 44, 45, 46, 47].map(N)
    const id = await processedFile(numbers)
    await hlr((h) => h.start(id))
    const result = await runJob(id)
    expect(result.status).toBe("complete")
    expect(result.counts).toMatchObject({
      results: 9,
      skipped: 1,
      categories: { live: 5, dead: 2, monitor: 1, risky: 1, unknown: 0 },
      statuses: { LIVE: 6, DEAD: 2, NO_COVERAGE: 1 },
      liveRowsAdded: 5,
      clean: 5
    })
    // A number's first row is the one written: the repeated N(40) (DEAD) changes no list.
    expect(await whereIs(N(40))).toEqual([])
    expect(await whereIs(N(43))).toEqual([{ list: "blacklist", reason: "HLR_FAILED" }])
    expect(await whereIs(N(46))).toEqual([{ list: "monitor", reason: "HLR_MONITORED" }])
    expect(await whereIs(N(47))).toEqual([{ list: "blacklist", reason: "HLR_RISKY_NETWORK" }])
    const live = await client.query(
      `SELECT custom_variable_1 AS phone, current_network_details_name AS network, credits_spent,
         request_parameters_cache_days_private AS days, "timestamp" > now() - interval '1 hour' AS stamped_now
       FROM api_hlr_live_numbers ORDER BY 1`
    )
    expect(live.rows).toEqual([
      { phone: N(40), network: "Vodafone UK", credits_spent: 1, days: 30, stamped_now: false },
      { phone: N(41), network: "Vodafone UK", credits_spent: 1, days: 30, stamped_now: false },
      { phone: N(42), network: "Vodafone UK", credits_spent: 1, days: 30, stamped_now: false },
      { phone: N(44), network: "Telefónica UK", credits_spent: 1, days: 30, stamped_now: false },
      // Values the columns' types cannot take are NULL; a blank timestamp is the run's time.
      { phone: N(45), network: "Vodafone UK", credits_spent: null, days: null, stamped_now: true }
    ])
    const row_ = await fileRow(id)
    expect(await readStored(row_.hlr_result_file_path as string)).toBe(
      `phone_number\n${[40, 41, 42, 44, 45].map(N).join("\n")}\n`
    )
    const cache = await client.query("SELECT custom_variable_1 AS phone, live_status FROM hlr_lookups_cache ORDER BY 1")
    expect(cache.rows.map((r) => r.live_status)).toEqual([
      "LIVE",
      "LIVE",
      "LIVE",
      "DEAD",
      "LIVE",
      "LIVE",
      "NO_COVERAGE",
      "LIVE_RISKY_NETWORK"
    ])
  })

  it("trims every blank a cell may have at its edges (no-break space, form feed), not only spaces", async () => {
    // A plain file (no quote, backslash, tab or stray CR): its lines take the byte path, and a line
    // with a padded cell the string path; the live row must hold the trimmed cells either way.
    const at = (name: (typeof RESULT_HEADERS)[number]) => RESULT_HEADERS.indexOf(name)
    const row = (phone: string, change: (cells: Array<string>) => void) => {
      const cells = [...resultRow(phone, { live_status: "LIVE" })]
      change(cells)
      return cells.join(",")
    }
    fake.state.resultsText = () =>
      [
        RESULT_HEADERS.join(","),
        row(N(50), (c) => (c[at("current_network_details.name")] = "\u00a0Vodafone UK\u00a0")),
        row(N(51), (c) => (c[at("original_network_details.name")] = "EE Limited (Orange)\f"))
      ].join("\n") + "\n"
    const id = await processedFile([N(50), N(51)])
    await hlr((h) => h.start(id))
    const result = await runJob(id)
    expect(result.status).toBe("complete")
    const live = await client.query(
      `SELECT custom_variable_1 AS phone, original_network_details_name AS original,
         current_network_details_name AS network
       FROM api_hlr_live_numbers ORDER BY 1`
    )
    expect(live.rows).toEqual([
      { phone: N(50), original: "EE Limited (Orange)", network: "Vodafone UK" },
      { phone: N(51), original: "EE Limited (Orange)", network: "Vodafone UK" }
    ])
  })

  it("a run interrupted while polling resumes the same batch: one batch created, none uploaded twice", async () => {
    fake.state.pollsToComplete = 1000
    const id = await processedFile([N(30), N(31)])
    const before = fake.state.batchesCreated
    await hlr((h) => h.start(id))
    const job = await jobFor(id)
    const fiber = runtime.runFork(Hlr.use((h) => h.runJob(job)))
    for (let i = 0; i < 100 && (await fileRow(id)).hlr_status !== "processing"; i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    await new Promise((r) => setTimeout(r, 300))
    await runtime.runPromise(Fiber.interrupt(fiber))
    const mid = await fileRow(id)
    expect(mid).toMatchObject({ hlr_status: "processing", hlr_num_items: 2 })
    expect(mid.hlr_batch_id).not.toBeNull()

    fake.state.pollsToComplete = 1
    const result = await runJob(id, 2)
    expect(result).toMatchObject({ status: "complete", batch_id: mid.hlr_batch_id })
    expect(fake.state.batchesCreated).toBe(before + 1)
    expect(fake.state.count("POST", `/batches/${String(mid.hlr_batch_id)}/source`)).toBe(1)
  })

  it("a results download broken off half-way: no raw file, nothing applied; the retry downloads the same batch again", async () => {
    const numbers = [N(50), N(51), N(52), N(53), N(54), N(55)]
    fake.state.outcomes.set(N(55), { live_status: "DEAD" })
    const id = await processedFile(numbers)
    const before = fake.state.batchesCreated
    await hlr((h) => h.start(id))
    fake.state.cutResults = { afterRows: 3, times: 1 }
    const job = await jobFor(id)
    const failure = await failureOf((h) => h.runJob(job))
    expect(failure).toMatchObject({ _tag: "UpstreamError", retryable: true })
    expect(failure.message).toContain("broke off")
    const mid = await fileRow(id)
    // Still active for the job's retry; no raw file recorded nor left in the store; the pass rolled back.
    expect(mid).toMatchObject({ hlr_status: "processing", hlr_raw_file_path: null, hlr_error_message: null })
    expect(await hlrFilesOf(id)).toEqual([])
    expect((await client.query("SELECT count(*)::int AS n FROM api_hlr_live_numbers")).rows[0].n).toBe(0)
    expect((await client.query("SELECT count(*)::int AS n FROM hlr_lookups_cache")).rows[0].n).toBe(0)
    expect(await whereIs(N(55))).toEqual([])

    const result = await runJob(id, 2)
    expect(result).toMatchObject({ status: "complete", batch_id: mid.hlr_batch_id, counts: { results: 6 } })
    expect(fake.state.batchesCreated).toBe(before + 1)
    expect(fake.state.count("GET", `/batches/${String(mid.hlr_batch_id)}/results`)).toBe(2)
    const row = await fileRow(id)
    expect(await readStored(row.hlr_raw_file_path as string)).toBe(expectedResults(numbers))
    expect((await hlrFilesOf(id)).sort()).toEqual(
      [row.hlr_raw_file_path, row.hlr_result_file_path].map((key) => String(key).replace("hlr/", "")).sort()
    )
    expect(await whereIs(N(55))).toEqual([{ list: "blacklist", reason: "HLR_FAILED" }])

    // On the last attempt the run fails, with no raw file either.
    const last = await processedFile([N(60), N(61), N(62)], "last.csv")
    await hlr((h) => h.start(last))
    fake.state.cutResults = { afterRows: 1, times: 1 }
    const lastJob = await jobFor(last, HLR_RETRY_LIMIT + 1)
    expect((await failureOf((h) => h.runJob(lastJob)))._tag).toBe("UpstreamError")
    expect(await fileRow(last)).toMatchObject({ hlr_status: "failed", hlr_raw_file_path: null, lock_owner: null })
    expect(String((await fileRow(last)).hlr_error_message)).toContain("broke off")
    expect(await hlrFilesOf(last)).toEqual([])
  })

  it("eligibility: unknown 404, unprocessed 400, a second run 409; a FAILED batch fails the run", async () => {
    expect((await failureOf((h) => h.start("00000000-0000-4000-8000-000000000000")))._tag).toBe("NotFound")
    const { rows } = await client.query<{ id: string }>(
      "INSERT INTO uploaded_csv_files (original_filename) VALUES ('u.csv') RETURNING id::text"
    )
    expect(await failureOf((h) => h.start(rows[0]!.id))).toMatchObject({
      _tag: "ValidationError",
      message: "File not eligible for HLR (must be processed and not already active)"
    })
    const a = await processedFile([N(40)])
    const b = await processedFile([N(41)])
    await hlr((h) => h.start(a))
    expect(await failureOf((h) => h.start(b))).toMatchObject({
      _tag: "Conflict",
      message: "Another file is already running HLR"
    })
    expect(await failureOf((h) => h.start(a))).toMatchObject({ _tag: "Conflict" })
    expect(await failureOf((h) => h.download(a, "clean"))).toMatchObject({ message: "HLR not complete yet" })
    expect(await failureOf((h) => h.download(a, "raw"))).toMatchObject({ message: "Raw HLR file not available" })

    fake.state.failBatches = true
    const jobA = await jobFor(a)
    expect((await failureOf((h) => h.runJob(jobA)))._tag).toBe("HlrBatchFailed")
    expect(await fileRow(a)).toMatchObject({ hlr_status: "failed", lock_owner: null })
    expect(String((await fileRow(a)).hlr_error_message)).toContain("FAILED")
    // failed may run again
    fake.state.failBatches = false
    await hlr((h) => h.start(a))
    expect((await runJob(a)).status).toBe("complete")
  })

  it("not configured: start fails with NotConfigured naming the variables", async () => {
    const bare = makeRuntime({ DATABASE_URL: db.url, STORAGE_DIR: storageDir })
    try {
      const exit = await bare.runPromiseExit(Hlr.use((h) => h.start(N(1))).pipe(Effect.flip))
      expect(Exit.isSuccess(exit) && exit.value).toMatchObject({
        _tag: "NotConfigured",
        missing: ["HLRLOOKUP_APIKEY", "HLRLOOKUP_SECRET"]
      })
    } finally {
      await bare.dispose()
    }
  })
})
