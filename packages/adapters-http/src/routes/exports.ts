/**
 * Table exports (`docs/original-api.md` "Exports"): start one as a job (admin), read the latest one's status
 * (viewer), download the latest file (admin). Only the allow-listed tables (docs/exports.md).
 */
import { Effect, Schema } from "effect"
import { EXPORTABLE_TABLES, Exports, type AppServices } from "@optimizer/core"
import { csvDownload } from "../download.ts"
import type { Routes } from "../http.ts"

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
        returns: '{"file_id", "table_name", "status": "processing", "job_id"}'
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
        returns: '{"id", "file_path", "status", "created_at", "completed_at", …} or null'
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
