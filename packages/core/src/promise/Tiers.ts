/**
 * The Promise facade's services, built in tiers on first use and sharing one `MemoMap` (so the
 * database pool a list operation opened is the one a later job uses):
 *
 * - `database`: the pools, the schema check, lists and find-records — no jobs engine, no file store;
 * - `full`: every service (`appLayer`, role "worker": it supervises jobs, runs no cron schedule),
 *   plus the job workers when `runJobs` — pg-boss's schema and the file store come with this tier.
 *
 * Loaded by `promise.ts` with a dynamic import: importing the facade loads no database module.
 */
import { Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { appLayer, type AppServices } from "../AppLayer.ts"
import { Cleaning } from "../cleaning/Cleaning.ts"
import { Exports } from "../exports/Exports.ts"
import { Lists } from "../lists/Lists.ts"
import { AppConfig, type AppSettings } from "../platform/Config.ts"
import { DatabaseLayer } from "../platform/Database.ts"
import { Jobs } from "../platform/Jobs.ts"
import { loggingLayer } from "../platform/Logging.ts"
import { migrate, type MigrationResult } from "../platform/Migrations.ts"
import { Records } from "../records/Records.ts"
import { VoluumSyncJobs } from "../voluum/VoluumJobs.ts"
import { runWorkers } from "../Workers.ts"

/** The services the facade calls (their tags), handed over with the tiers so the facade's module imports none of them. */
const services = { Lists, Records, Cleaning, Exports, VoluumJobs: VoluumSyncJobs, Jobs } as const

/** What the database tier provides. */
export type DatabaseServices = Lists | Records

export interface TierOptions {
  readonly runJobs: boolean
}

/** Tiers over `settings`; `dispose` releases whatever was built, newest first. */
export const makeTiers = (settings: AppSettings, options: TierOptions) => {
  const memoMap = Layer.makeMemoMapUnsafe()
  const base = Layer.succeed(AppConfig, settings).pipe(Layer.provideMerge(loggingLayer(settings)))
  const databaseLayer = Layer.mergeAll(Lists.layer, Records.layer).pipe(
    Layer.provideMerge(DatabaseLayer),
    Layer.provideMerge(base)
  )
  const database = ManagedRuntime.make(databaseLayer, { memoMap })
  type Full = ManagedRuntime.ManagedRuntime<AppServices, unknown>
  let full: Full | undefined
  let workers: Scope.Closeable | undefined
  const fullRuntime = async (): Promise<Full> => {
    if (full !== undefined) return full
    const runtime: Full = ManagedRuntime.make(appLayer(settings, { role: "worker" }), { memoMap })
    full = runtime
    if (options.runJobs) {
      const scope = Effect.runSync(Scope.make())
      workers = scope
      await runtime.runPromise(Scope.provide(runWorkers(), scope))
    }
    return runtime
  }
  return {
    services,
    database: database as ManagedRuntime.ManagedRuntime<DatabaseServices, unknown>,
    full: fullRuntime,
    migrate: (): Promise<MigrationResult> => {
      if (settings.database === undefined) {
        return database.runPromise(Effect.void).then(() => ({ applied: [], alreadyApplied: 0 }))
      }
      return migrate(Redacted.value(settings.database.url))
    },
    dispose: async () => {
      if (workers !== undefined) await Effect.runPromise(Scope.close(workers, Exit.void))
      if (full !== undefined) await full.dispose()
      await database.dispose()
    }
  }
}

export type Tiers = ReturnType<typeof makeTiers>
