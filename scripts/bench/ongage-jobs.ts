/**
 * Ongage CSV jobs' schedule keeping: 100 jobs of 10,000 records each (limits [5, 20], interval 60 s)
 * run together on ONE drip worker (`OngageJobs.drip`, as `npx optimizer worker` runs it, with
 * DB_POOL_MAX 12 so that 10 batches go at once) against the fake Ongage answering each call after
 * `BENCH_ONGAGE_LATENCY_MS` (default 80 ms), through the real client (its 300 calls/min and
 * 10-in-flight limits). For `BENCH_ONGAGE_SECONDS` (default 150: three rounds) it records every
 * batch's lateness against its `next_run_at`, and every interval (the gap between two batches of a
 * job) against 60 s.
 *
 * `BENCH_ONGAGE_START=spread` (default): the jobs' first batches spread over the interval, as jobs
 * started by people are. `together`: every job due in the same second — the worst case for the
 * first batches, bounded below by jobs × Ongage latency / 10 calls in flight (100 × 80 ms / 10 =
 * 0.8 s for the last one); the next batch of a job is due an interval after its batch started, so
 * the jobs spread out after their first batch.
 *
 * Target (issue "Ongage CSV jobs"): every interval within a second of its schedule.
 */
import { Effect, Layer, ManagedRuntime, References } from "effect"
import { AppConfig, CSV_JOB_HEADERS, DatabaseLayer, OngageClient, OngageJobs, type CsvJobBatch } from "@optimizer/core"
import pg from "pg"
import { startFakeOngage } from "../../test/fakes/ongage.ts"
import type { Benchmark } from "./support.ts"

const JOBS = 100
const RECORDS = 10_000

const csvOf = (job: number) => {
  const lines = [CSV_JOB_HEADERS.join(",")]
  for (let i = 0; i < RECORDS; i++) lines.push(`112233,j${job}-${i}@example.com,UK,GB_FTD,4477${i},FTD,,live,u${i}`)
  return lines.join("\n")
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!

export const ongageJobsBenchmark: Benchmark = {
  name: "ongage-jobs",
  description: "100 CSV jobs × 10,000 records, [5, 20] every 60 s, on one drip worker: lateness of every batch",
  run: async (server) => {
    const seconds = Number(process.env.BENCH_ONGAGE_SECONDS ?? 150)
    const fake = await startFakeOngage()
    fake.state.responseDelayMs = Number(process.env.BENCH_ONGAGE_LATENCY_MS ?? 80)
    const url = await server.freshDatabase()
    const config = AppConfig.layerFrom({
      DATABASE_URL: url,
      DB_POOL_MAX: "12",
      LOG_LEVEL: "Warn",
      LIST_ID: fake.state.credentials.listId,
      X_USERNAME: fake.state.credentials.username,
      X_PASSWORD: fake.state.credentials.password,
      X_ACCOUNT_CODE: fake.state.credentials.accountCode,
      ONGAGE_API_URL: fake.url
    })
    const runtime = ManagedRuntime.make(
      OngageJobs.layer.pipe(
        Layer.provide(OngageClient.layer),
        Layer.provideMerge(DatabaseLayer),
        Layer.provideMerge(config),
        Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
      )
    )
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      const uploadStarted = performance.now()
      const ids: Array<string> = []
      for (let j = 0; j < JOBS; j++) {
        const answer = await runtime.runPromise(
          OngageJobs.use((o) => o.upload({ filename: `j${j}.csv`, body: csvOf(j) }))
        )
        ids.push(answer.job_id)
      }
      const uploadMs = performance.now() - uploadStarted
      await client.query("UPDATE csv_jobs SET interval_seconds = 60, lower_limit = 5, upper_limit = 20")
      for (const id of ids) await runtime.runPromise(OngageJobs.use((o) => o.start(id)))
      const together = process.env.BENCH_ONGAGE_START === "together"
      await client.query(
        `UPDATE csv_jobs SET next_run_at = date_trunc('second', now()) + interval '2 seconds' + $1 * interval '1 millisecond'
         FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM csv_jobs) o WHERE o.id = csv_jobs.id`.replace(
          "$1",
          together ? "0" : `o.k * ${Math.floor(60_000 / JOBS)}`
        )
      )

      const batches: Array<CsvJobBatch> = []
      const started = performance.now()
      await runtime.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            yield* OngageJobs.use((jobs) => jobs.drip({ onBatch: (b) => batches.push(b) }))
            yield* Effect.sleep(`${seconds} seconds`)
          })
        )
      )
      const elapsed = performance.now() - started
      const late = batches.map((b) => b.lateMs).sort((a, b) => a - b)
      const records = batches.reduce((n, b) => n + b.sent + b.failed, 0)
      const perJob = new Map<string, Array<number>>()
      for (const b of batches) perJob.set(b.jobId, [...(perJob.get(b.jobId) ?? []), b.startedAt])
      // Every interval of every job: the gap between two consecutive batches, against 60 s.
      const intervalErrors = [...perJob.values()]
        .flatMap((starts) => starts.slice(1).map((t, i) => Math.abs(t - starts[i]! - 60_000)))
        .sort((a, b) => a - b)
      const counts = [...perJob.values()].map((starts) => starts.length)
      return {
        start: together ? "together" : "spread",
        jobs: JOBS,
        records_per_job: RECORDS,
        upload_all_s: Number((uploadMs / 1000).toFixed(1)),
        run_s: Number((elapsed / 1000).toFixed(1)),
        batches: batches.length,
        batches_per_job_min: Math.min(...counts),
        batches_per_job_max: Math.max(...counts),
        records_sent: records,
        ongage_calls: fake.state.requests.length,
        ongage_latency_ms: fake.state.responseDelayMs,
        late_p50_ms: percentile(late, 50),
        late_p99_ms: percentile(late, 99),
        late_max_ms: late[late.length - 1] ?? 0,
        batches_over_1s_late: late.filter((ms) => ms > 1000).length,
        intervals: intervalErrors.length,
        interval_error_p50_ms: percentile(intervalErrors, 50),
        interval_error_p99_ms: percentile(intervalErrors, 99),
        interval_error_max_ms: intervalErrors[intervalErrors.length - 1] ?? 0,
        intervals_off_by_over_1s: intervalErrors.filter((ms) => ms > 1000).length,
        batch_errors: batches.filter((b) => b.error !== undefined).length
      }
    } finally {
      await client.end()
      await runtime.dispose()
      await fake.close()
    }
  }
}
