/**
 * Table exports (`docs/original-api.md` "Exports"): start one as a job (admin), read the latest one's status
 * (viewer), download the latest file (admin). Only the allow-listed tables (docs/exports.md).
 */
import { Effect, Schema } from "effect"
import { EXPORTABLE_TABLES, Exports, type AppServices } from "@optimizer/core"
import { csvDownload } from "../download.ts"
import type { Routes } from "../http.ts"
import { Count, Timestamp } from "../responses.ts"

const ExportableTable = Schema.Literals(EXPORTABLE_TABLES)

/** `ExportStarted` in core's `exports/Exports.ts`. */
const ExportStarted = Schema.Struct({
  file_id: Schema.String,
  table_name: ExportableTable,
  status: Schema.Literal("processing"),
  job_id: Schema.String.annotate({ description: "Follow it at GET /jobs/{job_id}" })
}).annotate({ identifier: "ExportStarted" })

/** `ExportRecord` in core's `exports/Exports.ts`: the original's keys, then the new ones. */
const ExportRecord = Schema.Struct({
  id: Schema.String,
  file_path: Schema.String.annotate({ description: "The export's key in the file store" }),
  status: Schema.Literals(["pending", "completed", "failed"]),
  created_at: Timestamp,
  completed_at: Schema.NullOr(Timestamp),
  table_name: Schema.String,
  error_message: Schema.NullOr(Schema.String),
  row_count: Schema.NullOr(Count),
  job_id: Schema.NullOr(Schema.String)
}).annotate({ identifier: "ExportRecord" })

const TableQuery = Schema.Struct({ table_name: Schema.optionalKey(Schema.String) })
const ALLOWED = `Allowed tables: ${EXPORTABLE_TABLES.join(", ")}.`

export const exportRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "post",
        path: "/process_db",
        role: "admin",
        tag: "exports",
        summary: "Export a table to CSV (COPY … WITH CSV HEADER) as a job",
        description: ALLOWED,
        query: TableQuery,
        returns: '{"file_id", "table_name", "status": "processing", "job_id"}',
        response: ExportStarted
      },
      ({ query }) => Exports.use((exports) => exports.start(query.table_name ?? ""))
    )
    .add(
      {
        method: "post",
        path: "/fetch-latest-db-export",
        role: "viewer",
        tag: "exports",
        summary: "The latest export of a table, or null",
        description: ALLOWED,
        query: TableQuery,
        returns: '{"id", "file_path", "status", "created_at", "completed_at", …} or null',
        response: Schema.NullOr(ExportRecord)
      },
      ({ query }) => Exports.use((exports) => exports.latest(query.table_name ?? ""))
    )
    .add(
      {
        method: "get",
        path: "/db-download",
        role: "admin",
        tag: "exports",
        summary: "Download the latest export of a table (404 none, 400 not completed)",
        description: ALLOWED,
        query: TableQuery,
        produces: "text/csv"
      },
      ({ query }) =>
        Exports.use((exports) => exports.download(query.table_name ?? "")).pipe(
          Effect.map((file) => csvDownload(file.body, file.filename))
        )
    )
