/**
 * The core operations the schedules run (`docs/original-api.md` "Schedules"), called directly — the original's cron
 * scripts called the service's own HTTP API. Each receives the time window the scheduler computed
 * and returns what it counted (stored with the run).
 *
 * - `conversions`: `ConversionsSync.syncConversions` (`docs/original-api.md` "Conversions and the Ongage push": fetch, insert, Ongage push)
 *   over the run's window (whole hours).
 * - `reports`: `ReportsSync.syncReports` (`docs/original-api.md` "Voluum reports": yesterday's report, classified into the lists).
 *
 * - `mmdCosts`: `Mmd.pushCosts` (`docs/mmd.md`): the window's day of MessageWhiz costs set in Voluum; a
 *   run in which Voluum refused a campaign fails (after the others were sent) with the first refusal.
 * - `mmdSnapshot`: `Mmd.snapshot` (`docs/mmd.md`): the window's day snapshot (file + stats).
 *
 * An operation not in a build can fail with `OperationUnavailable` (`unavailable(...)`), so that its
 * runs are recorded `failed` with that message instead of pretending to work.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { Mmd } from "../mmd/Mmd.ts"
import { UpstreamError, type CommonError } from "../platform/Errors.ts"
import { ConversionsSync } from "../voluum/ConversionsSync.ts"
import { ReportsSync } from "../voluum/ReportsSync.ts"

/** A time window, `to` exclusive. */
export interface TimeWindow {
  readonly from: Date
  readonly to: Date
}

/** What an operation reports; stored as the run's `counts`. */
export type OperationCounts = Readonly<Record<string, unknown>>

/** The operation a schedule names is not part of this build. Not retried: the next tick records it again. */
export class OperationUnavailable extends Schema.TaggedError<OperationUnavailable>()("OperationUnavailable", {
  message: Schema.String,
  operation: Schema.String
}) {}

export type ScheduledOperationError = CommonError | OperationUnavailable

export type ScheduledOperation = (window: TimeWindow) => Effect.Effect<OperationCounts, ScheduledOperationError>

export class ScheduledOperations extends Context.Service<
  ScheduledOperations,
  {
    /** Voluum conversions whose postback time is in the window (whole hours), then the Ongage push. */
    readonly conversions: ScheduledOperation
    /** The Voluum traffic-source report of the window (yesterday), classified into the lists. */
    readonly reports: ScheduledOperation
    /** MessageWhiz broadcast costs of the window's day pushed to Voluum. */
    readonly mmdCosts: ScheduledOperation
    /** The MessageWhiz snapshot of the window's day (file + broadcast_campaign_stats). */
    readonly mmdSnapshot: ScheduledOperation
  }
>()("@optimizer/core/scheduler/ScheduledOperations") {
  /** Needs `ReportsSync`, `ConversionsSync` and `Mmd`. */
  static readonly layer = Layer.effect(
    ScheduledOperations,
    Effect.gen(function* () {
      const reports = yield* ReportsSync
      const conversions = yield* ConversionsSync
      const mmd = yield* Mmd
      return ScheduledOperations.of({
        conversions: (window) => Effect.map(conversions.syncConversions(window), (result) => ({ ...result })),
        reports: (window) =>
          Effect.map(reports.syncReports(window, { actor: "scheduler:reports" }), (result) => ({ ...result })),
        mmdCosts: (window) =>
          Effect.gen(function* () {
            const result = yield* mmd.pushCosts(window.from.toISOString().slice(0, 10))
            const refused = result.updates.find((u) => u.error !== undefined)
            if (refused !== undefined) {
              return yield* new UpstreamError({
                service: "voluum",
                retryable: false,
                message: `Voluum refused ${result.failed} of ${result.total_rows} MessageWhiz cost updates for ${result.date}; first, campaign ${refused.campaign_id}: ${refused.error}`
              })
            }
            return {
              date: result.date,
              campaigns: result.total_rows,
              broadcasts: result.broadcasts,
              skipped: result.skipped.length,
              totalCost: Math.round(result.updates.reduce((sum, u) => sum + u.request.cost, 0) * 100) / 100,
              currency: result.currency
            }
          }),
        mmdSnapshot: (window) =>
          Effect.map(mmd.snapshot(window.from.toISOString().slice(0, 10)), (result) => ({
            date: result.date,
            broadcasts: result.broadcast_count,
            skipped: result.skipped.length,
            fileId: result.file_id
          }))
      })
    })
  )
}

/** An operation of a later build: fails, so that its runs are recorded as failed with this message. */
export const unavailable =
  (operation: string, message: string): ScheduledOperation =>
  () =>
    Effect.fail(new OperationUnavailable({ operation, message }))
