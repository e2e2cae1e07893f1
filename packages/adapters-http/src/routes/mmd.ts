/**
 * MessageWhiz (`docs/mmd.md`, `docs/original-api.md` "MessageWhiz") with the original's paths, query
 * parameters and response keys: the daily cost push to Voluum, the day snapshots and their files, and
 * the live broadcasts stream (SSE).
 *
 * The stream's events are the original's (`data: {"type":"row"|"error"|"broadcast_done", ...}`, then
 * `event: done` / `data: completed`), with a `: heartbeat` comment at least every
 * MMD_STREAM_HEARTBEAT_SECONDS (≤ 20 s) so proxies keep a slow stream open. The events are made as the
 * client reads them: a client that disconnects cancels the body, which interrupts the work.
 */
import { Effect, Schema, Stream } from "effect"
import { AppConfig, Mmd, type AppServices, type BroadcastEvent } from "@optimizer/core"
import { csvDownload } from "../download.ts"
import { QueryBoolean, type Routes } from "../http.ts"
import { Count, Items, Num, Timestamp } from "../responses.ts"

/** A broadcast reported and left out (`SkippedBroadcast` in core's `mmd/MessageWhizSchemas.ts`). */
const SkippedBroadcast = Schema.Struct({
  broadcast_id: Schema.String,
  name: Schema.String,
  reason: Schema.String.annotate({ description: "Why it was left out (no tracked link, no campaign, …)" })
}).annotate({ identifier: "SkippedBroadcast" })

/** One campaign's cost set in Voluum (`CostUpdateOutcome` in core's `mmd/MmdCosts.ts`). */
const CostUpdate = Schema.Struct({
  index: Schema.String.annotate({ description: "Position, as a string (the original's)" }),
  rows: Count.annotate({ description: "Broadcasts summed" }),
  campaign_id: Schema.String,
  total_cost: Num.annotate({ description: "Rounded to 3 decimals" }),
  chunk: Schema.String.annotate({ description: "The first broadcast's name" }),
  response: Schema.NullOr(Schema.Int).annotate({ description: "Voluum's HTTP status; null in a dry run" }),
  error: Schema.optionalKey(Schema.String).annotate({ description: "Why Voluum refused it, when it did" }),
  request: Schema.Struct({
    campaignId: Schema.String,
    from: Schema.String,
    to: Schema.String,
    timezone: Schema.String,
    cost: Num,
    currency: Schema.String
  }).annotate({ description: "What is (or, in a dry run, would be) sent" })
}).annotate({ identifier: "CostUpdate" })

/** `CostPushResult` in core's `mmd/MmdCosts.ts`. */
const CostPushResult = Schema.Struct({
  total_rows: Count.annotate({ description: "Campaigns (the original's key)" }),
  updates: Schema.Array(CostUpdate),
  date: Schema.String.annotate({ description: "The day, YYYY-MM-DD (UTC)" }),
  dry_run: Schema.Boolean,
  currency: Schema.String,
  broadcasts: Count,
  skipped: Schema.Array(SkippedBroadcast),
  failed: Count.annotate({ description: "Updates Voluum refused" })
}).annotate({ identifier: "CostPushResult" })

/** `SnapshotResult` in core's `mmd/MmdSnapshots.ts`. */
const SnapshotResult = Schema.Struct({
  broadcast_count: Count.annotate({ description: "Rows written (the original's key)" }),
  date: Schema.String.annotate({ description: "The day, YYYY-MM-DD (UTC)" }),
  file_id: Schema.String,
  filename: Schema.String,
  skipped: Schema.Array(SkippedBroadcast)
}).annotate({ identifier: "SnapshotResult" })

/** `BroadcastsFile` in core's `mmd/MmdSnapshots.ts`. */
const BroadcastsFile = Schema.Struct({
  id: Schema.String,
  filename: Schema.NullOr(Schema.String),
  uploaded_at: Timestamp,
  data_date: Schema.NullOr(Schema.String).annotate({ description: "The day the snapshot is of, YYYY-MM-DD" }),
  number_of_broadcasts: Schema.NullOr(Count)
}).annotate({ identifier: "BroadcastsFile" })

const CostsQuery = Schema.Struct({
  /** Not in the original (always yesterday): a day to push again. */
  date: Schema.optionalKey(Schema.String),
  dry_run: Schema.optionalKey(QueryBoolean)
})

const LiveQuery = Schema.Struct({ search: Schema.optionalKey(Schema.String) })

const encoder = new TextEncoder()
const sseData = (event: BroadcastEvent) => `data: ${JSON.stringify(event)}\n\n`
const SSE_DONE = "event: done\ndata: completed\n\n"
const SSE_HEARTBEAT = ": heartbeat\n\n"

/** The SSE body of a stream of events: heartbeats while it runs, `done` at its end. */
const sseResponse = (events: Stream.Stream<BroadcastEvent>, heartbeatSeconds: number) =>
  Effect.map(
    Stream.toReadableStreamEffect(
      events.pipe(
        Stream.map(sseData),
        Stream.merge(
          Stream.map(Stream.tick(`${heartbeatSeconds} seconds`), () => SSE_HEARTBEAT),
          {
            haltStrategy: "left"
          }
        ),
        Stream.concat(Stream.succeed(SSE_DONE)),
        Stream.map((text) => encoder.encode(text))
      )
    ),
    (body) =>
      new Response(body, {
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          "x-accel-buffering": "no"
        }
      })
  )

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
        response: CostPushResult,
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
        response: SnapshotResult,
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
        response: SnapshotResult,
        waitsMs: () => MMD_WAIT_MS
      },
      ({ query }) => Mmd.use((m) => m.snapshot(query.previous_date))
    )
    .add(
      {
        method: "get",
        path: "/get-live-broadcasts-stream",
        role: "viewer",
        tag: "mmd",
        summary:
          "Today's (UTC) sent broadcasts with their Voluum totals as server-sent events, grouped by name before _chunk (search: a name filter, any case)",
        query: LiveQuery,
        returns:
          'text/event-stream: data: {"type":"row","broadcast","row"} | {"type":"error","broadcast","error"} | {"type":"broadcast_done","broadcast"}; then event: done, data: completed; ": heartbeat" comments',
        produces: "text/event-stream"
      },
      ({ query }) =>
        Effect.gen(function* () {
          const settings = yield* AppConfig
          const heartbeatSeconds = settings.mmd.configured ? settings.mmd.value.streamHeartbeatSeconds : 15
          const events = yield* Mmd.use((m) => m.live(query.search))
          return yield* sseResponse(events, heartbeatSeconds)
        })
    )
    .add(
      {
        method: "get",
        path: "/files-broadcasts",
        role: "viewer",
        tag: "mmd",
        summary: "The snapshot files, newest first",
        returns: '{"items": [{"id", "filename", "uploaded_at", "data_date", "number_of_broadcasts"}]}',
        response: Items(BroadcastsFile)
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
        returns: "text/csv",
        produces: "text/csv"
      },
      ({ params }) =>
        Mmd.use((m) => m.download(params.file_id!)).pipe(Effect.map((file) => csvDownload(file.body, file.filename)))
    )
