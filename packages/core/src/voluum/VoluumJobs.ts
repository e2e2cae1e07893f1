/**
 * The Voluum syncs as durable jobs, and the job handlers of the Voluum domain.
 *
 * - `syncReports` / `syncConversions` (behind `/sync-voluum-reports`, `/sync-voluum-conversions`):
 *   the original ran the sync inside the request; a large window takes minutes, and a request that
 *   times out must not lose the work. So the sync is queued as a job and the call WAITS for it up to
 *   `waitSeconds` (default 25): a sync that finishes in time answers with its result, exactly what the
 *   synchronous original answered; a longer one answers with its job id (HTTP 202), to follow at
 *   `/jobs/<id>`. The settings and the window are checked before queuing (503 / 400 at once).
 * - `syncReportsForRange` / `syncConversionsForRange` (the `…_for_range` endpoints): one job per day
 *   `[start_day, end_day)` of a month, each `00:00Z → next day 00:00Z`; the last day of a month ends at
 *   the next month's first day (the original built the 32nd, an invalid date). Answered at once.
 * - Sync jobs run one at a time per worker (`concurrency: 1`): they share Voluum's rate limit.
 *
 * A job's failure is retried when it is transient (Voluum or the database unreachable); the sync is
 * idempotent — lists end in the same state, conversions are upserted, nothing is pushed twice — except
 * that a retried report sync appends its rows to the (append-only) history again.
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { AppConfig, requireIntegration } from "../platform/Config.ts"
import { ValidationError, type Conflict, type DatabaseError, type NotConfigured } from "../platform/Errors.ts"
import { Jobs, type JobInfo, type QueueHandler, type RunningJob } from "../platform/Jobs.ts"
import { ConversionsSync, type ConversionsSyncResult } from "./ConversionsSync.ts"
import { RegSearch, REG_SEARCH_QUEUE } from "./RegSearch.ts"
import { ReportsSync, utcWindow, type ReportsSyncResult, type SyncWindow } from "./ReportsSync.ts"
import { SmartCleaning, SMART_CLEANING_QUEUE } from "./SmartCleaning.ts"
import { formatVoluumHour, hourWindow } from "./VoluumSchemas.ts"

export const REPORTS_SYNC_QUEUE = "voluum-reports-sync"
export const CONVERSIONS_SYNC_QUEUE = "voluum-conversions-sync"

/** The original's defaults of `SyncDate` (app/schema.py). */
export const DEFAULT_SYNC_FROM = "2025-12-12T00:00:00.000Z"
export const DEFAULT_SYNC_TO = "2025-12-13T00:00:00.000Z"
export const DEFAULT_WAIT_SECONDS = 25

/** A sync job that failed (or was cancelled) while the caller waited for it. */
export class SyncJobFailed extends Schema.TaggedError<SyncJobFailed>()("SyncJobFailed", {
  message: Schema.String,
  jobId: Schema.String
}) {}

/** A sync that finished while the caller waited, or the job to follow. */
export type SyncOutcome<A> =
  | { readonly state: "completed"; readonly jobId: string; readonly result: A }
  | { readonly state: "queued" | "running"; readonly jobId: string }

/** Days `[startDay, endDay)` of a month (the original's `SyncDataInRangeRequest`). */
export interface DayRange {
  readonly year: number
  readonly month: number
  readonly startDay: number
  readonly endDay: number
}

export interface RangeQueued {
  readonly status: "success"
  readonly job_ids: ReadonlyArray<string>
  /** The windows queued, one per job. */
  readonly windows: ReadonlyArray<{ readonly from: string; readonly to: string }>
}

/**
 * The day windows of a range, rolling over the month's end. The days themselves must exist in the
 * month (`end_day` may be the last day + 1); an empty range (`end_day <= start_day`) has none, as in
 * the original.
 */
export const dayWindows = (
  range: DayRange
): ReadonlyArray<{ readonly from: Date; readonly to: Date }> | ValidationError => {
  const { year, month, startDay, endDay } = range
  if (!Number.isInteger(year) || year < 2000 || year > 2100) {
    return new ValidationError({ message: `year must be from 2000 to 2100, got ${year}`, field: "year" })
  }
  if (!Number.isInteger(month) || month < 1 || month > 12) {
    return new ValidationError({ message: `month must be from 1 to 12, got ${month}`, field: "month" })
  }
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (!Number.isInteger(startDay) || startDay < 1 || startDay > daysInMonth) {
    return new ValidationError({
      message: `start_day must be a day of ${year}-${String(month).padStart(2, "0")} (1 to ${daysInMonth}), got ${startDay}`,
      field: "start_day"
    })
  }
  if (!Number.isInteger(endDay) || endDay > daysInMonth + 1) {
    return new ValidationError({
      message: `end_day is exclusive and at most ${daysInMonth + 1} for ${year}-${String(month).padStart(2, "0")}, got ${endDay}`,
      field: "end_day"
    })
  }
  const windows: Array<{ from: Date; to: Date }> = []
  for (let day = startDay; day < endDay; day++) {
    windows.push({ from: new Date(Date.UTC(year, month - 1, day)), to: new Date(Date.UTC(year, month - 1, day + 1)) })
  }
  return windows
}

export type SyncStartError = NotConfigured | ValidationError | DatabaseError | Conflict | SyncJobFailed

const WindowData = Schema.Struct({ from: Schema.String, to: Schema.String })
const decodeWindow = Schema.decodeUnknownEffect(WindowData)

