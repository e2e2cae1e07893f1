/**
 * The scheduler against a real PostgreSQL database of its own: the conversions windows it asks for
 * tick after tick (driven by a test clock along the configured cron), what `scheduler_runs` records,
 * and two scheduler processes on one database running each tick once (pg-boss's cron pass, real time).
 *
 * The operations are the plug points of `ScheduledOperations`: here a recorder stands in for the
 * Voluum and MessageWhiz operations, and one test runs the real ones against the fakes.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cron, Effect, Exit, Layer, ManagedRuntime, References, Result, Scope } from "effect"
import { TestClock } from "effect/testing"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { AppConfig, parseSettings, type AppSettings, type Env } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"
import { UpstreamError } from "../../src/platform/Errors.ts"
import { Jobs } from "../../src/platform/Jobs.ts"
import {
  ScheduledOperations,
  unavailable,
  type ScheduledOperation,
  type TimeWindow
} from "../../src/scheduler/ScheduledOperations.ts"
import { conversionsRequest, conversionsWindow, previousDayWindow, Scheduler } from "../../src/scheduler/Scheduler.ts"
import { TEST_JOBS_OPTIONS } from "../platform/fixtures/jobsTestOptions.ts"
import { startFakeVoluum } from "../../../../test/fakes/voluum.ts"
import { broadcast, startFakeMessageWhiz } from "../../../../test/fakes/messagewhiz.ts"
import { Mmd } from "../../src/mmd/Mmd.ts"
import { FileStore } from "../../src/platform/FileStore.ts"
import { Classifier } from "../../src/classification/Classifier.ts"
import { Encryption } from "../../src/encryption/Encryption.ts"
import { Lists } from "../../src/lists/Lists.ts"
import { OngageClient } from "../../src/ongage/OngageClient.ts"
import { ConversionsSync } from "../../src/voluum/ConversionsSync.ts"
import { ReportsSync } from "../../src/voluum/ReportsSync.ts"
import { VoluumClient } from "../../src/voluum/VoluumClient.ts"

const at = (iso: string) => new Date(iso)

describe("windows", () => {
  it("start the overlap before the last successful run's end, floored to the hour, and end now", () => {
    // 14:55 ran fine; the 15:00 and 15:05 runs still re-read 14:00–15:00, so a conversion posted at
    // 14:59 that Voluum shows a few minutes late is fetched (the original polled only the current hour).
    expect(conversionsWindow(at("2026-02-07T15:00:00Z"), at("2026-02-07T14:55:00Z"), 10)).toEqual({
      from: at("2026-02-07T14:00:00Z"),
      to: at("2026-02-07T15:00:00Z")
    })
    expect(conversionsWindow(at("2026-02-07T15:05:00Z"), at("2026-02-07T15:00:00Z"), 10)).toEqual({
      from: at("2026-02-07T14:00:00Z"),
      to: at("2026-02-07T15:05:00Z")
    })
    expect(conversionsWindow(at("2026-02-07T15:15:00Z"), at("2026-02-07T15:10:00Z"), 10).from).toEqual(
      at("2026-02-07T15:00:00Z")
    )
    // A first run looks back over the overlap; a run after a long outage catches up at most 7 days.
    expect(conversionsWindow(at("2026-02-07T00:03:00Z"), undefined, 10).from).toEqual(at("2026-02-06T23:00:00Z"))
    expect(conversionsWindow(at("2026-02-20T12:00:00Z"), at("2026-01-01T00:00:00Z"), 10).from).toEqual(
      at("2026-02-13T12:00:00Z")
    )
  })

  it("ask Voluum for whole hours, and give the daily jobs yesterday", () => {
    expect(conversionsRequest({ from: at("2026-02-07T14:00:00Z"), to: at("2026-02-07T15:05:00Z") })).toEqual({
      from: at("2026-02-07T14:00:00Z"),
      to: at("2026-02-07T16:00:00Z")
    })
    expect(conversionsRequest({ from: at("2026-02-07T15:00:00Z"), to: at("2026-02-07T15:00:00Z") })).toEqual({
      from: at("2026-02-07T15:00:00Z"),
      to: at("2026-02-07T16:00:00Z")
    })
    expect(previousDayWindow(at("2026-03-01T05:00:00Z"))).toEqual({
      from: at("2026-02-28T00:00:00Z"),
      to: at("2026-03-01T00:00:00Z")
    })
  })
})

/** Operations that record what they were asked; `fail` makes the next calls of one fail. */
const recorder = () => {
  const calls: Array<{ operation: string; window: TimeWindow; at: number }> = []
  const failing = new Set<string>()
  const op =
    (operation: string): ScheduledOperation =>
    (window) =>
      Effect.suspend(() => {
        calls.push({ operation, window, at: Date.now() })
        return failing.has(operation)
          ? Effect.fail(new UpstreamError({ message: "Voluum answered 503", service: "voluum", retryable: false }))
          : Effect.succeed({ fetched: calls.length })
      })
  const layer = Layer.succeed(
    ScheduledOperations,
    ScheduledOperations.of({
      conversions: op("conversions"),
      reports: op("reports"),
      mmdCosts: unavailable("mmdCosts", "MessageWhiz costs update not available in this build"),
      mmdSnapshot: op("mmdSnapshot")
    })
  )
  return { calls, failing, layer }
}

