/**
 * pg-boss 12, the queue behind `Jobs`: started (creating and migrating its schema `pgboss`, under an
 * advisory lock, so replicas starting together are safe) and stopped with the layer, its calls
 * mapped to `DatabaseError`, and each queue created with its settings on first use. pg-boss decides
 * who runs what; `job_status` (JobStatusRows.ts) is what users see.
 */
import { Effect, Redacted, type Scope } from "effect"
import { PgBoss } from "pg-boss"
import type { Db } from "pg-boss"
import { toDatabaseError } from "../Database.ts"
import type { DatabaseError } from "../Errors.ts"
import {
  DEFAULT_QUEUE_SETTINGS,
  DEFAULT_TIMINGS,
  type JobsOptions,
  type JobsTimings,
  type QueueSettings
} from "./JobsOptions.ts"
import { PGBOSS_SCHEMA } from "./JobStatusRows.ts"

/** Per-queue pg-boss settings. */
export {
  DEFAULT_QUEUE_SETTINGS,
  DEFAULT_TIMINGS,
  type JobsOptions,
  type JobsTimings,
  type QueueSettings
} from "./JobsOptions.ts"

/** The message of a failure, whatever it is: for logs and `job_status.error`. */
export const messageOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const e = error as { readonly message?: unknown; readonly _tag?: unknown }
    if (typeof e.message === "string" && e.message !== "") return e.message
    if (typeof e._tag === "string") return e._tag
  }
  return String(error)
}

/** A transaction of pg-boss's own pool (pg-boss does not export the type's name). */
export type PgBossTransaction = Awaited<ReturnType<NonNullable<Db["beginTransaction"]>>>

const isAssertion = (error: unknown): boolean =>
  error instanceof Error && ((error as { code?: unknown }).code === "ERR_ASSERTION" || error.name === "AssertionError")

export interface JobQueue {
  readonly boss: PgBoss
  readonly timings: JobsTimings
  /** A pg-boss call: its assertion errors are programming errors (defects), the rest database failures. */
  readonly call: <A>(what: string, f: () => Promise<A>) => Effect.Effect<A, DatabaseError>
  /** Creates the queue (or updates its settings) once per process, on first use. */
  readonly ensureQueue: (queue: string) => Effect.Effect<void, DatabaseError>
  /**
   * A transaction of pg-boss's own pool: `boss.send(…, { db: tx.db })` inserts a job inside it, and
   * `tx.db.executeSql` runs other statements in the same transaction.
   */
  readonly beginTransaction: () => Promise<PgBossTransaction>
}

/** Starts pg-boss for the scope; stopping it waits up to `stopTimeoutSeconds` for running jobs. */
export const startJobQueue = (
  options: JobsOptions,
  database: { readonly url: Redacted.Redacted<string>; readonly poolMax: number }
): Effect.Effect<JobQueue, DatabaseError, Scope.Scope> =>
  Effect.gen(function* () {
    const timings: JobsTimings = { ...DEFAULT_TIMINGS, ...options.timings }
    const layerContext = yield* Effect.context<never>()
    const runLog = (effect: Effect.Effect<void>) => {
      Effect.runForkWith(layerContext)(effect)
    }

    const call = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, DatabaseError> =>
      Effect.tryPromise({ try: f, catch: (cause) => cause }).pipe(
        Effect.catch((cause) => (isAssertion(cause) ? Effect.die(cause) : Effect.fail(toDatabaseError(cause, what))))
      )

    const boss = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const boss = new PgBoss({
            connectionString: Redacted.value(database.url),
            schema: PGBOSS_SCHEMA,
            application_name: `optimizer-jobs${options.instanceName ? `-${options.instanceName}` : ""}`,
            max: database.poolMax,
            supervise: options.supervise,
            schedule: options.schedule,
            migrate: true,
            ...(options.instanceName !== undefined ? { instanceName: options.instanceName } : {}),
            superviseIntervalSeconds: timings.superviseIntervalSeconds,
            monitorIntervalSeconds: timings.superviseIntervalSeconds,
            cronMonitorIntervalSeconds: timings.cronIntervalSeconds,
            cronWorkerIntervalSeconds: Math.max(1, Math.min(5, Math.round(timings.cronIntervalSeconds)))
          })
          // An "error" event without a listener would crash the process; these are logged, never thrown.
          boss.on("error", (error) =>
            runLog(
              Effect.logError("job queue error", messageOf(error)).pipe(Effect.annotateLogs({ component: "pg-boss" }))
            )
          )
          boss.on("warning", (warning) =>
            runLog(
              Effect.logWarning("job queue warning", warning.message).pipe(
                Effect.annotateLogs({ component: "pg-boss" })
              )
            )
          )
          try {
            await boss.start()
          } catch (error) {
            await boss.stop({ graceful: false }).catch(() => undefined)
            throw error
          }
          return boss
        },
        catch: (cause) => toDatabaseError(cause, "could not start the job queue")
      }),
      (boss) =>
        Effect.promise(() =>
          boss
            .stop({ graceful: true, timeout: timings.stopTimeoutSeconds * 1000 })
            .catch((error) => runLog(Effect.logWarning("job queue did not stop cleanly", messageOf(error))))
        )
    )
    // pg-boss's built-in pool implements transactions; only a custom adapter (not used here) would not.
    const db: Db = boss.getDb()
    const begin = db.beginTransaction?.bind(db)
    if (begin === undefined) return yield* Effect.die(new Error("pg-boss's database has no transactions"))

    const queueSettings = (queue: string): QueueSettings => ({
      ...DEFAULT_QUEUE_SETTINGS,
      ...options.queueDefaults,
      ...options.queues?.[queue]
    })

    const ensured = new Map<string, Promise<void>>()
    const ensureQueue = (queue: string) =>
      call(`could not prepare queue "${queue}"`, () => {
        let ready = ensured.get(queue)
        if (ready === undefined) {
          const s = queueSettings(queue)
          const queueOptions = {
            retryLimit: s.retryLimit,
            retryDelay: s.retryDelaySeconds,
            retryBackoff: true,
            retryDelayMax: s.retryDelayMaxSeconds,
            heartbeatSeconds: s.heartbeatSeconds,
            expireInSeconds: s.expireInSeconds
          }
          ready = (async () => {
            await boss.createQueue(queue, { policy: "exclusive", ...queueOptions })
            const existing = await boss.getQueue(queue)
            if (existing?.policy !== "exclusive") {
              throw new Error(
                `queue "${queue}" exists with policy "${existing?.policy}"; the jobs service needs "exclusive" (delete the queue)`
              )
            }
            await boss.updateQueue(queue, queueOptions)
          })()
          ensured.set(queue, ready)
          ready.catch(() => ensured.delete(queue))
        }
        return ready
      })

    return { boss, timings, call, ensureQueue, beginTransaction: begin }
  })
