/** `@optimizer/core/exports`: table exports as CSV files (a job, then a download). */
export * from "../exports/Exports.ts"
