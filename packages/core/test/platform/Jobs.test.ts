/**
 * The Jobs service against a real PostgreSQL database of its own (pg-boss schema included): what a
 * user sees in `job_status` while and after jobs run, retries, singleton keys, schedules, and a
 * worker process killed mid-job whose job is finished exactly once by the next worker.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Deferred, Effect, Layer, ManagedRuntime, Option, References } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { AppConfig } from "../../src/platform/Config.ts"
import { DatabaseLive } from "../../src/platform/Database.ts"
import { UpstreamError, ValidationError } from "../../src/platform/Errors.ts"
import { Jobs, type JobInfo } from "../../src/platform/Jobs.ts"
import { CRASH_TEST_TABLES, TEST_JOBS_OPTIONS } from "./fixtures/jobsTestOptions.ts"

const makeRuntime = (url: string) =>
  ManagedRuntime.make(
    Jobs.layerWith(TEST_JOBS_OPTIONS).pipe(
      Layer.provideMerge(DatabaseLive),
      Layer.provideMerge(AppConfig.layerFrom({ DATABASE_URL: url })),
      Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )

let db: TestDatabase
let runtime: ReturnType<typeof makeRuntime>
let client: pg.Client

beforeAll(async () => {
  db = await createTestDatabase()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
  await client.query(CRASH_TEST_TABLES)
  runtime = makeRuntime(db.url)
  await runtime.runPromise(Effect.void) // builds the layer: starts pg-boss, installs its schema
})

afterAll(async () => {
  await runtime?.dispose()
  await client?.end()
  await db?.drop()
})

const jobs = <A, E>(f: (jobs: Jobs["Service"]) => Effect.Effect<A, E>) => runtime.runPromise(Jobs.use(f))

/** Polls `job_status` (through `Jobs.get`) until `done` holds, or fails after `timeoutMs`. */
const waitForJob = async (id: string, done: (job: JobInfo) => boolean, timeoutMs = 15_000): Promise<JobInfo> => {
  const until = Date.now() + timeoutMs
  let last: JobInfo | undefined
  while (Date.now() < until) {
    const found = await jobs((j) => j.get(id))
    if (Option.isSome(found)) {
      last = found.value
      if (done(last)) return last
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`job ${id} did not reach the expected state; last seen: ${JSON.stringify(last)}`)
}

const WORKER_FILE = fileURLToPath(new URL("./fixtures/crashableWorker.ts", import.meta.url))
const STEPS = 10

/** A worker in a process of its own (fixtures/crashableWorker.ts), once it says it is ready. */
const startWorker = async (queue: string, env: Record<string, string> = {}): Promise<ChildProcess> => {
  const child = spawn(process.execPath, [WORKER_FILE], {
    env: { PATH: process.env.PATH, DATABASE_URL: db.url, QUEUE: queue, STEPS: String(STEPS), STEP_MS: "150", ...env },
    stdio: ["ignore", "pipe", "inherit"]
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve()
    })
    child.on("exit", (code) => reject(new Error(`worker exited with ${code} before it was ready`)))
  })
  return child
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once("exit", () => resolve()))

