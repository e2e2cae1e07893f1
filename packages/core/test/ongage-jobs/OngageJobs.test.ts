/**
 * Ongage CSV jobs against a real database and the fake Ongage: upload checks (headers, empty and
 * broken files leave no job), list/PATCH/start/pause/resume/archive as the original answered, and
 * the drip worker driven by a test clock — a job of 1,000 records with limits [5, 20] every 60 s
 * sent exactly once in file order across pause/resume, 412s, 429 bursts, Ongage outages and a
 * restart of the service, and jobs running side by side fairly.
 */
import { Clock, Duration, Effect, Exit, Layer, ManagedRuntime } from "effect"
import pg from "pg"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { startFakeOngage, type FakeOngage } from "../../../../test/fakes/ongage.ts"
import { OngageClient } from "../../src/ongage/OngageClient.ts"
import { CSV_JOB_HEADERS, OngageJobs } from "../../src/ongage-jobs/OngageJobs.ts"
import { AppConfig } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"

let db: TestDatabase
let fake: FakeOngage
let client: pg.Client
let runtime: ManagedRuntime.ManagedRuntime<OngageJobs, unknown>

const makeRuntime = () => {
  const config = AppConfig.layerFrom({
    DATABASE_URL: db.url,
    LIST_ID: fake.state.credentials.listId,
    X_USERNAME: fake.state.credentials.username,
    X_PASSWORD: fake.state.credentials.password,
    X_ACCOUNT_CODE: fake.state.credentials.accountCode,
    ONGAGE_API_URL: fake.url
  })
  const ongage = OngageClient.layerWith({
    baseDelay: "5 millis",
    maxDelay: "20 millis",
    timeout: "2 seconds",
    maxRetries: 2
  })
  return ManagedRuntime.make(
    OngageJobs.layer.pipe(Layer.provide(ongage), Layer.provideMerge(DatabaseLayer), Layer.provideMerge(config))
  )
}

beforeAll(async () => {
  db = await createTestDatabase()
  fake = await startFakeOngage()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
  runtime = makeRuntime()
})

afterAll(async () => {
  await runtime?.dispose()
  await client?.end()
  await fake?.close()
  await db?.drop()
})

beforeEach(async () => {
  await client.query("TRUNCATE csv_jobs CASCADE")
  fake.state.received.length = 0
  fake.state.requests.length = 0
  fake.state.failures.clear()
  fake.state.contacts.clear()
  batchSizes.length = 0
})

const run = <A, E>(effect: Effect.Effect<A, E, OngageJobs>) => runtime.runPromise(effect)
const failureOf = async <A, E>(effect: Effect.Effect<A, E, OngageJobs>) => {
  const exit = await runtime.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  return JSON.stringify(exit.cause)
}

/** A clock that reads `ms` but sleeps in real time (the Ongage client's back-off stays real). */
const at =
  (ms: number) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.provideService(effect, Clock.Clock, {
      currentTimeMillisUnsafe: () => ms,
      currentTimeMillis: Effect.succeed(ms),
      currentTimeNanosUnsafe: () => BigInt(ms) * 1_000_000n,
      currentTimeNanos: Effect.succeed(BigInt(ms) * 1_000_000n),
      monotonicTimeNanosUnsafe: () => process.hrtime.bigint(),
      monotonicTimeNanos: Effect.sync(() => process.hrtime.bigint()),
      sleep: (d: Duration.Duration) => Effect.promise(() => new Promise((r) => setTimeout(r, Duration.toMillis(d))))
    })

const csvOf = (n: number, prefix = "r", listId = "112233") =>
  [
    CSV_JOB_HEADERS.join(","),
    ...Array.from(
      { length: n },
      (_, i) =>
        `${listId},${prefix}${i + 1}@example.com,United Kingdom,GB_FTD,4477009${String(i).padStart(5, "0")},FTD,,live,u-${i + 1}`
    )
  ].join("\n") + "\n"

const upload = (body: string, filename = "contacts.csv") => run(OngageJobs.use((j) => j.upload({ filename, body })))
const jobCount = async () => Number((await client.query("SELECT count(*) FROM csv_jobs")).rows[0].count)
const get = (id: string) => run(OngageJobs.use((j) => j.get(id)))
const T0 = Date.parse("2026-12-01T00:00:00Z")
/** Sizes of the batches that went through (not those stopped by an Ongage failure), in order. */
const batchSizes: Array<number> = []
const tick = async (ms: number) => {
  const out = await run(OngageJobs.use((j) => j.runDue()).pipe(at(ms)))
  for (const o of out) if (o.error === undefined) batchSizes.push(o.sent + o.failed)
  return out
}
const startAt = (id: string, ms: number) => run(OngageJobs.use((j) => j.start(id)).pipe(at(ms)))

