/** `@optimizer/core/voluum`: the Voluum client, report and conversion syncs (direct or as jobs), smart cleaning, REG search. */
export * from "../voluum/VoluumClient.ts"
export * from "../voluum/VoluumSchemas.ts"
export * from "../voluum/ReportsSync.ts"
export * from "../voluum/ConversionsSync.ts"
export {
  CONVERSIONS_SYNC_QUEUE,
  DEFAULT_SYNC_FROM,
  DEFAULT_SYNC_TO,
  DEFAULT_WAIT_SECONDS,
  REPORTS_SYNC_QUEUE,
  SyncJobFailed,
  VoluumSyncJobs,
  type DayRange,
  type RangeQueued,
  type SyncOutcome,
  type SyncStartError
} from "../voluum/VoluumJobs.ts"
export * from "../voluum/SmartCleaning.ts"
export * from "../voluum/RegSearch.ts"
