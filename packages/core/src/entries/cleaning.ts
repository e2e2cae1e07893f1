/** `@optimizer/core/cleaning`: list cleaning (upload, process as a job, stats, download; or a local file at once). */
export * from "../cleaning/Cleaning.ts"
export * from "../cleaning/CleaningOptions.ts"
export * from "../cleaning/CsvDialect.ts"
export {
  CleaningRepository,
  ITEM_KEYS,
  type CleaningFile,
  type CleaningFileItem,
  type CleaningStats,
  type FileStatus
} from "../cleaning/CleaningRepository.ts"