describe("upload", () => {
  it("stores every row in file order as a draft job with the original's defaults", async () => {
    const answer = await upload(`\uFEFF${csvOf(3)}`)
    expect(answer).toMatchObject({ ok: true, original_filename: "contacts.csv", total_records: 3, status: "draft" })
    const job = await get(answer.job_id)
    expect(job).toMatchObject({
      status: "draft",
      interval_seconds: 60,
      lower_limit: 1,
      upper_limit: 1,
      sent: 0,
      remaining: 3
    })
    const rows = await client.query("SELECT seq::int, email, list_id, uuid FROM csv_active_records ORDER BY seq")
    expect(rows.rows.map((r) => [r.seq, r.email])).toEqual([
      [1, "r1@example.com"],
      [2, "r2@example.com"],
      [3, "r3@example.com"]
    ])
  })

  it("refuses a header without the exact (case-sensitive) names, naming the missing ones, and keeps nothing", async () => {
    const body = csvOf(2).replace("Email", "email").replace("HLR_Status", "HLR_STATUS")
    const failure = await failureOf(OngageJobs.use((j) => j.upload({ filename: "x.csv", body })))
    expect(failure).toContain("ValidationError")
    expect(failure).toContain("Missing required columns: Email, HLR_Status")
    expect(await jobCount()).toBe(0)
  })

  it("refuses an empty file, a header without records, another extension and broken CSV, keeping nothing", async () => {
    expect(await failureOf(OngageJobs.use((j) => j.upload({ filename: "x.csv", body: "" })))).toContain(
      "The file is empty"
    )
    expect(await failureOf(OngageJobs.use((j) => j.upload({ filename: "x.csv", body: csvOf(0) })))).toContain(
      "no records"
    )
    expect(await failureOf(OngageJobs.use((j) => j.upload({ filename: "x.txt", body: csvOf(1) })))).toContain(
      "Only .csv files are allowed"
    )
    const broken = `${csvOf(5)}112233,"unterminated@example.com,UK\n`
    expect(await failureOf(OngageJobs.use((j) => j.upload({ filename: "x.csv", body: broken })))).toContain(
      "UnreadableFile"
    )
    expect(await jobCount()).toBe(0)
    expect(Number((await client.query("SELECT count(*) FROM csv_active_records")).rows[0].count)).toBe(0)
  })
})

describe("list, PATCH and statuses", () => {
  it("lists newest first without archived jobs; PATCH validates as the original and only in draft/paused", async () => {
    const a = await upload(csvOf(2), "a.csv")
    const b = await upload(csvOf(2), "b.csv")
    const list = await run(OngageJobs.use((j) => j.list()))
    expect(list.map((j) => j.original_filename)).toEqual(["b.csv", "a.csv"])

    const patch = (id: string, interval_seconds: number, lower_limit: number, upper_limit: number) =>
      failureOf(OngageJobs.use((j) => j.update(id, { interval_seconds, lower_limit, upper_limit })))
    expect(await patch(a.job_id, 60, 5, 4)).toContain("upper_limit must be >= lower_limit")
    expect(await patch(a.job_id, 59, 1, 1)).toContain("Interval Time must be greater than 60 seconds")
    expect(await patch(a.job_id, 60, 0, 1)).toContain("lower_limit must be >= 1")
    expect(await patch("no-such-job", 60, 1, 1)).toContain("NotFound")
    expect(
      await run(OngageJobs.use((j) => j.update(a.job_id, { interval_seconds: 60, lower_limit: 5, upper_limit: 20 })))
    ).toEqual({
      ok: true,
      job_id: a.job_id
    })

    expect(await run(OngageJobs.use((j) => j.start(a.job_id)))).toEqual({ ok: true, status: "running" })
    expect(await patch(a.job_id, 60, 1, 1)).toContain("Conflict")
    expect(await failureOf(OngageJobs.use((j) => j.start(a.job_id)))).toContain("Job not in a startable state")
    expect(await failureOf(OngageJobs.use((j) => j.resume(a.job_id)))).toContain("Job not paused")
    expect(await run(OngageJobs.use((j) => j.pause(a.job_id)))).toEqual({ ok: true, status: "paused" })
    expect(await failureOf(OngageJobs.use((j) => j.pause(a.job_id)))).toContain("Job not running")
    expect(await run(OngageJobs.use((j) => j.resume(a.job_id)))).toEqual({ ok: true, status: "running" })
    expect(await failureOf(OngageJobs.use((j) => j.pause("nope")))).toContain("NotFound")

    expect(await run(OngageJobs.use((j) => j.archive(b.job_id)))).toEqual({ ok: true, status: "archived" })
    expect((await run(OngageJobs.use((j) => j.list()))).map((j) => j.id)).toEqual([a.job_id])
    expect(await failureOf(OngageJobs.use((j) => j.start(b.job_id)))).toContain("Job not in a startable state")
  })
})

