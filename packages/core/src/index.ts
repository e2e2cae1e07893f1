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
export * from "./metrics/Metrics.ts"
export * from "./platform/Health.ts"
export * from "./AppLayer.ts"
export * from "./platform/Jobs.ts"
export * from "./platform/FileStore.ts"
export * from "./Workers.ts"
export * from "./voluum/VoluumClient.ts"
export * from "./voluum/VoluumSchemas.ts"
export * from "./ongage/OngageClient.ts"
export * from "./phone/PhoneNumber.ts"
export * from "./phone/CallingCodes.ts"
export * from "./classification/Classifier.ts"
export * from "./classification/RiskyOperators.ts"
export * from "./encryption/Encryption.ts"
