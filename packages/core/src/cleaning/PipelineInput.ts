/**
 * What a cleaning run is given (`CleaningPipeline.ts` runs it): the file, the lists to check, the
 * outputs. In a module of its own so that the pipeline's parts (`CleaningSql.ts`, `Annotations.ts`,
 * `CleaningOptions.ts`) can name it without importing the pipeline that imports them.
 */
import type pg from "pg"
import type { FileWriter } from "../platform/FileStore.ts"

export interface CleaningFlags {
  readonly includeBlacklist: boolean
  readonly includeMonitor: boolean
  readonly includeConversion: boolean
  readonly includeMainDatabase: boolean
}

export interface PipelineInput {
  /** Opens the file's bytes; called once, or twice when an annotated or rejects file is written. */
  readonly open: () => Promise<AsyncIterable<Uint8Array>>
  readonly flags: CleaningFlags
  /** ISO2 default country for national numbers (rows with a country cell use theirs). */
  readonly country?: string | undefined
  /** Header name or 1-based position; found by name or content when absent. */
  readonly phoneColumn?: string | undefined
  /** The run's identity in `main_database` (see the module comment); millisecond precision. */
  readonly marker: Date
  readonly outputs: {
    readonly clean: FileWriter
    readonly rejects?: FileWriter | undefined
    readonly annotated?: FileWriter | undefined
  }
  /** The `pg` pool (PgBulk) the partitions' connections come from. */
  readonly pool: pg.Pool
  readonly partitions?: number
  readonly signal?: AbortSignal | undefined
  /** Rows read so far; called every few tens of thousands of rows. */
  readonly onProgress?: ((rowsRead: number) => void) | undefined
}
