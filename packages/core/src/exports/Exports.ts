/**
 * Table exports (`docs/original-api.md` "Exports"; `docs/exports.md`): `COPY "<table>" TO STDOUT WITH CSV HEADER`
 * streamed from PostgreSQL into the FileStore as `exports/<table>_<YYYYmmdd_HHMMSS>.csv`, recorded
 * in `db_exports`.
 *
 * Changes from the original:
 * - only the tables of `EXPORTABLE_TABLES` can be exported (the original accepted any name,
 *   `api_keys` included); any other name is a `ValidationError` naming the allowed ones;
 * - the export runs as a durable job, and a failed COPY or write marks the row `failed` with
 *   `error_message` (the original left it `pending` forever); `row_count` says how many rows it wrote.
 *
 * Memory stays flat: the COPY stream is written chunk by chunk, with the writer's backpressure.
 */
import { Context, Effect, Layer, Option, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { copyOutStream, copyOutTo } from "../platform/CopyText.ts"
import { decodeOptionalRow, decodeRows, PgBulk, toDatabaseError } from "../platform/Database.ts"
import {
  type Conflict,
  type DatabaseError,
  NotFound,
  publicMessage,
  StorageError,
  ValidationError
} from "../platform/Errors.ts"
import { FileStore, type FileWriter } from "../platform/FileStore.ts"
import { Jobs, type RunningJob } from "../platform/Jobs.ts"

/** The queue of the export job (`JOB_HANDLERS` in Workers.ts). */
export const EXPORT_QUEUE = "db-export"

/**
 * Tables an admin may export: the original's data tables and the list audit. Never `api_keys`
 * (key hashes), nor the bookkeeping of the platform (`schema_migrations`, `job_status`, pg-boss's
 * schema, `processed_sns_messages`, `hlr_lookups_cache`, `scheduler_runs`), which have their own views.
 */
export const EXPORTABLE_TABLES = [
  "blacklist",
  "whitelist",
  "monitor",
  "main_database",
  "list_audit",
  "api_voluum_ts_sources",
  "api_voluum_conversions",
  "voluum_live_events",
  "raw_live_voluum_sns_data",
  "voluum_offers",
  "voluum_campaigns",
  "api_hlr_live_numbers",
  "broadcast_campaign_stats",
  "api_mmd_broadcasts_files",
  "csv_jobs",
  "csv_active_records",
  "uploaded_csv_files",
  "csv_processing_stats",
  "manual_update_imports",
  "uploaded_encryption_files",
  "uploaded_smart_cleaning_voluum_files",
  "uploaded_reg_search_files",
  "db_exports"
] as const
export type ExportableTable = (typeof EXPORTABLE_TABLES)[number]

export type ExportStatus = "pending" | "completed" | "failed"

/** `/process_db`'s answer: the original's keys plus the job. */
export interface ExportStarted {
  readonly file_id: string
  readonly table_name: ExportableTable
  readonly status: "processing"
  readonly job_id: string
}

/** `/fetch-latest-db-export`'s answer: the original's keys, then the new ones. */
export interface ExportRecord {
  readonly id: string
  /** The FileStore key of the export. */
  readonly file_path: string
  readonly status: ExportStatus
  readonly created_at: Date
  readonly completed_at: Date | null
  readonly table_name: string
  readonly error_message: string | null
  readonly row_count: number | null
  readonly job_id: string | null
}

export interface ExportDownload {
  /** `<table>_<YYYYmmdd_HHMMSS>.csv`. */
  readonly filename: string
  readonly body: ReadableStream<Uint8Array>
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The name if it is exportable, else a `ValidationError` naming the allowed ones. */
export const exportableTable = (name: string | undefined): Effect.Effect<ExportableTable, ValidationError> => {
  const table = (name ?? "").trim()
  if (table === "") {
    return Effect.fail(new ValidationError({ message: "table_name is required", field: "table_name" }))
  }
  if ((EXPORTABLE_TABLES as ReadonlyArray<string>).includes(table)) return Effect.succeed(table as ExportableTable)
  return Effect.fail(
    new ValidationError({
      message: `table "${table.slice(0, 80)}" cannot be exported; the allowed tables are: ${EXPORTABLE_TABLES.join(", ")}`,
      field: "table_name"
    })
  )
}

/** `exports/<table>_<YYYYmmdd_HHMMSS>.csv`, UTC (the original's name, under the FileStore). */
const exportKey = (table: ExportableTable, at: Date): string => {
  const stamp = at.toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15)
  return `exports/${table}_${stamp}.csv`
}

const basename = (key: string) => key.slice(key.lastIndexOf("/") + 1)

const ExportRow = Schema.Struct({
  id: Schema.String,
  table_name: Schema.String,
  file_path: Schema.NullOr(Schema.String),
  status: Schema.Literals(["pending", "completed", "failed"]),
  created_at: Schema.Date,
  completed_at: Schema.NullOr(Schema.Date),
  job_id: Schema.NullOr(Schema.String),
  error_message: Schema.NullOr(Schema.String),
  // bigint: the driver may give it as a bigint or a string
  row_count: Schema.NullOr(Schema.Union([Schema.Number, Schema.BigInt, Schema.String]))
})
type ExportRow = typeof ExportRow.Type

const toRecord = (r: ExportRow): ExportRecord => ({
  id: r.id,
  file_path: r.file_path ?? "",
  status: r.status,
  created_at: r.created_at,
  completed_at: r.completed_at,
  table_name: r.table_name,
  error_message: r.error_message,
  row_count: r.row_count === null ? null : Number(r.row_count),
  job_id: r.job_id
})

/** A failure while the export is copied into its file: the file store's stays a `StorageError`. */
const exportFailure = (cause: unknown): DatabaseError | StorageError =>
  cause instanceof StorageError ? cause : toDatabaseError(cause)

/** The table as CSV with a header; the name is one of EXPORTABLE_TABLES, quoted as the original did. */
const copyStatement = (table: ExportableTable) => `COPY "${table}" TO STDOUT WITH CSV HEADER`

export class Exports extends Context.Service<
  Exports,
  {
    /** Records a pending export and queues its job. */
    readonly start: (tableName: string) => Effect.Effect<ExportStarted, ValidationError | Conflict | DatabaseError>
    /** The job: COPY into the FileStore, then `completed` (or `failed` with the reason). */
    readonly process: (
      job: RunningJob
    ) => Effect.Effect<ExportRecord | { readonly skipped: string }, ValidationError | StorageError | DatabaseError>
    /**
     * Runs an export now, in this process (the CLI); the row is recorded as for a job. `onRows` hears
     * how many rows are written so far (the CLI's progress).
     */
    readonly exportNow: (
      tableName: string,
      options?: { readonly onRows?: (rows: number) => void }
    ) => Effect.Effect<ExportRecord, ValidationError | StorageError | DatabaseError>
    /** The latest export of a table, or null. */
    readonly latest: (tableName: string) => Effect.Effect<ExportRecord | null, ValidationError | DatabaseError>
    /** The latest export's file: `NotFound` without one, `ValidationError` (400) unless completed. */
    readonly download: (
      tableName: string
    ) => Effect.Effect<ExportDownload, ValidationError | NotFound | StorageError | DatabaseError>
    /** The table as CSV with a header, straight from COPY (the CLI's `--out`). */
    readonly stream: (tableName: string) => Stream.Stream<Uint8Array, ValidationError | DatabaseError>
  }
>()("@optimizer/core/exports/Exports") {
  static readonly layer = Layer.effect(
    Exports,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const bulk = yield* PgBulk
      const files = yield* FileStore
      const jobs = yield* Jobs

      const record = Effect.fn("Exports.record")(function* (table: ExportableTable) {
        const key = exportKey(table, new Date())
        const rows = yield* sql`
          INSERT INTO db_exports (table_name, file_path, status) VALUES (${table}, ${key}, 'pending')
          RETURNING *`.pipe(decodeRows(ExportRow))
        return rows[0]!
      })

      /** COPY → FileStore, then the row's outcome; a failure is recorded before it is returned. */
      const runExport = (row: ExportRow, table: ExportableTable, key: string, onRows?: (rows: number) => void) =>
        Effect.gen(function* () {
          const rowCount = yield* Effect.scoped(
            Effect.gen(function* () {
              const writer: FileWriter = yield* files.openWriter(key, { contentType: "text/csv" })
              // Lines written so far, less the header: COPY's CSV quotes a line break inside a value,
              // so this can run ahead of the rows; it is only a progress figure.
              let lines = 0
              const write =
                onRows === undefined
                  ? (chunk: Uint8Array) => writer.write(chunk)
                  : (chunk: Uint8Array) => {
                      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
                      onRows(Math.max(0, lines - 1))
                      return writer.write(chunk)
                    }
              const count = yield* Effect.tryPromise({
                try: () => copyOutTo(bulk.pool, copyStatement(table), write),
                catch: exportFailure
              })
              yield* Effect.tryPromise({ try: () => writer.close(), catch: exportFailure })
              return count
            })
          )
          const updated = yield* sql`
            UPDATE db_exports SET status = 'completed', completed_at = now(), row_count = ${rowCount},
                   error_message = NULL
            WHERE id = ${row.id}::uuid RETURNING *`.pipe(decodeOptionalRow(ExportRow))
          return toRecord(Option.getOrElse(updated, () => ({ ...row, status: "completed" as const })))
        }).pipe(
          Effect.tapError((error) =>
            sql`
              UPDATE db_exports SET status = 'failed', error_message = ${publicMessage(error)}, completed_at = NULL
              WHERE id = ${row.id}::uuid`.pipe(Effect.ignore)
          )
        )

      const start = Effect.fn("Exports.start")(function* (tableName: string) {
        const table = yield* exportableTable(tableName)
        const row = yield* record(table)
        const jobId = yield* jobs.enqueue(EXPORT_QUEUE, { export_id: row.id }).pipe(
          Effect.tapError((error) =>
            sql`
              UPDATE db_exports SET status = 'failed', error_message = ${`could not start the job: ${publicMessage(error)}`}
              WHERE id = ${row.id}::uuid`.pipe(Effect.ignore)
          )
        )
        yield* sql`UPDATE db_exports SET job_id = ${jobId}::uuid WHERE id = ${row.id}::uuid`.pipe(
          Effect.mapError(toDatabaseError)
        )
        return { file_id: row.id, table_name: table, status: "processing", job_id: jobId } satisfies ExportStarted
      })

      const process = Effect.fn("Exports.process")(function* (job: RunningJob) {
        const exportId = job.data.export_id
        if (typeof exportId !== "string" || !UUID.test(exportId)) {
          return yield* new ValidationError({ message: "the job has no valid export_id", field: "export_id" })
        }
        const claimed = yield* sql`
          UPDATE db_exports SET job_id = ${job.id}::uuid, status = 'pending', error_message = NULL
          WHERE id = ${exportId}::uuid AND status IN ('pending', 'failed') RETURNING *`.pipe(
          decodeOptionalRow(ExportRow)
        )
        if (Option.isNone(claimed)) return { skipped: `export ${exportId} is gone or already completed` }
        const row = claimed.value
        const table = yield* exportableTable(row.table_name)
        const key = row.file_path ?? exportKey(table, row.created_at)
        const done = yield* runExport(row, table, key)
        yield* job.progress(done.row_count ?? 0, done.row_count ?? 0)
        return done
      })

      const exportNow = Effect.fn("Exports.exportNow")(function* (
        tableName: string,
        options: { readonly onRows?: (rows: number) => void } = {}
      ) {
        const table = yield* exportableTable(tableName)
        const row = yield* record(table)
        return yield* runExport(row, table, row.file_path!, options.onRows)
      })

      const latestRow = (table: ExportableTable) =>
        sql`
          SELECT * FROM db_exports WHERE table_name = ${table}
          ORDER BY created_at DESC, id DESC LIMIT 1`.pipe(
          decodeOptionalRow(ExportRow),
          Effect.map(Option.getOrUndefined)
        )

      const latest = Effect.fn("Exports.latest")(function* (tableName: string) {
        const row = yield* latestRow(yield* exportableTable(tableName))
        return row === undefined ? null : toRecord(row)
      })

      const download = Effect.fn("Exports.download")(function* (tableName: string) {
        const table = yield* exportableTable(tableName)
        const row = yield* latestRow(table)
        if (row === undefined) return yield* new NotFound({ message: `File not found: ${table} has no export` })
        if (row.status !== "completed" || row.file_path === null) {
          return yield* new ValidationError({
            message:
              row.status === "failed"
                ? `File not processed yet: the latest export of ${table} failed (${row.error_message ?? "no reason recorded"})`
                : `File not processed yet: the latest export of ${table} is ${row.status}`,
            field: "table_name"
          })
        }
        const body = yield* files
          .webStream(row.file_path)
          .pipe(
            Effect.catchTag("NotFound", () =>
              Effect.fail(new NotFound({ message: `Processed file missing on storage: ${row.file_path}` }))
            )
          )
        return { filename: basename(row.file_path), body } satisfies ExportDownload
      })

      const stream = (tableName: string): Stream.Stream<Uint8Array, ValidationError | DatabaseError> =>
        Stream.unwrap(
          exportableTable(tableName).pipe(Effect.map((table) => copyOutStream(bulk.pool, copyStatement(table))))
        )

      return Exports.of({ start, process, exportNow, latest, download, stream })
    })
  )
}
