/**
 * Operators' list imports (`docs/original-api.md` "Lists"), as the frontend knows them:
 *
 * - `importFile` (`/db-manual-update/import`): a CSV with a header naming `phone`, `reason`,
 *   `source` (optional `os_version`, `user_agent`, `ip`), written to the blacklist or the monitor
 *   list. Each data row gets a result in a result CSV (`phone,result`): `added_to_<target>`, or why
 *   it was rejected — `rejected_missing_required`, `rejected_invalid_phone`, `rejected_duplicate`
 *   (already on the blacklist or the monitor list, as the original checked) and, new,
 *   `rejected_duplicate_in_file` (the original dropped repeats silently: they are counted now).
 *   Numbers are normalised (the original stored them as typed, `+` included), the BOM is dropped
 *   (the original's BOM-prefixed header did not match `phone`), and an accepted number is moved
 *   off the whitelist (the original left it on both). A manual blacklist entry is sticky.
 * - `history` / `resultFile`: the last 50 imports and each one's result CSV.
 * - `importBlacklistCsv` (`/import-blacklist-csv`): a CSV whose header names list columns
 *   (`custom_variable_1`, `reason`, `clicks`, …), upserted into the **blacklist** (`docs/lists.md` "`/import-blacklist-csv`";
 *   the original wrote to the monitor list).
 *
 * Uploaded and result files live in the FileStore under `manual_update/raw/<id>.csv`,
 * `manual_update/results/<id>.csv` and `raw/blacklist_import_<uuid>.csv`.
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Option, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { AppConfig } from "../platform/Config.ts"
import { decodeOptionalRow, decodeRows, toDatabaseError } from "../platform/Database.ts"
import {
  NotFound,
  UnreadableFile,
  ValidationError,
  StorageError,
  type DatabaseError,
  type PayloadTooLarge
} from "../platform/Errors.ts"
import { FileStore, type FileBody } from "../platform/FileStore.ts"
import { uploadFilename } from "../platform/TextUpload.ts"
import { csvRows, normaliseHeader } from "./ListCsv.ts"
import { LIST_METRIC_COLUMNS, ManualImportTarget, type ListEntry, type ListMetrics } from "./ListSchemas.ts"
import { Lists } from "./Lists.ts"
import { recordRun } from "../platform/Observability.ts"

/** `POST /db-manual-update/import`'s answer (the original's keys). */
export interface ManualImportResult {
  readonly id: string
  readonly target: ManualImportTarget
  readonly original_filename: string
  readonly uploaded: number
  readonly accepted: number
  readonly rejected: number
}

/** An item of `GET /db-manual-update/history` (the original's keys). */
export interface ManualImportHistoryItem {
  readonly id: string
  readonly original_filename: string
  readonly target: ManualImportTarget
  readonly uploaded_count: number
  readonly accepted_count: number
  readonly rejected_count: number
  readonly created_at: Date
}

/** `POST /import-blacklist-csv`'s answer: the original's keys plus `rows_rejected`. */
export interface BlacklistCsvImportResult {
  readonly ok: true
  readonly original_filename: string
  /** Rows written to the blacklist. */
  readonly rows_imported: number
  /** Rows skipped: not a valid phone number, or a cell that is not a number / a date. */
  readonly rows_rejected: number
}

export interface ResultFile {
  /** `result_<original filename>`. */
  readonly filename: string
  readonly body: ReadableStream<Uint8Array>
}

export type ManualImportError = ValidationError | UnreadableFile | PayloadTooLarge | StorageError | DatabaseError

type RowResult =
  "rejected_missing_required" | "rejected_invalid_phone" | "rejected_duplicate" | "rejected_duplicate_in_file"

const TARGET_MESSAGE = "target must be blacklist or monitor"
const REQUIRED = ["phone", "reason", "source"] as const
/** Rows checked against the lists and written per round trip. */
const CHUNK_ROWS = 10_000
const HISTORY_LIMIT = 50
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The FileStore writer rejects with StorageError; anything else is wrapped in one. */
const asStorageError =
  (key: string) =>
  (cause: unknown): StorageError =>
    cause instanceof StorageError
      ? cause
      : new StorageError({
          message: `could not write file ${key}: ${(cause as Error)?.message ?? String(cause)}`,
          cause
        })

/** A CSV cell: quoted when it holds a comma, a quote or a line break. */
const csvCell = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value)

