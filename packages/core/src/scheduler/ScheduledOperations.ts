/**
 * The core operations the schedules run (ORIGINAL.md §9), called directly — the original's cron
 * scripts called the service's own HTTP API. Each receives the time window the scheduler computed
 * and returns what it counted (stored with the run).
 *
 * PLUG POINTS. An operation whose domain service is not in this build fails with
 * `OperationUnavailable` — the run is recorded `failed` with that message (visible in
 * `npx optimizer runs` and `GET /scheduler/runs`) instead of pretending to work. To wire one, yield
 * its service in `ScheduledOperations.layer` below and call it in place of the `unavailable(...)`:
 *
 * - `conversions`: the Voluum conversions sync (`POST /sync-voluum-conversions`, ORIGINAL.md §5):
 *   fetch `[window.from, window.to)` (both whole hours), insert, push to Ongage.
 * - `reports`: the Voluum reports sync (`POST /sync-voluum-reports`, ORIGINAL.md §4): yesterday's
 *   report, classification into the lists.
 * - `mmdCosts`: the MessageWhiz cost push to Voluum (`GET /update-costs-for-mmd`, ORIGINAL.md §7.5).
 * - `mmdSnapshot`: the MessageWhiz day snapshot (`GET /save-data-for-previous-date`, ORIGINAL.md §7.5).
 */
import { Context, Effect, Layer, Schema } from "effect"
import type { CommonError } from "../platform/Errors.ts"

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
  static readonly layer = Layer.effect(
    ScheduledOperations,
    Effect.sync(() =>
      ScheduledOperations.of({
        conversions: unavailable("conversions", "Voluum sync not available in this build"),
        reports: unavailable("reports", "Voluum sync not available in this build"),
        mmdCosts: unavailable("mmdCosts", "MessageWhiz costs update not available in this build"),
        mmdSnapshot: unavailable("mmdSnapshot", "MessageWhiz daily snapshot not available in this build")
      })
    )
  )
}

/** An operation of a later build: fails, so that its runs are recorded as failed with this message. */
export const unavailable =
  (operation: string, message: string): ScheduledOperation =>
  () =>
    Effect.fail(new OperationUnavailable({ operation, message }))