/** Credentials that make every schedule's integration "configured" (the recorder never calls them). */
const INTEGRATIONS: Env = { VOLUUM_ACCESS_ID: "id", VOLUUM_ACCESS_KEY: "key", MMD_API_KEY: "key" }

const settingsOf = (env: Env): AppSettings => {
  const parsed = parseSettings(env)
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  return parsed.success
}

/** A scheduler process's services; `operations` may need the platform (the real syncs do). */
const schedulerRuntime = (settings: AppSettings, operations: Layer.Layer<ScheduledOperations, unknown, any>) =>
  ManagedRuntime.make(
    Scheduler.layer.pipe(
      Layer.provide(operations),
      Layer.provideMerge(Jobs.layerWith({ ...TEST_JOBS_OPTIONS, supervise: false, instanceName: "scheduler" })),
      Layer.provideMerge(DatabaseLayer),
      Layer.provideMerge(Layer.succeed(AppConfig, settings)),
      Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Error"))
    ) as Layer.Layer<Scheduler | Jobs, unknown>
  )

let db: TestDatabase
let client: pg.Client

beforeAll(async () => {
  db = await createTestDatabase()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
})

afterAll(async () => {
  await client?.end()
  await db?.drop()
})

describe("Scheduler", () => {
  it("fires conversions every 5 minutes with overlapping windows, catching up after a failed run (test clock)", async () => {
    const settings = settingsOf({ DATABASE_URL: db.url })
    const ops = recorder()
    const runtime = schedulerRuntime(settings, ops.layer)
    const TICKS = 40
    try {
      const cron = Cron.parseUnsafe(settings.schedules.conversions, "UTC")
      const ticks: Array<Date> = []
      for (const tick of Cron.sequence(cron, at("2026-02-07T13:41:00Z"))) {
        if (ticks.push(tick) === TICKS) break
      }
      await runtime.runPromise(
        Effect.gen(function* () {
          const scheduler = yield* Scheduler
          for (const [i, tick] of ticks.entries()) {
            yield* TestClock.setTime(tick.getTime())
            if (i === 20) ops.failing.add("conversions")
            if (i === 23) ops.failing.delete("conversions")
            yield* Effect.ignore(scheduler.runNow("conversions"))
          }
        }).pipe(Effect.provide(TestClock.layer()))
      )
    } finally {
      await runtime.dispose()
    }
    const runs = (
      await client.query<{
        started_at: Date
        outcome: string
        window_from: Date
        window_to: Date
        error: string | null
      }>(
        "SELECT started_at, outcome, window_from, window_to, error FROM scheduler_runs WHERE schedule = 'conversions' ORDER BY started_at"
      )
    ).rows
    expect(runs).toHaveLength(TICKS)
    // Every 5 minutes, on the cron's ticks.
    expect(runs[0]!.started_at).toEqual(at("2026-02-07T13:45:00Z"))
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i]!.started_at.getTime() - runs[i - 1]!.started_at.getTime()).toBe(5 * 60_000)
    }
    expect(runs.slice(20, 23).map((r) => [r.outcome, r.error])).toEqual(
      Array.from({ length: 3 }, () => ["failed", "Voluum answered 503"])
    )
    // Each window starts at least the overlap before the end of the last successful run (whole hours),
    // so consecutive successful windows overlap and nothing between them is skipped.
    let lastSuccessEnd: Date | undefined
    for (const run of runs) {
      expect(run.window_to).toEqual(run.started_at)
      expect(run.window_from.getTime() % 3_600_000).toBe(0)
      if (lastSuccessEnd !== undefined) {
        expect(run.window_from.getTime()).toBeLessThanOrEqual(lastSuccessEnd.getTime() - 10 * 60_000)
      }
      if (run.outcome === "success") lastSuccessEnd = run.window_to
    }
    // After the failed runs of 15:25–15:35, the 15:40 run starts from the last success (15:20) − 10 min, floored.
    expect([runs[23]!.started_at, runs[23]!.window_from]).toEqual([
      at("2026-02-07T15:40:00Z"),
      at("2026-02-07T15:00:00Z")
    ])
    // A conversion posted at any minute, visible in Voluum up to 5 minutes later, is inside the request
    // of some successful run that started after it became visible.
    const requests = ops.calls
      .filter((c, i) => c.operation === "conversions" && !(i >= 20 && i < 23))
      .map((c, i) => ({ ...c.window, ran: runs.filter((r) => r.outcome === "success")[i]!.started_at }))
    for (let t = at("2026-02-07T13:45:00Z").getTime(); t < at("2026-02-07T16:50:00Z").getTime(); t += 60_000) {
      const covered = requests.some(
        (r) => r.ran.getTime() >= t + 5 * 60_000 && r.from.getTime() <= t && t < r.to.getTime()
      )
      expect(covered, new Date(t).toISOString()).toBe(true)
    }
  })

  it("records every run: success with its counts, failure with its error, and the operations not in this build", async () => {
    const settings = settingsOf({ DATABASE_URL: db.url })
    const ops = recorder()
    const runtime = schedulerRuntime(settings, ops.layer)
    try {
      const reports = await runtime.runPromise(Scheduler.use((s) => s.runNow("reports")))
      const daily = await runtime.runPromise(Effect.flip(Scheduler.use((s) => s.runNow("mmd-daily"))))
      expect(reports).toMatchObject({ schedule: "reports", outcome: "success", counts: { fetched: 1 }, error: null })
      expect(daily).toMatchObject({ _tag: "OperationUnavailable" })
      // The snapshot ran even though the cost update could not (as the original's loop did).
      expect(ops.calls.map((c) => c.operation)).toEqual(["reports", "mmdSnapshot"])
      const listed = await runtime.runPromise(Scheduler.use((s) => s.runs({ limit: 2 })))
      expect(listed.map((r) => [r.schedule, r.outcome, r.error])).toEqual([
        ["mmd-daily", "failed", "MessageWhiz costs update not available in this build"],
        ["reports", "success", null]
      ])
      expect(listed[1]!.counts).toEqual({ fetched: 1 })
      expect(listed[1]!.finishedAt).toBeInstanceOf(Date)
    } finally {
      await runtime.dispose()
    }
  })

  it("calls the Voluum syncs and the MessageWhiz operations of this build", async () => {
    const voluum = await startFakeVoluum()
    const mw = await startFakeMessageWhiz()
    const storageDir = await mkdtemp(join(tmpdir(), "optimizer-scheduler-"))
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)
    mw.state.links.push({ id: 1, url: "https://trk.example.com/2213facf-7ebb-42b1-b1c5-eea60c5f9076" })
    mw.state.broadcasts.push(broadcast({ id: 1, sendDate: `${yesterday}T03:00:00.000Z`, linkId: 1, realPrice: 1234 }))
    const settings = settingsOf({
      DATABASE_URL: db.url,
      STORAGE_DIR: storageDir,
      VOLUUM_API_URL: voluum.url,
      VOLUUM_ACCESS_ID: voluum.state.credentials.accessId,
      VOLUUM_ACCESS_KEY: voluum.state.credentials.accessKey,
      MMD_API_KEY: mw.state.apiKey,
      MMD_API_URL: mw.url
    })
    const syncs = Layer.mergeAll(ReportsSync.layer, ConversionsSync.layer, Mmd.layer).pipe(
      Layer.provide(
        Layer.mergeAll(
          Lists.layer,
          Classifier.layer,
          Encryption.layer,
          VoluumClient.layer,
          OngageClient.layer,
          FileStore.layer
        )
      )
    )
    const runtime = schedulerRuntime(settings, ScheduledOperations.layer.pipe(Layer.provide(syncs)))
    try {
      const conversions = await runtime.runPromise(Scheduler.use((s) => s.runNow("conversions")))
      expect(conversions).toMatchObject({ outcome: "success", counts: { fetched: 0, inserted: 0 } })
      const asked = voluum.state.requests.filter((r) => r.path === "/report/conversions")
      expect(asked.length).toBeGreaterThan(0)
      for (const r of asked) {
        expect(r.query.get("from")).toMatch(/T\d{2}:00:00/)
        expect(r.query.get("to")).toMatch(/T\d{2}:00:00/)
      }
      const daily = await runtime.runPromise(Scheduler.use((s) => s.runNow("mmd-daily")))
      expect(daily).toMatchObject({
        outcome: "success",
        counts: {
          costs: { date: yesterday, campaigns: 1, broadcasts: 1, totalCost: 12.34 },
          snapshot: { date: yesterday, broadcasts: 1, skipped: 0 }
        }
      })
      expect(voluum.state.costUpdates).toHaveLength(1)
      const runs = await runtime.runPromise(Scheduler.use((s) => s.runs({ limit: 2 })))
      expect(runs.map((r) => [r.schedule, r.outcome, r.error])).toEqual([
        ["mmd-daily", "success", null],
        ["conversions", "success", null]
      ])
    } finally {
      await runtime.dispose()
      await voluum.close()
      await mw.close()
      await rm(storageDir, { recursive: true, force: true })
    }
  })

  it("registers the configured crons (UTC) on the jobs engine, and removes them when disabled", async () => {
    const settings = settingsOf({ ...INTEGRATIONS, DATABASE_URL: db.url, SCHEDULE_REPORTS: "30 1 * * *" })
    const runtime = schedulerRuntime(settings, recorder().layer)
    try {
      await runtime.runPromise(Scheduler.use((s) => s.register))
      const schedules = await runtime.runPromise(Jobs.use((j) => j.schedules))
      expect(
        schedules
          .filter((s) => s.queue.startsWith("scheduler."))
          .map((s) => [s.queue, s.cron, s.timezone])
          .sort()
      ).toEqual([
        ["scheduler.conversions", "*/5 * * * *", "UTC"],
        ["scheduler.mmd-daily", "0 5 * * *", "UTC"],
        ["scheduler.reports", "30 1 * * *", "UTC"]
      ])
    } finally {
      await runtime.dispose()
    }
    const disabled = schedulerRuntime(
      settingsOf({ ...INTEGRATIONS, DATABASE_URL: db.url, SCHEDULER_ENABLED: "false" }),
      recorder().layer
    )
    try {
      expect(await disabled.runPromise(Scheduler.use((s) => s.register))).toEqual([])
      const schedules = await disabled.runPromise(Jobs.use((j) => j.schedules))
      expect(schedules.filter((s) => s.queue.startsWith("scheduler."))).toEqual([])
    } finally {
      await disabled.dispose()
    }
  })

  it("does not register a schedule whose integration is not configured", async () => {
    const runtime = schedulerRuntime(settingsOf({ DATABASE_URL: db.url, MMD_API_KEY: "key" }), recorder().layer)
    try {
      const registered = await runtime.runPromise(Scheduler.use((s) => s.register))
      expect(registered.map((d) => d.name)).toEqual(["mmd-daily"])
      const schedules = await runtime.runPromise(Jobs.use((j) => j.schedules))
      expect(schedules.filter((s) => s.queue.startsWith("scheduler.")).map((s) => s.queue)).toEqual([
        "scheduler.mmd-daily"
      ])
    } finally {
      await runtime.dispose()
    }
  })

  it("two scheduler processes on one database run each tick once (pg-boss cron pass, real time)", async () => {
    const own = await createTestDatabase()
    // Every second: each minute slot has a due occurrence at every cron pass (1 s) of both processes;
    // pg-boss turns a slot into exactly one job.
    const settings = settingsOf({ ...INTEGRATIONS, DATABASE_URL: own.url, SCHEDULE_CONVERSIONS: "* * * * * *" })
    const ops = recorder()
    const first = schedulerRuntime(settings, ops.layer)
    const second = schedulerRuntime(settings, ops.layer)
    const scopes: Array<[typeof first, Scope.Closeable]> = []
    const check = new pg.Client({ connectionString: own.url })
    await check.connect()
    try {
      for (const runtime of [first, second]) {
        const scope = await runtime.runPromise(Scope.make())
        await runtime.runPromise(Scheduler.use((s) => s.start).pipe(Scope.provide(scope)))
        scopes.push([runtime, scope])
      }
      const started = Date.now()
      while (Date.now() - started < 9_000) await new Promise((r) => setTimeout(r, 250))
      const runs = (
        await check.query<{ slot: Date; n: number }>(
          `SELECT date_trunc('minute', started_at) AS slot, count(*)::int AS n FROM scheduler_runs
           WHERE schedule = 'conversions' GROUP BY 1 ORDER BY 1`
        )
      ).rows
      expect(runs.length).toBeGreaterThanOrEqual(1)
      expect(runs.every((r) => r.n === 1)).toBe(true)
      expect(ops.calls.filter((c) => c.operation === "conversions")).toHaveLength(runs.length)
    } finally {
      for (const [runtime, scope] of scopes) await runtime.runPromise(Scope.close(scope, Exit.void))
      await first.dispose()
      await second.dispose()
      await check.end()
      await own.drop()
    }
  }, 60_000)
})