/** The blacklist's columns an `/import-blacklist-csv` header may name (`docs/original-api.md` "Lists"), plus the new ones an export carries. */
const BLACKLIST_CSV_COLUMNS: ReadonlySet<string> = new Set([
  "custom_variable_1",
  "ip",
  "os_version",
  "browser_version",
  "timestamp_created",
  "reason",
  "source",
  ...LIST_METRIC_COLUMNS,
  // Written by the service (sticky: every manual blacklist entry is; updated_at: now); accepted so
  // that a blacklist export can be imported back, and ignored.
  "sticky",
  "updated_at"
])

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** One `/import-blacklist-csv` row as an entry, or undefined when a cell is not what its column holds. */
const blacklistCsvEntry = (
  header: ReadonlyArray<string>,
  row: ReadonlyArray<string>,
  phone: string
): ListEntry | undefined => {
  const metrics: Record<string, number | string | null> = {}
  let reason: string | null = null
  let source: string | null = null
  let ip: string | null = null
  let osVersion: string | null = null
  let browserVersion: string | null = null
  let timestampCreated: Date | null = null
  for (let i = 0; i < header.length; i++) {
    const column = header[i]!
    const value = row[i] ?? ""
    if (value === "") continue
    switch (column) {
      case "custom_variable_1":
      case "sticky":
      case "updated_at":
        break
      case "reason":
        reason = value
        break
      case "source":
        source = value
        break
      case "ip":
        ip = value
        break
      case "os_version":
        osVersion = value
        break
      case "browser_version":
        browserVersion = value
        break
      case "timestamp_created": {
        const date = new Date(value)
        if (Number.isNaN(date.getTime())) return undefined
        timestampCreated = date
        break
      }
      case "cost_sources":
        metrics.cost_sources = value
        break
      default:
        if (!NUMBER.test(value)) return undefined
        metrics[column] = Number(value)
    }
  }
  return {
    phone,
    reason,
    source,
    ip,
    osVersion,
    browserVersion,
    timestampCreated,
    metrics: metrics as ListMetrics
  }
}

/** A row of the import history (rows are written by `importFile`, never with NULL counts or name). */
const HistoryRow = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  target: ManualImportTarget,
  uploaded_count: Schema.Number,
  accepted_count: Schema.Number,
  rejected_count: Schema.Number,
  created_at: Schema.Date
})

const ResultFileRow = Schema.Struct({
  original_filename: Schema.NullOr(Schema.String),
  result_file_path: Schema.NullOr(Schema.String)
})

export class ManualImports extends Context.Service<
  ManualImports,
  {
    /** Stores the upload, writes its valid rows to `target`, stores the result CSV, records the import. */
    readonly importFile: (input: {
      readonly target: string
      readonly filename: string
      readonly body: FileBody
      readonly actor: string
    }) => Effect.Effect<ManualImportResult, ManualImportError>
    /** The latest 50 imports, newest first. */
    readonly history: Effect.Effect<ReadonlyArray<ManualImportHistoryItem>, DatabaseError>
    /** An import's result CSV: `NotFound` "Import not found" / "Result file missing on disk". */
    readonly resultFile: (importId: string) => Effect.Effect<ResultFile, NotFound | StorageError | DatabaseError>
    /** `/import-blacklist-csv`: upserts the rows into the blacklist. */
    readonly importBlacklistCsv: (input: {
      readonly filename: string
      readonly body: FileBody
      readonly actor: string
    }) => Effect.Effect<BlacklistCsvImportResult, ManualImportError>
  }
