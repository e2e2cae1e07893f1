/**
 * The original's three schedules (`docs/original-api.md` "Schedules", `docs/scheduler.md`) as cron entries on the jobs
 * engine, each calling a core operation (`ScheduledOperations`) directly:
 *
 * - `conversions` — SCHEDULE_CONVERSIONS (default every 5 minutes): Voluum conversions from
 *   CONVERSIONS_WINDOW_OVERLAP_MINUTES (default 10) before the end of the last successful run,
 *   floored to the hour, up to now; then the Ongage push.
 * - `reports` — SCHEDULE_REPORTS (default 00:15 daily): yesterday's Voluum report, 00:00–24:00 UTC.
 * - `mmd-daily` — SCHEDULE_MMD_DAILY (default 05:00 daily): yesterday's MessageWhiz costs pushed to
 *   Voluum, then the MessageWhiz snapshot.
 * Cron expressions are UTC; SCHEDULER_ENABLED=false removes the schedules, and a schedule whose
 * integration is not configured (no Voluum or MessageWhiz credentials) is not registered (a warning
 * names the missing variables) rather than recording a failure every tick.
 *
 * The original polled the CURRENT hour every 5 minutes, so a conversion posted in the last minutes of
 * an hour, after that hour's last poll, was never fetched. Here each conversions window starts
 * `overlap` minutes before the end of the last SUCCESSFUL run (Voluum wants whole hours: floored), so
 * the first runs of a new hour still re-read the previous hour, and a failed or missed run is caught
 * up by the next one (at most 7 days back). The Voluum request ends at the next whole hour.
 *
 * One active scheduler across processes: every scheduler process registers the same entries
 * (idempotent) and runs pg-boss's cron pass, which creates ONE job per tick across all of them
 * (`platform/Jobs.ts`, "Schedules"); the schedule's queue is exclusive, so a run still going when the
 * next tick comes makes that tick skip instead of overlapping. Any scheduler process may execute a
 * job. Every run is a `scheduler_runs` row (start, end, outcome, window, counts, error).
 */
import { Clock, Context, Cron, Effect, Layer, Result, type Scope } from "effect"
import { AppConfig } from "../platform/Config.ts"
import { ValidationError, type Conflict, type DatabaseError } from "../platform/Errors.ts"
import { Jobs } from "../platform/Jobs.ts"
import { metrics } from "../platform/Observability.ts"
import {
  ScheduledOperations,
  type OperationCounts,
  type ScheduledOperationError,
  type TimeWindow
} from "./ScheduledOperations.ts"
import { SchedulerRepository, type RunOutcome, type SchedulerRun } from "./SchedulerRepository.ts"

export const SCHEDULE_NAMES = ["conversions", "reports", "mmd-daily"] as const
export type ScheduleName = (typeof SCHEDULE_NAMES)[number]

export interface ScheduleDefinition {
  readonly name: ScheduleName
  /** The jobs-engine queue its ticks are sent to. */
  readonly queue: string
  /** 5-field cron, UTC. */
  readonly cron: string
  readonly description: string
  /** The integration its operation calls: without its settings the schedule is not registered. */
  readonly integration: "Voluum" | "MessageWhiz"
}

/** The queue of a schedule. */
export const scheduleQueue = (name: ScheduleName): string => `scheduler.${name}`

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
/** A conversions window never reaches further back than this (a scheduler down for weeks catches up a week). */
export const MAX_CONVERSIONS_LOOKBACK_MS = 7 * DAY_MS

const floorToHour = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS
const ceilToHour = (ms: number): number => Math.ceil(ms / HOUR_MS) * HOUR_MS
const startOfUtcDay = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS

/**
 * The window a conversions run covers: from `overlapMinutes` before the end of the last successful
 * run (or before now, for a first run), floored to the hour, to now. Pure.
 */
