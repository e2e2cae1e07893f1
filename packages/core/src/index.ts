/**
 * @optimizer/core — the SDK. Every capability of the product as an Effect service with typed
 * errors, the layers that wire them, and the settings (`optimizerSettings(options)`, `fromEnv(env)`).
 * Nothing runs at import time, and nothing reads `process.env`.
 *
 * This root entry is the curated public surface (services, layers, errors, schemas); it loads
 * every domain. A service that needs one domain imports its entry instead and loads only that:
 * `@optimizer/core/phone`, `/encryption`, `/classification`, `/lists`, `/cleaning`, `/voluum`,
 * `/hlr`, `/mmd`, `/ongage`, `/records`, `/exports`, `/jobs`, `/config`, `/errors`,
 * `/migrations`, `/platform`; `@optimizer/core/promise` is the Promise facade (docs/sdk.md).
 */
export * from "./entries/errors.ts"
export * from "./entries/config.ts"
export * from "./entries/migrations.ts"
export * from "./entries/platform.ts"
export * from "./entries/jobs.ts"
export {
  FILE_JOB_STATUSES,
  isFileId,
  makeFileJobs,
  statusFilter as fileJobStatusFilter,
  type FileDownload,
  type FileJobKind,
  type FileJobRow,
  type FileJobStarted,
  type FileJobStatus,
  type FileUpload,
  type RunClaim
} from "./platform/FileJobs.ts"
export { BINARY_FILE_MESSAGE, UTF16_FILE_MESSAGE, textUpload, type LineCounter } from "./platform/TextUpload.ts"
export * from "./entries/phone.ts"
export * from "./entries/encryption.ts"
export * from "./encryption/EncryptionFiles.ts"
export { transformTokenCsv, type TokenCsvCounts, type TokenDirection } from "./encryption/TokenCsv.ts"
export * from "./entries/classification.ts"
export * from "./entries/lists.ts"
export * from "./entries/cleaning.ts"
export * from "./entries/voluum.ts"
export * from "./entries/hlr.ts"
export * from "./entries/mmd.ts"
export * from "./entries/ongage.ts"
export * from "./entries/records.ts"
export * from "./entries/exports.ts"
export * from "./live-events/LiveEvents.ts"
export * from "./live-events/LiveEventSchemas.ts"
export * from "./live-events/LiveEventsRepository.ts"
export * from "./scheduler/Scheduler.ts"
export * from "./scheduler/ScheduledOperations.ts"
export * from "./scheduler/SchedulerRepository.ts"
export {
  metrics as prometheusMetrics,
  renderMetrics,
  serveMetrics,
  exportedMetricNames,
  secondsSince,
  resetSampling,
  processMetrics,
  observeHttpRequest,
  METRICS_CONTENT_TYPE
} from "./platform/Observability.ts"
export * from "./platform/Tracing.ts"
