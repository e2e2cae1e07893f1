/**
 * @optimizer/core — the SDK. Every capability of the product as an Effect service with typed
 * errors, plus the layers that wire them. Adapters (HTTP, CLI, SQS) and other services import
 * from here; nothing runs at import time.
 */
export * from "./platform/Errors.ts"
export * from "./platform/Config.ts"
export * from "./platform/Database.ts"
export * from "./platform/Logging.ts"
export { migrate, loadMigrations, defaultMigrationsDir, type MigrationResult } from "./platform/Migrations.ts"
export * from "./auth/ApiKeys.ts"
export * from "./auth/RateLimit.ts"
export * from "./metrics/Metrics.ts"
export * from "./platform/Health.ts"
export * from "./AppLayer.ts"
export * from "./Runtime.ts"
export * from "./CoreError.ts"
export * from "./platform/Jobs.ts"
export * from "./platform/FileStore.ts"
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
export * from "./Workers.ts"
export * from "./voluum/VoluumClient.ts"
export * from "./voluum/VoluumSchemas.ts"
export * from "./voluum/ReportsSync.ts"
export * from "./voluum/ConversionsSync.ts"
export * from "./voluum/VoluumJobs.ts"
export * from "./voluum/SmartCleaning.ts"
export * from "./voluum/RegSearch.ts"
export * from "./mmd/MessageWhizSchemas.ts"
export * from "./mmd/MessageWhizClient.ts"
export * from "./mmd/MmdCosts.ts"
export * from "./mmd/Mmd.ts"
export * from "./mmd/MmdRows.ts"
export * from "./mmd/MmdLive.ts"
export * from "./mmd/MmdSnapshots.ts"
export * from "./ongage/OngageClient.ts"
export * from "./ongage-jobs/OngageJobs.ts"
export * from "./phone/PhoneNumber.ts"
export * from "./phone/CallingCodes.ts"
export * from "./lists/ListSchemas.ts"
export * from "./lists/Lists.ts"
export * from "./lists/ManualImports.ts"
export * from "./cleaning/Cleaning.ts"
export * from "./cleaning/CsvDialect.ts"
export * from "./hlr/HlrClient.ts"
export * from "./hlr/Hlr.ts"
export * from "./classification/Classifier.ts"
export * from "./classification/RiskyOperators.ts"
export * from "./encryption/Encryption.ts"
export * from "./encryption/EncryptionFiles.ts"
export * from "./exports/Exports.ts"
export * from "./records/Records.ts"
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