export const conversionsWindow = (now: Date, lastSuccessEnd: Date | undefined, overlapMinutes: number): TimeWindow => {
  const end = now.getTime()
  const previous = lastSuccessEnd === undefined ? end : Math.min(lastSuccessEnd.getTime(), end)
  const from = Math.max(floorToHour(previous - overlapMinutes * 60_000), floorToHour(end - MAX_CONVERSIONS_LOOKBACK_MS))
  return { from: new Date(from), to: now }
}

/** What a conversions run asks Voluum for: its window, ending at the next whole hour (Voluum takes hours only). */
export const conversionsRequest = (window: TimeWindow): TimeWindow => ({
  from: new Date(floorToHour(window.from.getTime())),
  to: new Date(Math.max(ceilToHour(window.to.getTime()), floorToHour(window.from.getTime()) + HOUR_MS))
})

/** Yesterday, 00:00 to 24:00 UTC. Pure. */
export const previousDayWindow = (now: Date): TimeWindow => {
  const today = startOfUtcDay(now.getTime())
  return { from: new Date(today - DAY_MS), to: new Date(today) }
}

/** A tick queued by `enqueueNow` (POST /scheduler/{schedule}/run-now's answer). */
export interface QueuedTick {
  readonly schedule: ScheduleName
  readonly job_id: string
  readonly status: "queued"
}

/** The key a tick's job has (`platform/jobs/JobSchedules.ts`): one queued-or-running run per schedule. */
const TICK_SINGLETON_KEY = "schedule:default"

/** A run's summary: what the job returns. */
export interface RunSummary {
  readonly runId: number
  readonly schedule: ScheduleName
  readonly outcome: Exclude<RunOutcome, "running">
  readonly windowFrom: string
  readonly windowTo: string
  readonly counts: OperationCounts | null
  readonly error: string | null
}

const messageOf = (error: unknown): string => {
  const e = error as { message?: unknown; _tag?: unknown }
  if (typeof e?.message === "string" && e.message !== "") return e.message
  return typeof e?._tag === "string" ? e._tag : String(error)
}

export class Scheduler extends Context.Service<
  Scheduler,
  {
    /** The schedules of this configuration: those whose integration is configured; none when SCHEDULER_ENABLED=false. */
    readonly definitions: ReadonlyArray<ScheduleDefinition>
    /**
     * Writes the schedules to the jobs engine (idempotent; a cron changed in the env replaces the
     * stored one) and removes those of a disabled scheduler.
     */
    readonly register: Effect.Effect<ReadonlyArray<ScheduleDefinition>, DatabaseError | ValidationError>
    /** Executes the schedules' jobs in this process until the scope closes. */
    readonly work: Effect.Effect<void, DatabaseError, Scope.Scope>
    /** `register`, then `work`: what a scheduler process (and the quick start) does. */
    readonly start: Effect.Effect<ReadonlyArray<ScheduleDefinition>, DatabaseError | ValidationError, Scope.Scope>
    /**
     * One run now, recorded like a scheduled one (the clock is Effect's `Clock`, so tests can drive
     * it). Fails with the operation's error after recording it.
     */
    readonly runNow: (name: ScheduleName) => Effect.Effect<RunSummary, ScheduledOperationError | DatabaseError>
    /**
     * A tick now, outside the cron: a job on the schedule's queue under the key a cron tick uses, so
     * a scheduler process runs and records it exactly like a tick, and it never overlaps a tick of
     * the same schedule (`Conflict` naming the queued or running one). `ValidationError` for a
     * schedule that is not active here (scheduler disabled, or its integration not configured).
     */
    readonly enqueueNow: (name: ScheduleName) => Effect.Effect<QueuedTick, ValidationError | Conflict | DatabaseError>
    /** Runs, newest first (at most 1000). */
    readonly runs: (filter?: {
      readonly schedule?: string | undefined
      readonly outcome?: RunOutcome | undefined
      readonly limit?: number | undefined
    }) => Effect.Effect<ReadonlyArray<SchedulerRun>, DatabaseError>
  }
