/** `@optimizer/core/jobs`: the durable jobs engine (pg-boss), the file store, and the workers that run core's jobs. */
export * from "../platform/Jobs.ts"
export * from "../platform/FileStore.ts"
export { runWorkers, type JobHandler } from "../Workers.ts"
