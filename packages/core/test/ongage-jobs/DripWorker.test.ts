/**
 * The drip loop in real time and in real processes: jobs with one-second intervals (set in the
 * database: the API's minimum is 60 s) complete on their own, and a worker process SIGKILLed while
 * its batch is at Ongage loses nothing — a second process resends that batch (an idempotent upsert)
 * and every record ends up marked sent exactly once.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Layer, ManagedRuntime } from "effect"
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
const env = () => ({
  DATABASE_URL: db.url,
  LIST_ID: fake.state.credentials.listId,
  X_USERNAME: fake.state.credentials.username,
  X_PASSWORD: fake.state.credentials.password,
  X_ACCOUNT_CODE: fake.state.credentials.accountCode,
  ONGAGE_API_URL: fake.url
})

beforeAll(async () => {
  db = await createTestDatabase()
  fake = await startFakeOngage()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
  runtime = ManagedRuntime.make(
    OngageJobs.layer.pipe(
      Layer.provide(OngageClient.layerWith({ baseDelay: "5 millis", maxDelay: "20 millis", maxRetries: 2 })),
      Layer.provideMerge(DatabaseLayer),
      Layer.provideMerge(AppConfig.layerFrom(env()))
    )
  )
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
  fake.state.responseDelayMs = 0
})

const run = <A, E>(effect: Effect.Effect<A, E, OngageJobs>) => runtime.runPromise(effect)
const csvOf = (n: number, prefix: string) =>
  [
    CSV_JOB_HEADERS.join(","),
    ...Array.from({ length: n }, (_, i) => `112233,${prefix}${i + 1}@example.com,UK,S,1,FTD,,live,u`)
  ].join("\n")

/** A started job whose interval is `seconds` (below the API's minimum, for a quick test) and limits [lower, upper]. */
const startedJob = async (n: number, prefix: string, seconds: number, lower: number, upper: number) => {
  const { job_id } = await run(OngageJobs.use((j) => j.upload({ filename: `${prefix}.csv`, body: csvOf(n, prefix) })))
  await client.query("UPDATE csv_jobs SET interval_seconds = $2, lower_limit = $3, upper_limit = $4 WHERE id = $1", [
    job_id,
    seconds,
    lower,
    upper
  ])
  await run(OngageJobs.use((j) => j.start(job_id)))
  return job_id
}

const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000) => {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}
const allCompleted = async () =>
  Number((await client.query("SELECT count(*) FROM csv_jobs WHERE status <> 'completed'")).rows[0].count) === 0

const WORKER_FILE = fileURLToPath(new URL("./fixtures/dripWorker.ts", import.meta.url))
const startWorker = async (): Promise<ChildProcess> => {
  const child = spawn(process.execPath, [WORKER_FILE], {
    env: { PATH: process.env.PATH, ...env(), POLL_MS: "50" },
    stdio: ["ignore", "pipe", "inherit"]
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve()
    })
    child.on("exit", (code) => reject(new Error(`drip worker exited with ${code} before it was ready`)))
  })
  return child
}
const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once("exit", () => resolve()))

describe("the drip loop", () => {
  it("completes jobs side by side on its own, every record sent once", async () => {
    const ids = [await startedJob(12, "a", 1, 3, 5), await startedJob(12, "b", 1, 3, 5)]
    await run(
      Effect.scoped(
        Effect.gen(function* () {
          yield* OngageJobs.use((j) => j.drip({ pollMillis: 50 }))
          yield* Effect.promise(() => waitFor("both jobs to complete", allCompleted))
        })
      )
    )
    expect(ids.length).toBe(2)
    const emails = fake.state.received.map((c) => c.email)
    expect(emails.length).toBe(24)
    expect(new Set(emails).size).toBe(24)
  }, 40_000)

  it("a worker SIGKILLed with a batch at Ongage: another finishes the job, every record marked sent once", async () => {
    const jobId = await startedJob(40, "k", 1, 10, 10)
    fake.state.responseDelayMs = 1500
    const first = await startWorker()
    // The first batch is at Ongage (the fake holds the answer 1.5 s): kill the worker before it can commit.
    await waitFor("the first batch to reach Ongage", async () => fake.state.requests.length > 0, 10_000)
    first.kill("SIGKILL")
    await exited(first)
    expect(Number((await client.query('SELECT "cursor" FROM csv_jobs')).rows[0].cursor)).toBe(0)
    fake.state.responseDelayMs = 0
    const second = await startWorker()
    try {
      await waitFor("the job to complete", allCompleted)
    } finally {
      second.kill("SIGTERM")
      await exited(second)
    }
    const job = await run(OngageJobs.use((j) => j.get(jobId)))
    expect(job).toMatchObject({ status: "completed", sent: 40, failed: 0, remaining: 0 })
    // The fake still takes in the killed worker's batch when its delay ends.
    await waitFor("the killed batch's request to end", async () => fake.state.received.length >= 50, 5_000)
    const times = new Map<string, number>()
    for (const c of fake.state.received) times.set(c.email, (times.get(c.email) ?? 0) + 1)
    expect(times.size).toBe(40)
    // Only the batch in flight at the kill (the first ten records) reached Ongage twice.
    const twice = [...times].filter(([, n]) => n > 1).map(([email]) => email)
    expect(twice.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `k${i + 1}@example.com`).sort())
    const marked = await client.query("SELECT count(*)::int AS n FROM csv_active_records WHERE sent_at IS NOT NULL")
    expect(marked.rows[0].n).toBe(40)
  }, 60_000)
})