>()("@optimizer/core/scheduler/Scheduler") {
  static readonly layerNoDeps = Layer.effect(
    Scheduler,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const jobs = yield* Jobs
      const repository = yield* SchedulerRepository
      const operations = yield* ScheduledOperations
      const { schedules } = settings

      const all: ReadonlyArray<ScheduleDefinition> = [
        {
          name: "conversions",
          queue: scheduleQueue("conversions"),
          cron: schedules.conversions,
          description: `Voluum conversions since the last run (overlap ${schedules.conversionsOverlapMinutes} min), pushed to Ongage`,
          integration: "Voluum"
        },
        {
          name: "reports",
          queue: scheduleQueue("reports"),
          cron: schedules.reports,
          description: "yesterday's Voluum traffic-source report, classified into the lists",
          integration: "Voluum"
        },
        {
          name: "mmd-daily",
          queue: scheduleQueue("mmd-daily"),
          cron: schedules.mmdDaily,
          description: "MessageWhiz costs pushed to Voluum, then the daily MessageWhiz snapshot",
          integration: "MessageWhiz"
        }
      ]
      const missing = (definition: ScheduleDefinition): ReadonlyArray<string> => {
        const integration = definition.integration === "Voluum" ? settings.voluum : settings.mmd
        return integration.configured ? [] : integration.missing
      }
      // A schedule whose integration has no settings would only record a failure every tick.
      const definitions = schedules.enabled ? all.filter((d) => missing(d).length === 0) : []

      const register = Effect.gen(function* () {
        for (const definition of all) {
          if (definitions.includes(definition)) {
            yield* jobs.schedule(definition.queue, definition.cron, { schedule: definition.name }, { tz: "UTC" })
          } else {
            yield* jobs.unschedule(definition.queue)
            if (schedules.enabled) {
              yield* Effect.logWarning(
                `schedule "${definition.name}" not registered: ${definition.integration} is not configured (set ${missing(definition).join(", ")})`
              )
            }
          }
        }
        yield* Effect.logInfo(
          schedules.enabled ? "schedules registered" : "scheduler disabled: schedules removed"
        ).pipe(Effect.annotateLogs({ schedules: definitions.map((d) => `${d.name} ${d.cron}`) }))
        for (const definition of definitions) recordNextRun(definition.name, new Date())
        return definitions
      }).pipe(Effect.withSpan("Scheduler.register"))

      /** The window and the operation of a schedule at `now`. */
      const plan = (name: ScheduleName, now: Date) =>
        Effect.gen(function* () {
          switch (name) {
            case "conversions": {
              const last = yield* repository.lastSuccess(name)
              const window = conversionsWindow(now, last?.windowTo ?? undefined, schedules.conversionsOverlapMinutes)
              return { window, run: () => operations.conversions(conversionsRequest(window)) }
            }
            case "reports": {
              const window = previousDayWindow(now)
              return { window, run: () => operations.reports(window) }
            }
            case "mmd-daily": {
              const window = previousDayWindow(now)
              // As the original: the snapshot runs even when the cost update failed.
              const run = () =>
                Effect.gen(function* () {
                  const costs = yield* Effect.result(operations.mmdCosts(window))
                  const snapshot = yield* Effect.result(operations.mmdSnapshot(window))
                  const counts = {
                    costs: costs._tag === "Success" ? costs.success : null,
                    snapshot: snapshot._tag === "Success" ? snapshot.success : null
                  }
                  if (costs._tag === "Failure") return yield* Effect.fail(costs.failure)
                  if (snapshot._tag === "Failure") return yield* Effect.fail(snapshot.failure)
                  return counts
                })
              return { window, run }
            }
          }
        })

      /** `optimizer_scheduler_next_run_timestamp_seconds`: when the schedule is due after `from`. */
      const recordNextRun = (name: ScheduleName, from: Date) => {
        const definition = all.find((d) => d.name === name)
        const cron = definition === undefined ? undefined : Cron.parse(definition.cron, "UTC")
        if (cron !== undefined && Result.isSuccess(cron)) {
          metrics.scheduleNextRun.set([name], Cron.next(cron.success, from).getTime() / 1000)
        }
      }

      const runNow = Effect.fn("Scheduler.runNow")(function* (name: ScheduleName) {
        const now = new Date(yield* Clock.currentTimeMillis)
        const { window, run } = yield* plan(name, now)
        const runId = yield* repository.start(name, now, window)
        yield* Effect.logInfo("scheduled run started").pipe(
          Effect.annotateLogs({ schedule: name, runId, from: window.from.toISOString(), to: window.to.toISOString() })
        )
        const result = yield* Effect.result(run())
        const finishedAt = new Date(yield* Clock.currentTimeMillis)
        const summary = (
          outcome: "success" | "failed",
          counts: OperationCounts | null,
          error: string | null
        ): RunSummary => ({
          runId,
          schedule: name,
          outcome,
          windowFrom: window.from.toISOString(),
          windowTo: window.to.toISOString(),
          counts,
          error
        })
        if (result._tag === "Success") {
          yield* repository.finish(runId, finishedAt, "success", { ...result.success }, null)
          metrics.scheduledRuns.inc([name, "success"])
          metrics.scheduleLastSuccess.set([name], finishedAt.getTime() / 1000)
          recordNextRun(name, finishedAt)
          yield* Effect.logInfo("scheduled run succeeded").pipe(Effect.annotateLogs({ schedule: name, runId }))
          return summary("success", result.success, null)
        }
        const error = messageOf(result.failure)
        yield* repository.finish(runId, finishedAt, "failed", null, error)
        metrics.scheduledRuns.inc([name, "failure"])
        recordNextRun(name, finishedAt)
        yield* Effect.logWarning("scheduled run failed", error).pipe(Effect.annotateLogs({ schedule: name, runId }))
        return yield* Effect.fail(result.failure)
      })

      const work = Effect.gen(function* () {
        for (const definition of definitions) {
          yield* jobs.work(definition.queue, () => runNow(definition.name), { concurrency: 1 })
        }
      })

      const start = Effect.gen(function* () {
        const registered = yield* register
        yield* work
        return registered
      })

      const enqueueNow = Effect.fn("Scheduler.enqueueNow")(function* (name: ScheduleName) {
        const definition = all.find((d) => d.name === name)
        if (definition === undefined) {
          return yield* new ValidationError({
            message: `unknown schedule "${name}" (one of ${SCHEDULE_NAMES.join(", ")})`,
            field: "schedule"
          })
        }
        if (!definitions.includes(definition)) {
          return yield* new ValidationError({
            message: schedules.enabled
              ? `schedule "${name}" is not active: ${definition.integration} is not configured (set ${missing(definition).join(", ")})`
              : `schedule "${name}" is not active: SCHEDULER_ENABLED=false`,
            field: "schedule"
          })
        }
        const jobId = yield* jobs.enqueue(
          definition.queue,
          { schedule: name, manual: true },
          { singletonKey: TICK_SINGLETON_KEY }
        )
        yield* Effect.logInfo("scheduled run queued now").pipe(Effect.annotateLogs({ schedule: name, jobId }))
        return { schedule: name, job_id: jobId, status: "queued" as const }
      })

      const runs = Effect.fn("Scheduler.runs")(function* (filter?: {
        readonly schedule?: string | undefined
        readonly outcome?: RunOutcome | undefined
        readonly limit?: number | undefined
      }) {
        const limit = Math.min(1000, Math.max(1, Math.trunc(filter?.limit ?? 50)))
        return yield* repository.list({ schedule: filter?.schedule, outcome: filter?.outcome, limit })
      })

      return Scheduler.of({ definitions, register, work, start, runNow, enqueueNow, runs })
    })
  )

  /** Needs `Jobs`, `AppConfig`, the SQL client and `ScheduledOperations` from the app. */
  static readonly layer = Scheduler.layerNoDeps.pipe(Layer.provide(SchedulerRepository.layer))
}