describe.concurrent("Jobs", () => {
  it("runs a job: progress is visible while it runs, the result once it completes", async () => {
    const release = Deferred.makeUnsafe<void>()
    const done = await runtime.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Jobs
          yield* j.work("test.progress", (job) =>
            Effect.gen(function* () {
              yield* job.progress(3, 10)
              yield* Deferred.await(release)
              yield* job.progress(10, 10)
              return { rows: 10, input: job.data.file }
            })
          )
          const id = yield* j.enqueue("test.progress", { file: "a.csv" })
          const midway = yield* Effect.promise(() => waitForJob(id, (job) => job.processed === 3))
          expect(midway).toMatchObject({ state: "running", processed: 3, total: 10, attempts: 1, completedAt: null })
          expect(midway.startedAt).toBeInstanceOf(Date)
          yield* Deferred.succeed(release, undefined)
          return yield* Effect.promise(() => waitForJob(id, (job) => job.state === "completed"))
        })
      )
    )
    expect(done).toMatchObject({
      queue: "test.progress",
      state: "completed",
      processed: 10,
      total: 10,
      attempts: 1,
      result: { rows: 10, input: "a.csv" },
      error: null
    })
    expect(done.completedAt).toBeInstanceOf(Date)
    const listed = await jobs((j) => j.list({ queue: "test.progress" }))
    expect(listed.map((job) => job.id)).toEqual([done.id])
  })

  it("shows a completed job's progress done even when its last report was short of the total", async () => {
    const done = await runtime.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Jobs
          yield* j.work("test.progress-short", (job) => job.progress(3, 10).pipe(Effect.as("done")))
          const id = yield* j.enqueue("test.progress-short", {})
          return yield* Effect.promise(() => waitForJob(id, (job) => job.state === "completed"))
        })
      )
    )
    expect(done).toMatchObject({ state: "completed", processed: 10, total: 10, result: "done" })
  })

  it("settles from pg-boss's state a row its worker could not: completed with progress done, failed with its last progress", async () => {
    // No worker for this queue: the rows are put as a worker killed mid-job leaves them (`running`,
    // part-way), and pg-boss's job as it ended without that worker (completed, or failed on its last attempt).
    const queue = "test.settle"
    const completed = await jobs((j) => j.enqueue(queue, {}))
    const failed = await jobs((j) => j.enqueue(queue, {}))
    const neverReported = await jobs((j) => j.enqueue(queue, {}))
    for (const id of [completed, failed, neverReported]) {
      const progress = id === neverReported ? [null, null] : [50068, 200001]
      await client.query(
        "UPDATE job_status SET state = 'running', attempts = 1, started_at = now(), processed = $2, total = $3 WHERE job_id = $1",
        [id, ...progress]
      )
    }
    await client.query(
      `UPDATE pgboss.job SET state = 'completed', completed_on = now(), output = '{"value": {"rows": 200001}}'
       WHERE id = ANY($1::uuid[])`,
      [[completed, neverReported]]
    )
    await client.query(
      `UPDATE pgboss.job SET state = 'failed', completed_on = now(), output = '{"message": "job heartbeat timeout"}'
       WHERE id = $1`,
      [failed]
    )
    const settled = await jobs((j) => j.list({ queue }))
    const byId = new Map(settled.map((job) => [job.id, job]))
    expect(byId.get(completed)).toMatchObject({ state: "completed", processed: 200001, total: 200001 })
    expect(byId.get(failed)).toMatchObject({
      state: "failed",
      processed: 50068,
      total: 200001,
      error: "job heartbeat timeout"
    })
    expect(byId.get(neverReported)).toMatchObject({ state: "completed", processed: null, total: null })
  })

  it("keeps a live job that runs longer than the heartbeat window (no retry while it heartbeats)", async () => {
    const done = await runtime.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Jobs
          // 12 s > heartbeatSeconds (10): only the heartbeat keeps the supervisor from taking it away.
          yield* j.work("test.long", () => Effect.sleep("12 seconds").pipe(Effect.as("slow but alive")))
          const id = yield* j.enqueue("test.long", {})
          return yield* Effect.promise(() => waitForJob(id, (job) => job.state === "completed", 25_000))
        })
      )
    )
    expect(done).toMatchObject({ state: "completed", attempts: 1, result: "slow but alive" })
  }, 30_000)

  it("gives a closing worker's unfinished job back to the queue; the next worker completes it", async () => {
    const id = await runtime.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Jobs
          yield* j.work("test.shutdown", (job) =>
            job.attempt === 1 ? Effect.never : Effect.succeed({ attempt: job.attempt })
          )
          const id = yield* j.enqueue("test.shutdown", {})
          yield* Effect.promise(() => waitForJob(id, (job) => job.state === "running"))
          return id
        })
      )
    )
    // The scope closed: after drainSeconds (2) the handler was interrupted and the job put back.
    const requeued = await waitForJob(id, (job) => job.state !== "running")
    expect(requeued).toMatchObject({ state: "queued", attempts: 1 })
    expect(requeued.error).toContain("interrupted")
    const done = await runtime.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Jobs
          yield* j.work("test.shutdown", (job) => Effect.succeed({ attempt: job.attempt }))
          return yield* Effect.promise(() => waitForJob(id, (job) => job.state === "completed"))
        })
      )
    )
    expect(done).toMatchObject({ state: "completed", attempts: 2, result: { attempt: 2 }, error: null })
  })

  it("retries a retryable failure with backoff, then completes (attempts 2)", async () => {
    const done = await runtime.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Jobs
          yield* j.work("test.retry", (job) =>
            job.attempt === 1
              ? Effect.fail(new UpstreamError({ message: "voluum answered 503", service: "voluum", retryable: true }))
              : Effect.succeed({ attempt: job.attempt })
          )
          const id = yield* j.enqueue("test.retry", {})
          return yield* Effect.promise(() => waitForJob(id, (job) => job.state === "completed"))
        })
      )
    )
    expect(done).toMatchObject({ state: "completed", attempts: 2, result: { attempt: 2 }, error: null })
  })

  it("fails a non-retryable error at once, keeping its message (attempts 1)", async () => {
    const failed = await runtime.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Jobs
          yield* j.work("test.invalid", () =>
            Effect.fail(new ValidationError({ message: "column phone is missing", field: "phone" }))
          )
          const id = yield* j.enqueue("test.invalid", {})
          const failed = yield* Effect.promise(() => waitForJob(id, (job) => job.state === "failed"))
          // Longer than the retry delay: a retry would have started by now.
          yield* Effect.sleep("2500 millis")
          return { failed, later: Option.getOrThrow(yield* j.get(id)) }
        })
      )
    )
    expect(failed.failed).toMatchObject({
      state: "failed",
      attempts: 1,
      error: "column phone is missing",
      result: null
    })
    expect(failed.failed.completedAt).toBeInstanceOf(Date)
    expect(failed.later).toMatchObject({ state: "failed", attempts: 1 })
  })

  it("refuses a second job with the same singleton key while the first is queued; cancel frees the key", async () => {
    const first = await jobs((j) => j.enqueue("test.singleton", { n: 1 }, { singletonKey: "file-42" }))
    const conflict = await runtime.runPromise(
      Jobs.use((j) => j.enqueue("test.singleton", { n: 2 }, { singletonKey: "file-42" })).pipe(Effect.flip)
    )
    expect(conflict._tag).toBe("Conflict")
    expect(conflict.message).toContain("file-42")
    expect(conflict.message).toContain(first)
    // Other keys, and jobs without a key, are not affected.
    await jobs((j) => j.enqueue("test.singleton", { n: 3 }, { singletonKey: "file-43" }))
    await jobs((j) => j.enqueue("test.singleton", { n: 4 }))
    await jobs((j) => j.enqueue("test.singleton", { n: 5 }))

    const cancelled = await jobs((j) => j.cancel(first))
    expect(cancelled).toMatchObject({ id: first, state: "cancelled" })
    const again = await runtime.runPromise(Jobs.use((j) => j.cancel(first)).pipe(Effect.flip))
    expect(again._tag).toBe("Conflict")
    const second = await jobs((j) => j.enqueue("test.singleton", { n: 6 }, { singletonKey: "file-42" }))
    expect(second).not.toBe(first)
    expect(await jobs((j) => j.list({ queue: "test.singleton", state: "queued" }))).toHaveLength(4)
    const missing = await runtime.runPromise(
      Jobs.use((j) => j.cancel("00000000-0000-4000-8000-000000000000")).pipe(Effect.flip)
    )
    expect(missing._tag).toBe("NotFound")
  })

  it("creates jobs from a cron schedule (6-field expression: every second)", async () => {
    const done = await runtime.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const j = yield* Jobs
          yield* j.work("test.cron", (job) => Effect.succeed({ ran: job.data.report }))
          yield* j.schedule("test.cron", "* * * * * *", { report: "daily" })
          const schedules = yield* j.schedules
          expect(schedules).toContainEqual(
            expect.objectContaining({ queue: "test.cron", key: "default", cron: "* * * * * *", timezone: "UTC" })
          )
          const until = Date.now() + 15_000
          while (Date.now() < until) {
            const found = yield* j.list({ queue: "test.cron", state: "completed" })
            if (found.length > 0) {
              yield* j.unschedule("test.cron")
              return found
            }
            yield* Effect.sleep("200 millis")
          }
          return yield* Effect.die(new Error("the schedule created no job within 15 s"))
        })
      )
    )
    expect(done[0]).toMatchObject({ queue: "test.cron", state: "completed", attempts: 1, result: { ran: "daily" } })
    const left = await jobs((j) => j.schedules)
    expect(left.filter((s) => s.queue === "test.cron")).toEqual([])
    const invalid = await runtime.runPromise(Jobs.use((j) => j.schedule("test.cron", "not a cron")).pipe(Effect.flip))
    expect(invalid._tag).toBe("ValidationError")
  })

  it("finishes exactly once a job whose worker process was SIGKILLed mid-way", async () => {
    const queue = "test.crash"
    const started = Date.now()
    const first = await startWorker(queue)
    const id = await jobs((j) => j.enqueue(queue, {}))
    const midway = await waitForJob(id, (job) => (job.processed ?? 0) >= 3)
    first.kill("SIGKILL")
    await exited(first)
    expect(midway).toMatchObject({ state: "running", attempts: 1 })
    const killedAt = Date.now()

    const second = await startWorker(queue)
    try {
      const done = await waitForJob(id, (job) => job.state === "completed", 25_000)
      const recoveredMs = Date.now() - killedAt
      expect(done).toMatchObject({ state: "completed", attempts: 2, processed: STEPS, total: STEPS, error: null })
      const result = done.result as { steps: number; resumedFrom: number; pid: number }
      expect(result.steps).toBe(STEPS)
      expect(result.resumedFrom).toBeGreaterThanOrEqual(3)
      expect(result.pid).toBe(second.pid)

      const sideEffects = await client.query("SELECT pid FROM jobs_test_side_effect WHERE job_id = $1", [id])
      expect(sideEffects.rows).toEqual([{ pid: second.pid }])
      const attempts = await client.query(
        "SELECT attempt, pid FROM jobs_test_attempts WHERE job_id = $1 ORDER BY attempt",
        [id]
      )
      expect(attempts.rows).toEqual([
        { attempt: 1, pid: first.pid },
        { attempt: 2, pid: second.pid }
      ])
      const statusRows = await client.query("SELECT state FROM job_status WHERE job_id = $1", [id])
      expect(statusRows.rows).toEqual([{ state: "completed" }])
      console.info(`crash test: completed ${recoveredMs} ms after the SIGKILL, ${Date.now() - started} ms in all`)
    } finally {
      second.kill("SIGTERM")
      await exited(second)
    }
  }, 45_000)

  it("shows the progress done of a job completed by a retry that reported none after a SIGKILL", async () => {
    const queue = "test.crash-quiet"
    const first = await startWorker(queue, { QUIET_RETRY: "1" })
    const id = await jobs((j) => j.enqueue(queue, {}))
    const midway = await waitForJob(id, (job) => (job.processed ?? 0) >= 3)
    first.kill("SIGKILL")
    await exited(first)
    expect(midway.processed).toBeLessThan(STEPS)

    const second = await startWorker(queue, { QUIET_RETRY: "1" })
    try {
      const done = await waitForJob(id, (job) => job.state === "completed", 25_000)
      expect(done).toMatchObject({ state: "completed", attempts: 2, processed: STEPS, total: STEPS })
      expect((done.result as { resumedFrom: number }).resumedFrom).toBeGreaterThanOrEqual(3)
    } finally {
      second.kill("SIGTERM")
      await exited(second)
    }
  }, 45_000)

  it("marks failed (not running forever) a job whose worker died on its last attempt", async () => {
    const queue = "test.crash-last"
    const worker = await startWorker(queue)
    const id = await jobs((j) => j.enqueue(queue, {}, { retryLimit: 0 }))
    await waitForJob(id, (job) => (job.processed ?? 0) >= 1)
    worker.kill("SIGKILL")
    await exited(worker)
    // No worker is left: the supervisor fails the job on heartbeat loss, the reconciliation shows it.
    const failed = await waitForJob(id, (job) => job.state !== "running", 25_000)
    expect(failed).toMatchObject({ state: "failed", attempts: 1, error: "job heartbeat timeout" })
    expect(failed.completedAt).toBeInstanceOf(Date)
  }, 45_000)
})
