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
        returns: "text/csv",
        produces: "text/csv"
      },
      ({ params }) =>
        Mmd.use((m) => m.download(params.file_id!)).pipe(Effect.map((file) => csvDownload(file.body, file.filename)))
    )