const windowOf = (job: RunningJob) =>
  decodeWindow(job.data).pipe(
    Effect.mapError(() => new ValidationError({ message: `job ${job.id} has no from/to window` }))
  )

/** The job handlers of the Voluum domain, for `Workers.ts`. */
export const VOLUUM_JOB_HANDLERS: ReadonlyArray<
  QueueHandler<ReportsSync | ConversionsSync | SmartCleaning | RegSearch>
> = [
  {
    queue: REPORTS_SYNC_QUEUE,
    concurrency: 1,
    run: (job) =>
      Effect.flatMap(windowOf(job), (window) =>
        ReportsSync.use((s) => s.syncReports(window, { actor: `job:${job.id}` }))
      )
  },
  {
    queue: CONVERSIONS_SYNC_QUEUE,
    concurrency: 1,
    run: (job) => Effect.flatMap(windowOf(job), (window) => ConversionsSync.use((s) => s.syncConversions(window)))
  },
  { queue: SMART_CLEANING_QUEUE, concurrency: 1, run: (job) => SmartCleaning.use((s) => s.runJob(job)) },
  { queue: REG_SEARCH_QUEUE, concurrency: 1, run: (job) => RegSearch.use((s) => s.runJob(job)) }
]

export class VoluumSyncJobs extends Context.Service<
  VoluumSyncJobs,
  {
    /** Queues a reports sync of the window and waits for it up to `waitSeconds` (module comment). */
    readonly syncReports: (
      window: SyncWindow,
      options?: { readonly waitSeconds?: number }
    ) => Effect.Effect<SyncOutcome<ReportsSyncResult>, SyncStartError>
    /** One reports-sync job per day of the range. */
    readonly syncReportsForRange: (range: DayRange) => Effect.Effect<RangeQueued, SyncStartError>
    readonly syncConversions: (
      window: SyncWindow,
      options?: { readonly waitSeconds?: number }
    ) => Effect.Effect<SyncOutcome<ConversionsSyncResult>, SyncStartError>
    readonly syncConversionsForRange: (range: DayRange) => Effect.Effect<RangeQueued, SyncStartError>
  }
>()("@optimizer/core/voluum/VoluumSyncJobs") {
  static readonly layer = Layer.effect(
    VoluumSyncJobs,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const jobs = yield* Jobs

      const checkedWindow = (window: SyncWindow) =>
        Effect.gen(function* () {
          yield* requireIntegration("Voluum", settings.voluum)
          const checked = hourWindow(utcWindow(window), { from: "from_date", to: "to_date" })
          if (checked instanceof ValidationError) return yield* checked
          return { from: formatVoluumHour(checked.from), to: formatVoluumHour(checked.to) }
        })

      /** Polls the job until it ends or the deadline passes. */
      const waitFor = <A>(jobId: string, waitSeconds: number) =>
        Effect.gen(function* () {
          const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(Duration.seconds(waitSeconds))
          let info: JobInfo | undefined
          while (true) {
            const found = yield* jobs.get(jobId)
            info = Option.getOrUndefined(found)
            if (
              info !== undefined &&
              (info.state === "completed" || info.state === "failed" || info.state === "cancelled")
            ) {
              break
            }
            if ((yield* Clock.currentTimeMillis) >= deadline) break
            yield* Effect.sleep("200 millis")
          }
          if (info?.state === "completed") return { state: "completed", jobId, result: info.result as A } as const
          if (info?.state === "failed" || info?.state === "cancelled") {
            return yield* new SyncJobFailed({
              jobId,
              message: `the sync ${info.state === "failed" ? "failed" : "was cancelled"}: ${info.error ?? "no reason recorded"} (job ${jobId})`
            })
          }
          return { state: info?.state === "running" ? "running" : "queued", jobId } as const
        })

      const run = <A>(queue: string) =>
        Effect.fn(`VoluumSyncJobs.${queue}`)(function* (
          window: SyncWindow,
          options?: { readonly waitSeconds?: number }
        ) {
          const data = yield* checkedWindow(window)
          const jobId = yield* jobs.enqueue(queue, data)
          const waitSeconds = Math.max(0, options?.waitSeconds ?? DEFAULT_WAIT_SECONDS)
          if (waitSeconds === 0) return { state: "queued", jobId } as SyncOutcome<A>
          return (yield* waitFor<A>(jobId, waitSeconds)) as SyncOutcome<A>
        })

      const range = (queue: string) =>
        Effect.fn(`VoluumSyncJobs.${queue}.range`)(function* (days: DayRange) {
          yield* requireIntegration("Voluum", settings.voluum)
          const windows = dayWindows(days)
          if (windows instanceof ValidationError) return yield* windows
          const queued: Array<{ from: string; to: string }> = []
          const jobIds: Array<string> = []
          for (const w of windows) {
            const data = { from: formatVoluumHour(w.from), to: formatVoluumHour(w.to) }
            jobIds.push(yield* jobs.enqueue(queue, data))
            queued.push(data)
          }
          return { status: "success", job_ids: jobIds, windows: queued } satisfies RangeQueued
        })

      return VoluumSyncJobs.of({
        syncReports: run<ReportsSyncResult>(REPORTS_SYNC_QUEUE),
        syncReportsForRange: range(REPORTS_SYNC_QUEUE),
        syncConversions: run<ConversionsSyncResult>(CONVERSIONS_SYNC_QUEUE),
        syncConversionsForRange: range(CONVERSIONS_SYNC_QUEUE)
      })
    })
  )
}