/** Runs passes every `interval` of simulated time from `from` until `until` says stop; returns the last time. */
const drive = async (from: number, interval: number, until: () => Promise<boolean>, maxTicks = 1000) => {
  let now = from
  for (let i = 0; i < maxTicks && !(await until()); i++) {
    await tick(now)
    now += interval
  }
  return now
}

const receivedEmails = () => fake.state.received.map((c) => c.email)

describe("the drip worker", () => {
  it("sends a job of 1,000 records [5, 20] every 60 s exactly once, in file order, across pause, 412s, 429s, an outage and a restart", async () => {
    const { job_id } = await upload(csvOf(1000))
    await run(OngageJobs.use((j) => j.update(job_id, { interval_seconds: 60, lower_limit: 5, upper_limit: 20 })))
    fake.state.failures.set("r7@example.com", "Email already exists")
    fake.state.failures.set("r500@example.com", "Invalid email")
    await startAt(job_id, T0)

    // Not due before its time; due at it.
    expect(await tick(T0 - 1000)).toEqual([])
    let now = T0
    const step = async () => {
      const out = await tick(now)
      now += 60_000
      return out
    }
    for (let i = 0; i < 10; i++) await step()
    const beforePause = receivedEmails().length

    // Pause: nothing is sent however much time passes; resume continues from the cursor.
    await run(OngageJobs.use((j) => j.pause(job_id)))
    for (let i = 0; i < 5; i++) expect(await step()).toEqual([])
    expect(receivedEmails().length).toBe(beforePause)
    await run(OngageJobs.use((j) => j.resume(job_id)).pipe(at(now)))

    // A burst of 429s is waited out by the client; the batch still goes.
    fake.state.inject({ status: 429, count: 2, retryAfter: "0" })
    await step()
    // An outage longer than the client's retries: the batch stops, nothing is marked, the cursor stays.
    const cursorBefore = (await client.query('SELECT "cursor"::int FROM csv_jobs')).rows[0].cursor
    fake.state.inject({ status: 503, count: 3 })
    const failed = await step()
    expect(failed[0]?.error).toBeDefined()
    expect(failed[0]?.sent).toBe(0)
    expect((await client.query('SELECT "cursor"::int, error_message FROM csv_jobs')).rows[0].cursor).toBe(cursorBefore)

    // A restart: a new service instance over the same database continues where the last commit left off.
    await runtime.dispose()
    runtime = makeRuntime()

    await drive(now, 60_000, async () => (await get(job_id)).status === "completed")
    const job = await get(job_id)
    expect(job).toMatchObject({
      status: "completed",
      sent: 998,
      failed: 2,
      remaining: 0,
      next_run_at: null,
      error_message: null
    })

    // Exactly once, in file order (the failed batch reached Ongage as 503s only, so nothing of it was received).
    const emails = receivedEmails()
    expect(emails).toEqual(Array.from({ length: 1000 }, (_, i) => `r${i + 1}@example.com`))
    expect(batchSizes.reduce((a, b) => a + b, 0)).toBe(1000)
    expect(batchSizes.every((s) => s >= 1 && s <= 20)).toBe(true)
    expect(batchSizes.slice(0, -1).every((s) => s >= 5)).toBe(true)
    expect(new Set(batchSizes).size).toBeGreaterThan(5) // random within the limits, not one fixed size
    // Columns become Ongage fields by name; empty cells are left out.
    expect(fake.state.received[0]!.fields).toEqual({
      country: "United Kingdom",
      source: "GB_FTD",
      mobile: "447700900000",
      conversion_type: "FTD",
      hlr_status: "live",
      uuid: "u-1"
    })
    const records = await client.query(
      "SELECT count(*) FILTER (WHERE sent_at IS NOT NULL)::int AS sent, count(*) FILTER (WHERE failed_at IS NOT NULL)::int AS failed FROM csv_active_records"
    )
    expect(records.rows[0]).toEqual({ sent: 998, failed: 2 })
    const failures = await run(OngageJobs.use((j) => j.failures(job_id)))
    expect(failures).toEqual([
      { seq: 7, email: "r7@example.com", list_id: "112233", error_message: "Email already exists" },
      { seq: 500, email: "r500@example.com", list_id: "112233", error_message: "Invalid email" }
    ])
  }, 60_000)

  it("runs jobs side by side fairly: every due job gets one batch per interval", async () => {
    const ids: Array<string> = []
    for (let k = 0; k < 3; k++) {
      const { job_id } = await upload(csvOf(30, `j${k}-`))
      await run(OngageJobs.use((j) => j.update(job_id, { interval_seconds: 60, lower_limit: 10, upper_limit: 10 })))
      await startAt(job_id, T0)
      ids.push(job_id)
    }
    for (let i = 0; i < 3; i++) {
      const out = await tick(T0 + i * 60_000)
      expect(out.map((o) => o.jobId).sort()).toEqual([...ids].sort())
      expect(out.every((o) => o.sent === 10 && o.lateMs === 0)).toBe(true)
    }
    for (const id of ids) expect((await get(id)).status).toBe("completed")
    expect(new Set(receivedEmails()).size).toBe(90)
    expect(receivedEmails().length).toBe(90)
  })

  it("fails records of a list Ongage does not know with its message instead of blocking the job", async () => {
    const { job_id } = await upload(csvOf(3, "x", "999"))
    await run(OngageJobs.use((j) => j.update(job_id, { interval_seconds: 60, lower_limit: 5, upper_limit: 5 })))
    await startAt(job_id, T0)
    const [out] = await tick(T0)
    expect(out).toMatchObject({ sent: 0, failed: 3, completed: true })
    const failures = await run(OngageJobs.use((j) => j.failures(job_id)))
    expect(failures[0]!.error_message).toContain("404")
  })

  it("fails a record without a valid email or a List_ID without a call, and counts it once across an outage", async () => {
    const body = csvOf(4, "e").replace("e2@example.com", "").replace("112233,e3@", ",e3@")
    const { job_id } = await upload(body)
    await run(OngageJobs.use((j) => j.update(job_id, { interval_seconds: 60, lower_limit: 4, upper_limit: 4 })))
    await startAt(job_id, T0)
    // Requests: [e1, e2 (no email)], [e3 (no List_ID)], [e4]. The first fails as a whole (3 attempts, all 503).
    fake.state.inject({ status: 503, count: 3 })
    const [stopped] = await tick(T0)
    expect(stopped).toMatchObject({ sent: 0, failed: 0 })
    expect(stopped?.error).toBeDefined()
    const [done] = await tick(T0 + 60_000)
    expect(done).toMatchObject({ sent: 2, failed: 2, completed: true })
    expect(await get(job_id)).toMatchObject({ status: "completed", sent: 2, failed: 2, remaining: 0 })
    const failures = await run(OngageJobs.use((j) => j.failures(job_id)))
    expect(failures.map((f) => [f.seq, f.error_message])).toEqual([
      [2, "no valid Email"],
      [3, "no List_ID"]
    ])
  })

  it("two workers never send the same batch: concurrent passes at the same instant", async () => {
    const { job_id } = await upload(csvOf(50))
    await run(OngageJobs.use((j) => j.update(job_id, { interval_seconds: 60, lower_limit: 10, upper_limit: 10 })))
    await startAt(job_id, T0)
    fake.state.responseDelayMs = 100
    try {
      const other = makeRuntime()
      const [a, b] = await Promise.all([tick(T0), other.runPromise(OngageJobs.use((j) => j.runDue()).pipe(at(T0)))])
      await other.dispose()
      expect(a.length + b.length).toBe(1)
    } finally {
      fake.state.responseDelayMs = 0
    }
    expect(receivedEmails().length).toBe(10)
  })
})
