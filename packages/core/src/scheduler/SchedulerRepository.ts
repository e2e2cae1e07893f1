/**
 * `scheduler_runs`: one row per run of a schedule — started, finished, outcome, the time window it
 * covered, what it counted, and the error of a failed run. The conversions window of the next run is
 * computed from the last successful row.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { toDatabaseError } from "../platform/Database.ts"
import type { DatabaseError } from "../platform/Errors.ts"

export type RunOutcome = "running" | "success" | "failed"

/** A run as users see it (`npx optimizer runs`, `GET /scheduler/runs`). */
export interface SchedulerRun {
  readonly id: number
  readonly schedule: string
  readonly startedAt: Date
  readonly finishedAt: Date | null
  readonly outcome: RunOutcome
  readonly windowFrom: Date | null
  readonly windowTo: Date | null
  /** What the operation counted (rows fetched, inserted, pushed…), as it reported them. */
  readonly counts: Record<string, unknown> | null
  readonly error: string | null
}

interface RunRow {
  id: bigint | number | string
  schedule: string
  started_at: Date
  finished_at: Date | null
  outcome: RunOutcome
  window_from: Date | null
  window_to: Date | null
  counts: Record<string, unknown> | null
  error: string | null
}

const toRun = (r: RunRow): SchedulerRun => ({
  id: Number(r.id),
  schedule: r.schedule,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  outcome: r.outcome,
  windowFrom: r.window_from,
  windowTo: r.window_to,
  counts: r.counts,
  error: r.error
})

export class SchedulerRepository extends Context.Service<
  SchedulerRepository,
  {
    /**
     * Records a run as started. A run of the same schedule still `running` cannot be alive (one run
     * of a schedule at a time): its process died, so it is closed as failed here.
     */
    readonly start: (
      schedule: string,
      startedAt: Date,
      window: { readonly from: Date; readonly to: Date }
    ) => Effect.Effect<number, DatabaseError>
    readonly finish: (
      id: number,
      finishedAt: Date,
      outcome: Exclude<RunOutcome, "running">,
      counts: Record<string, unknown> | null,
      error: string | null
    ) => Effect.Effect<SchedulerRun, DatabaseError>
    /** The newest successful run of a schedule. */
    readonly lastSuccess: (schedule: string) => Effect.Effect<SchedulerRun | undefined, DatabaseError>
    /** Newest first. */
    readonly list: (filter: {
      readonly schedule?: string | undefined
      readonly outcome?: RunOutcome | undefined
      readonly limit: number
    }) => Effect.Effect<ReadonlyArray<SchedulerRun>, DatabaseError>
  }
>()("@optimizer/core/scheduler/SchedulerRepository") {
  static readonly layer = Layer.effect(
    SchedulerRepository,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const start = (schedule: string, startedAt: Date, window: { readonly from: Date; readonly to: Date }) =>
        Effect.gen(function* () {
          yield* sql`
            UPDATE scheduler_runs SET outcome = 'failed', finished_at = ${startedAt},
              error = 'interrupted: the process running it stopped before it finished'
            WHERE schedule = ${schedule} AND outcome = 'running'`
          const rows = yield* sql<{ id: bigint | number }>`
            INSERT INTO scheduler_runs (schedule, started_at, outcome, window_from, window_to)
            VALUES (${schedule}, ${startedAt}, 'running', ${window.from}, ${window.to})
            RETURNING id`
          return Number(rows[0]!.id)
        }).pipe(sql.withTransaction, Effect.mapError(toDatabaseError))

      const finish = (
        id: number,
        finishedAt: Date,
        outcome: Exclude<RunOutcome, "running">,
        counts: Record<string, unknown> | null,
        error: string | null
      ) =>
        sql<RunRow>`
          UPDATE scheduler_runs SET finished_at = ${finishedAt}, outcome = ${outcome},
            counts = ${counts === null ? null : JSON.stringify(counts)}::jsonb, error = ${error}
          WHERE id = ${id}
          RETURNING *`.pipe(
          Effect.map((rows) => toRun(rows[0]!)),
          Effect.mapError(toDatabaseError)
        )

      const lastSuccess = (schedule: string) =>
        sql<RunRow>`
          SELECT * FROM scheduler_runs WHERE schedule = ${schedule} AND outcome = 'success'
          ORDER BY started_at DESC, id DESC LIMIT 1`.pipe(
          Effect.map((rows) => (rows[0] === undefined ? undefined : toRun(rows[0]))),
          Effect.mapError(toDatabaseError)
        )

      const list = (filter: {
        readonly schedule?: string | undefined
        readonly outcome?: RunOutcome | undefined
        readonly limit: number
      }) =>
        sql<RunRow>`
          SELECT * FROM scheduler_runs
          WHERE (${filter.schedule ?? null}::text IS NULL OR schedule = ${filter.schedule ?? null})
            AND (${filter.outcome ?? null}::text IS NULL OR outcome = ${filter.outcome ?? null})
          ORDER BY started_at DESC, id DESC
          LIMIT ${filter.limit}`.pipe(
          Effect.map((rows) => rows.map(toRun)),
          Effect.mapError(toDatabaseError)
        )

      return SchedulerRepository.of({ start, finish, lastSuccess, list })
    })
  )
}
