/**
 * Cron schedules of `Jobs`. `schedule(queue, cron)` stores a row in `pgboss.schedule`. Every process
 * built with `schedule: true` runs pg-boss's cron pass, but each pass is claimed with a single-row
 * UPDATE on `pgboss.version.cron_on` that only one process wins per interval, and the occurrence is
 * forwarded through the internal `__pgboss__send-it` queue under a singleton key per (schedule,
 * minute slot), so each tick creates one job across all processes connected to the database. Cron
 * expressions have 5 fields (minute resolution) or 6 (seconds first); pg-boss creates at most one
 * job per schedule per minute. A scheduled job is keyed by its schedule, so an occurrence whose
 * previous run has not finished is skipped instead of piling up.
 */
import { Effect } from "effect"
import type { DatabaseError } from "../Errors.ts"
import { ValidationError } from "../Errors.ts"
import { type JobQueue, messageOf } from "./JobQueue.ts"

export interface ScheduleInfo {
  readonly queue: string
  readonly key: string
  readonly cron: string
  readonly timezone: string
  readonly data: unknown
}

export interface JobSchedules {
  /** Creates or replaces the schedule `key` (default "default") of `queue`; cron is evaluated in `tz` (default UTC). */
  readonly schedule: (
    queue: string,
    cron: string,
    data?: Record<string, unknown>,
    options?: { readonly tz?: string; readonly key?: string }
  ) => Effect.Effect<void, DatabaseError | ValidationError>
  readonly unschedule: (queue: string, key?: string) => Effect.Effect<void, DatabaseError>
  readonly schedules: Effect.Effect<ReadonlyArray<ScheduleInfo>, DatabaseError>
}

/** @internal */
export const makeJobSchedules = ({ boss, call, ensureQueue }: JobQueue): JobSchedules => {
  const schedule = Effect.fn("Jobs.schedule")(function* (
    queue: string,
    cron: string,
    data?: Record<string, unknown>,
    scheduleOptions?: { readonly tz?: string; readonly key?: string }
  ) {
    const key = scheduleOptions?.key ?? "default"
    const tz = scheduleOptions?.tz ?? "UTC"
    // pg-boss's own parser, without a database round trip: a bad expression or zone is the caller's mistake.
    yield* Effect.try({
      try: () => boss.previewSchedule(cron, { tz, count: 1 }),
      catch: (cause) =>
        new ValidationError({ message: `invalid schedule "${cron}" (${tz}): ${messageOf(cause)}`, field: "cron" })
    })
    yield* ensureQueue(queue)
    yield* call(`could not schedule "${queue}"`, () =>
      boss.schedule(queue, cron, data ?? {}, {
        key,
        tz,
        // One run of a schedule at a time: an occurrence while the previous one is queued or running is dropped.
        singletonKey: `schedule:${key}`
      })
    )
  })

  const unschedule = Effect.fn("Jobs.unschedule")(function* (queue: string, key?: string) {
    yield* call(`could not unschedule "${queue}"`, () => boss.unschedule(queue, key ?? "default"))
  })

  const schedules = call("could not list schedules", () => boss.getSchedules()).pipe(
    Effect.map((rows) =>
      rows.map((s): ScheduleInfo => ({
        queue: s.name,
        key: s.key,
        cron: s.cron,
        timezone: s.timezone,
        data: s.data
      }))
    )
  )

  return { schedule, unschedule, schedules }
}
