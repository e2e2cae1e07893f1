/**
 * MessageWhiz (`docs/mmd.md`, `docs/original-api.md` "MessageWhiz") with the original's paths, query
 * parameters and response keys: the daily cost push to Voluum, the day snapshots and their files.
 */
import { Effect, Schema } from "effect"
import { Mmd, type AppServices } from "@optimizer/core"
import { csvDownload } from "../download.ts"
import { QueryBoolean, type Routes } from "../http.ts"

const CostsQuery = Schema.Struct({
  /** Not in the original (always yesterday): a day to push again. */
  date: Schema.optionalKey(Schema.String),
  dry_run: Schema.optionalKey(QueryBoolean)
})

const SpecificDateQuery = Schema.Struct({ previous_date: Schema.String })

/** A day of many campaigns goes at Voluum's pace; the original's cron waited up to 300 s for each call. */
const MMD_WAIT_MS = 285_000
const SNAPSHOT_RETURNS =
  '{"broadcast_count", "date", "file_id", "filename", "skipped": [{"broadcast_id", "name", "reason"}]}; 404 when MessageWhiz has no sent broadcast that day'

export const mmdRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "get",
        path: "/update-costs-for-mmd",
        role: "operator",
        tag: "mmd",
        summary: "Sets yesterday's (UTC) MessageWhiz costs per Voluum campaign (dry_run: only shows them)",
        description:
          "Sums real_price over all of the day's broadcasts per Voluum campaign (from the broadcast's tracked link) and sets it as the campaign's cost for the day; a second run sets the same totals. Broadcasts without a known link are listed in `skipped`.",
        query: CostsQuery,
        returns:
          '{"total_rows", "updates": [{"index", "rows", "campaign_id", "total_cost", "chunk", "response", "error"?, "request"}], "date", "dry_run", "currency", "broadcasts", "skipped", "failed"}',
        waitsMs: () => MMD_WAIT_MS
      },
      ({ query }) => Mmd.use((m) => m.pushCosts(query.date, { dryRun: query.dry_run === true }))
    )
    .add(
      {
        method: "get",
        path: "/save-data-for-previous-date",
        role: "operator",
        tag: "mmd",
        summary: "Snapshot of yesterday's (UTC) sent MessageWhiz broadcasts with their Voluum totals (file + stats)",
        returns: SNAPSHOT_RETURNS,
        waitsMs: () => MMD_WAIT_MS
      },
      () => Mmd.use((m) => m.snapshot())
    )
    .add(
      {
        method: "get",
        path: "/save-data-for-specific-date",
        role: "operator",
        tag: "mmd",
        summary: "Snapshot of a day (previous_date=YYYY-MM-DD); a re-run replaces the day's file and stats",
        query: SpecificDateQuery,
        returns: SNAPSHOT_RETURNS,
        waitsMs: () => MMD_WAIT_MS
      },
      ({ query }) => Mmd.use((m) => m.snapshot(query.previous_date))
    )
    .add(
      {
        method: "get",
        path: "/files-broadcasts",
        role: "viewer",
        tag: "mmd",
        summary: "The snapshot files, newest first",
        returns: '{"items": [{"id", "filename", "uploaded_at", "data_date", "number_of_broadcasts"}]}'
      },
      () => Mmd.use((m) => m.files()).pipe(Effect.map((items) => ({ items })))
    )
    .add(
      {
        method: "get",
        path: "/:file_id/download-broadcasts-history",
        role: "viewer",
        tag: "mmd",
        summary: "Download a snapshot file (named MMD_Data_<date>.csv); 404 for an unknown id",
        returns: "text/csv"
      },
      ({ params }) =>
        Mmd.use((m) => m.download(params.file_id!)).pipe(Effect.map((file) => csvDownload(file.body, file.filename)))
    )