>()("@optimizer/core/lists/ManualImports") {
  static readonly layerNoDeps = Layer.effect(
    ManualImports,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const files = yield* FileStore
      const lists = yield* Lists
      const { uploadMaxBytes } = yield* AppConfig

      /** Reads back an upload stored a moment ago (missing now = the storage failed). */
      const readBack = (key: string) =>
        files
          .get(key)
          .pipe(
            Effect.catchTag("NotFound", () =>
              Effect.fail(new StorageError({ message: `the uploaded file ${key} vanished from storage` }))
            )
          )

      /** Deletes files of an import that failed (nothing refers to them). */
      const discard = (...keys: ReadonlyArray<string>) =>
        Effect.forEach(keys, (key) => files.delete(key).pipe(Effect.ignore), { discard: true })

      const importFile = Effect.fn("ManualImports.importFile")(function* (input: {
        readonly target: string
        readonly filename: string
        readonly body: FileBody
        readonly actor: string
      }) {
        const target = input.target
        if (target !== "blacklist" && target !== "monitor") {
          return yield* new ValidationError({ message: TARGET_MESSAGE, field: "target" })
        }
        const id = randomUUID()
        const rawKey = `manual_update/raw/${id}.csv`
        const resultKey = `manual_update/results/${id}.csv`
        yield* Effect.annotateCurrentSpan({ importId: id, target })

        const stored = Effect.scoped(
          Effect.gen(function* () {
            yield* files.put(rawKey, input.body, { maxBytes: uploadMaxBytes, contentType: "text/csv" })
            const writer = yield* files.openWriter(resultKey, { contentType: "text/csv" })
            const write = (text: string) =>
              Effect.tryPromise({ try: () => writer.write(text), catch: asStorageError(resultKey) })
            yield* write("phone,result\n")

            let columns:
              { phone: number; reason: number; source: number; os: number; agent: number; ip: number } | undefined
            let uploaded = 0
            let accepted = 0
            const rejected: Array<readonly [row: number, phone: string, result: RowResult]> = []
            const seenInFile = new Set<string>()

            /** Checks a chunk against the lists and writes the rest; accepted rows go to the result CSV at once. */
            const writeChunk = Effect.fn("ManualImports.writeChunk")(function* (
              candidates: ReadonlyArray<{ readonly row: number; readonly typed: string; readonly entry: ListEntry }>
            ) {
              if (candidates.length === 0) return
              const listed = yield* lists.listedIn(
                candidates.map((c) => c.entry.phone),
                ["blacklist", "monitor"]
              )
              const fresh = candidates.filter((c) => {
                if (!listed.has(c.entry.phone)) return true
                rejected.push([c.row, c.typed, "rejected_duplicate"])
                return false
              })
              if (fresh.length === 0) return
              yield* lists.applyEntries(
                target,
                fresh.map((c) => c.entry),
                { actor: input.actor, mode: "manual" }
              )
              accepted += fresh.length
              yield* write(fresh.map((c) => `${csvCell(c.typed)},added_to_${target}\n`).join(""))
            })

            // The whole file is parsed once before anything is written: a file that stops parsing
            // half-way (an unclosed quote, a runaway cell) is refused without a number written.
            yield* csvRows(yield* readBack(rawKey)).pipe(Stream.runDrain)
            const rawBytes = yield* readBack(rawKey)
            yield* csvRows(rawBytes).pipe(
              Stream.grouped(CHUNK_ROWS),
              Stream.runForEach((rows) =>
                Effect.gen(function* () {
                  const candidates: Array<{ readonly row: number; readonly typed: string; readonly entry: ListEntry }> =
                    []
                  for (const row of rows) {
                    if (columns === undefined) {
                      const names = row.map(normaliseHeader)
                      const missing = REQUIRED.filter((r) => !names.includes(r))
                      if (missing.length > 0) {
                        return yield* new ValidationError({
                          message: `the CSV header has no ${missing.map((m) => `"${m}"`).join(", ")} column (required: phone, reason, source)`,
                          field: missing[0]!
                        })
                      }
                      columns = {
                        phone: names.indexOf("phone"),
                        reason: names.indexOf("reason"),
                        source: names.indexOf("source"),
                        os: names.indexOf("osversion"),
                        agent: names.indexOf("useragent"),
                        ip: names.indexOf("ip")
                      }
                      continue
                    }
                    uploaded++
                    const cell = (index: number) => (index < 0 ? "" : (row[index] ?? "").trim())
                    const typed = cell(columns.phone)
                    const reason = cell(columns.reason)
                    const source = cell(columns.source)
                    if (typed === "" || reason === "" || source === "") {
                      rejected.push([uploaded, typed, "rejected_missing_required"])
                      continue
                    }
                    const parsed = normalizePhone(typed)
                    if (!parsed.ok) {
                      rejected.push([uploaded, typed, "rejected_invalid_phone"])
                      continue
                    }
                    if (seenInFile.has(parsed.e164)) {
                      rejected.push([uploaded, typed, "rejected_duplicate_in_file"])
                      continue
                    }
                    seenInFile.add(parsed.e164)
                    candidates.push({
                      row: uploaded,
                      typed,
                      entry: {
                        phone: parsed.e164,
                        reason,
                        source,
                        osVersion: cell(columns.os) || null,
                        browserVersion: cell(columns.agent) || null,
                        ip: cell(columns.ip) || null
                      }
                    })
                  }
                  yield* writeChunk(candidates)
                })
              )
            )
            if (columns === undefined) return yield* new UnreadableFile({ message: "the file is empty" })
            // Rejected rows in file order (a duplicate of a listed number is only known per chunk).
            rejected.sort((a, b) => a[0] - b[0])
            for (let i = 0; i < rejected.length; i += 1000) {
              yield* write(
                rejected
                  .slice(i, i + 1000)
                  .map(([, phone, result]) => `${csvCell(phone)},${result}\n`)
                  .join("")
              )
            }
            yield* Effect.tryPromise({ try: () => writer.close(), catch: asStorageError(resultKey) })
            return { uploaded, accepted, rejected: rejected.length }
          })
        )
        const counts = yield* stored.pipe(Effect.onError(() => discard(rawKey, resultKey)))
        yield* sql`
          INSERT INTO manual_update_imports
            (id, original_filename, target, raw_file_path, result_file_path, uploaded_count, accepted_count, rejected_count)
          VALUES (${id}, ${uploadFilename(input.filename)}, ${target}, ${rawKey}, ${resultKey},
            ${counts.uploaded}, ${counts.accepted}, ${counts.rejected})`.pipe(Effect.mapError(toDatabaseError))
        recordRun("import", counts.uploaded)
        return {
          id,
          target,
          original_filename: uploadFilename(input.filename),
          uploaded: counts.uploaded,
          accepted: counts.accepted,
          rejected: counts.rejected
        } satisfies ManualImportResult
      })

      const history = Effect.gen(function* () {
        const rows = yield* sql`
          SELECT id, original_filename, target, uploaded_count, accepted_count, rejected_count, created_at
          FROM manual_update_imports ORDER BY created_at DESC LIMIT ${HISTORY_LIMIT}`.pipe(decodeRows(HistoryRow))
        return rows.map((r): ManualImportHistoryItem => ({
          id: r.id,
          original_filename: r.original_filename,
          target: r.target,
          uploaded_count: r.uploaded_count,
          accepted_count: r.accepted_count,
          rejected_count: r.rejected_count,
          created_at: r.created_at
        }))
      }).pipe(Effect.withSpan("ManualImports.history"))

      const resultFile = Effect.fn("ManualImports.resultFile")(function* (importId: string) {
        const notFound = new NotFound({ message: "Import not found" })
        if (!UUID.test(importId)) return yield* notFound
        const found = yield* sql`
          SELECT original_filename, result_file_path FROM manual_update_imports WHERE id = ${importId}`.pipe(
          decodeOptionalRow(ResultFileRow)
        )
        if (Option.isNone(found)) return yield* notFound
        const row = found.value
        const missing = new NotFound({ message: "Result file missing on disk" })
        if (row.result_file_path === null) return yield* missing
        const body = yield* files.webStream(row.result_file_path).pipe(
          Effect.catchTag("NotFound", () => Effect.fail(missing)),
          Effect.catchTag("ValidationError", () => Effect.fail(missing))
        )
        return { filename: `result_${row.original_filename ?? `${importId}.csv`}`, body }
      })

      const importBlacklistCsv = Effect.fn("ManualImports.importBlacklistCsv")(function* (input: {
        readonly filename: string
        readonly body: FileBody
        readonly actor: string
      }) {
        if (!input.filename.toLowerCase().endsWith(".csv")) {
          return yield* new ValidationError({ message: "only .csv files are accepted", field: "file" })
        }
        const rawKey = `raw/blacklist_import_${randomUUID()}.csv`
        yield* files.put(rawKey, input.body, { maxBytes: uploadMaxBytes, contentType: "text/csv" })
        let rejected = 0
        // Every valid row is upserted (an admin's write: nothing is kept sticky), as the original
        // counted them — a number repeated in the file counts each time.
        let imported = 0
        const write = Effect.gen(function* () {
          // The header is checked before anything is written.
          const first = yield* csvRows(yield* readBack(rawKey)).pipe(Stream.take(1), Stream.runCollect)
          const header = first[0]?.map((cell) => cell.trim())
          if (header === undefined) return yield* new UnreadableFile({ message: "the file is empty" })
          const unknown = header.filter((name) => !BLACKLIST_CSV_COLUMNS.has(name))
          if (unknown.length > 0) {
            return yield* new ValidationError({
              message: `unknown column${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => `"${u}"`).join(", ")}: the header must name blacklist columns (custom_variable_1, reason, source, ip, os_version, browser_version, timestamp_created, clicks, …)`,
              field: unknown[0]!
            })
          }
          const phoneIndex = header.indexOf("custom_variable_1")
          if (phoneIndex < 0) {
            return yield* new ValidationError({
              message: `the CSV header has no "custom_variable_1" column (the phone number)`,
              field: "custom_variable_1"
            })
          }
          // The whole file parses before anything is written (nothing half-written on a bad file).
          yield* csvRows(yield* readBack(rawKey)).pipe(Stream.runDrain)
          const entries = csvRows(yield* readBack(rawKey)).pipe(
            Stream.drop(1),
            Stream.map((row) => {
              const parsed = normalizePhone((row[phoneIndex] ?? "").trim())
              const entry = parsed.ok ? blacklistCsvEntry(header, row, parsed.e164) : undefined
              if (entry === undefined) rejected++
              else imported++
              return entry
            }),
            Stream.filter((entry): entry is ListEntry => entry !== undefined)
          )
          return yield* lists.applyStream("blacklist", entries, { actor: input.actor, mode: "manual" })
        })
        yield* write.pipe(Effect.onError(() => discard(rawKey)))
        return {
          ok: true,
          original_filename: input.filename,
          rows_imported: imported,
          rows_rejected: rejected
        } satisfies BlacklistCsvImportResult
      })

      return ManualImports.of({ importFile, history, resultFile, importBlacklistCsv })
    })
  )

  static readonly layer = ManualImports.layerNoDeps.pipe(Layer.provide(Lists.layer))
}
