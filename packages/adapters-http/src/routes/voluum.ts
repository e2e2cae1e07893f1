/**
 * Voluum (docs/original-api.md): the report and conversion syncs, smart
 * cleaning and REG search, with the original's paths, parameters and response keys.
 *
 * The two syncs run as durable jobs; the call waits for the job up to `wait_seconds` (default 25) and
 * then answers the original's body plus `job_id`, or 202 `{"job_id", "status"}` to follow at
 * `/jobs/<id>`. The range endpoints queue one job per day and answer at once.
 */
import { Effect, Schema } from "effect"
import {
  DEFAULT_SYNC_FROM,
  DEFAULT_SYNC_TO,
  DEFAULT_WAIT_SECONDS,
  RegSearch,
  SmartCleaning,
  VoluumSyncJobs,
  type AppServices,
  type SyncOutcome
} from "@optimizer/core"
import type { Context as HonoContext } from "hono"
import { fileRoutes } from "../fileRoutes.ts"
import { QueryBoolean, type AppEnv, type Routes } from "../http.ts"
import { ApplyCounts, Count, FileStatus, Ok, Timestamp, Uploaded } from "../responses.ts"

const SyncDate = Schema.Struct({
  from_date: Schema.optionalKey(Schema.String),
  to_date: Schema.optionalKey(Schema.String)
})

const SyncRange = Schema.Struct({
  year: Schema.Int,
  month: Schema.Int,
  start_day: Schema.Int,
  end_day: Schema.Int
})

const WaitQuery = Schema.Struct({
  wait_seconds: Schema.optionalKey(
    Schema.NumberFromString.pipe(Schema.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 300 })))
  )
})

const CountryQuery = Schema.Struct({
  country_code: Schema.optionalKey(Schema.String),
  from_date: Schema.optionalKey(Schema.String),
  to_date: Schema.optionalKey(Schema.String)
})

const SmartCleaningFlags = Schema.Struct({
  filter_regs: Schema.optionalKey(QueryBoolean),
  filter_last_24h: Schema.optionalKey(QueryBoolean)
})

const OffersBody = Schema.Struct({ offers: Schema.Array(Schema.String) })

const JobId = Schema.String.annotate({ description: "The sync's job: GET /jobs/{job_id}" })

/** A finished reports sync (`ReportsSyncResult` in core's `voluum/ReportsSync.ts`) plus its job. */
const ReportsSyncResult = Schema.Struct({
  row_counts: Schema.Struct({ blacklist_rows: Count, monitor_rows: Count, whitelist_rows: Count }).annotate({
    description: "Rows sent to each list (the original's keys)"
  }),
  from: Schema.String.annotate({ description: "The window synced, as sent to Voluum" }),
  to: Schema.String,
  traffic_sources: Count,
  rows_fetched: Count.annotate({ description: "Report rows Voluum returned (all traffic sources)" }),
  phones: Count.annotate({ description: "Distinct phones kept (rows appended to the history)" }),
  unknown_rows: Count.annotate({ description: "Phones classified UNKNOWN: stored in the history only" }),
  invalid_phones: Count,
  undecryptable_tokens: Count,
  kept_sticky: Count.annotate({ description: "Numbers left on a sticky entry instead of being moved" }),
  history_rows: Count,
  by_rule: Schema.Record(Schema.String, Count).annotate({ description: "Phones per classification rule" }),
  lists: Schema.Struct({ blacklist: ApplyCounts, whitelist: ApplyCounts, monitor: ApplyCounts }),
  job_id: JobId
}).annotate({ identifier: "ReportsSyncResult" })

/** A finished conversions sync (`ConversionsSyncResult` in core's `voluum/ConversionsSync.ts`) plus its job. */
const ConversionsSyncResult = Schema.Struct({
  row_counts: Schema.Struct({
    successful_rows: Count.annotate({ description: "Rows pushed to Ongage by this sync" }),
    unsuccessful_rows: Count.annotate({ description: "Rows marked INVALID_PHONE_NUMBER or failed by Ongage" })
  }),
  from: Schema.String,
  to: Schema.String,
  fetched: Count.annotate({ description: "Conversions Voluum returned" }),
  inserted: Count.annotate({ description: "New rows in api_voluum_conversions" }),
  already_stored: Count,
  undecryptable_tokens: Count,
  invalid_phones: Count,
  other_countries: Count.annotate({ description: "Rows marked COUNTRY_NOT_PUSHED" }),
  pushed: Count,
  push_failed: Count,
  pending: Count.annotate({ description: "Rows that could be pushed but were not" }),
  ongage: Schema.Literals(["pushed", "nothing_to_push", "not_configured", "failed"]),
  ongage_error: Schema.optionalKey(Schema.String).annotate({ description: "Why the push did not (fully) happen" }),
  job_id: JobId
}).annotate({ identifier: "ConversionsSyncResult" })

/** One sync job queued per day (`RangeQueued` in core's `voluum/VoluumJobs.ts`). */
const RangeQueued = Schema.Struct({
  status: Schema.Literal("success"),
  job_ids: Schema.Array(Schema.String),
  windows: Schema.Array(Schema.Struct({ from: Schema.String, to: Schema.String })).annotate({
    description: "The windows queued, one per job"
  })
}).annotate({ identifier: "RangeQueued" })

/** The fields a smart-cleaning entry and a REG search list (`ENTRY_FIELDS` in core's `voluum/SearchFiles.ts`). */
const entryFields = {
  status: FileStatus,
  uploaded_at: Timestamp,
  processing_started_at: Schema.NullOr(Timestamp),
  processed_at: Schema.NullOr(Timestamp),
  error_message: Schema.NullOr(Schema.String),
  record_count_total: Schema.NullOr(Count),
  record_count_clean: Schema.NullOr(Count),
  offer_count: Schema.NullOr(Count),
  offers: Schema.NullOr(Schema.String).annotate({ description: "Offer names joined with ^" }),
  selected_offer: Schema.NullOr(Schema.String)
}

const SmartCleaningEntry = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  ...entryFields
}).annotate({ identifier: "SmartCleaningEntry" })

const RegSearchEntry = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  country_code: Schema.NullOr(Schema.String),
  ...entryFields
}).annotate({ identifier: "RegSearchEntry" })

const SmartCleaningCreated = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  status: Schema.Literal("uploaded"),
  record_count_total: Count,
  offer_count: Count,
  offers: Schema.String.annotate({ description: "Offer names joined with ^" }),
  from_date: Schema.NullOr(Schema.String),
  to_date: Schema.NullOr(Schema.String)
}).annotate({ identifier: "SmartCleaningCreated" })

const RegSearchCreated = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  country_code: Schema.String,
  status: Schema.Literal("uploaded"),
  offer_count: Count,
  offers: Schema.String.annotate({ description: "Offer names joined with ^" }),
  from_date: Schema.NullOr(Schema.String),
  to_date: Schema.NullOr(Schema.String)
}).annotate({ identifier: "RegSearchCreated" })

const SYNC_RETURNS_NOTE =
  '; when the sync takes longer than wait_seconds (default 25): 202 {"job_id", "status": "queued"|"running"}'

/** A sync's 202, for the docs: what `syncAnswer` answers when the sync outlasts `wait_seconds`. */
const SYNC_ACCEPTED = {
  description: "The sync takes longer than wait_seconds: follow its job at /jobs/{job_id}",
  schema: Schema.Struct({ job_id: JobId, status: Schema.Literals(["queued", "running"]) }).annotate({
    identifier: "SyncAccepted"
  })
}

/** The finished sync's body (original keys) plus its job id, or 202 with the job to follow. */
const syncAnswer = <A extends object>(c: HonoContext<AppEnv>, outcome: SyncOutcome<A>) =>
  outcome.state === "completed"
    ? { ...outcome.result, job_id: outcome.jobId }
    : c.json({ job_id: outcome.jobId, status: outcome.state }, 202)

const windowOf = (body: typeof SyncDate.Type) => ({
  from: body.from_date ?? DEFAULT_SYNC_FROM,
  to: body.to_date ?? DEFAULT_SYNC_TO
})

const rangeOf = (body: typeof SyncRange.Type) => ({
  year: body.year,
  month: body.month,
  startDay: body.start_day,
  endDay: body.end_day
})

const statusParam = (status: string | undefined) => (status === undefined ? {} : { status })

export const voluumRoutes = (routes: Routes<AppServices>) => {
  routes
    // ---- syncs ----------------------------------------------------------------------------------
    .add(
      {
        method: "post",
        path: "/sync-voluum-reports",
        role: "operator",
        tag: "voluum",
        summary: "Sync Voluum's traffic-source reports of a window into the history and the lists",
        description:
          "Body {from_date, to_date}: ISO date-times on whole hours (defaults 2025-12-12T00:00:00.000Z → 2025-12-13T00:00:00.000Z, as the original). Runs as a job.",
        body: SyncDate,
        query: WaitQuery,
        waitsMs: (query) => (query.wait_seconds ?? DEFAULT_WAIT_SECONDS) * 1000,
        accepted: SYNC_ACCEPTED,
        returns:
          '{"row_counts": {"blacklist_rows", "monitor_rows", "whitelist_rows"}, "unknown_rows", "invalid_phones", "undecryptable_tokens", "kept_sticky", …, "job_id"}' +
          SYNC_RETURNS_NOTE,
        response: ReportsSyncResult
      },
      ({ c, body, query }) =>
        VoluumSyncJobs.use((s) =>
          s.syncReports(windowOf(body), query.wait_seconds === undefined ? {} : { waitSeconds: query.wait_seconds })
        ).pipe(Effect.map((outcome) => syncAnswer(c, outcome)))
    )
    .add(
      {
        method: "post",
        path: "/sync-voluum-reports_for_range",
        role: "operator",
        tag: "voluum",
        summary: "Queue one reports sync per day [start_day, end_day) of a month (rolls over the month's end)",
        body: SyncRange,
        returns: '{"status": "success", "job_ids": [...], "windows": [{"from", "to"}]}',
        response: RangeQueued
      },
      ({ body }) => VoluumSyncJobs.use((s) => s.syncReportsForRange(rangeOf(body)))
    )
    .add(
      {
        method: "post",
        path: "/sync-voluum-conversions",
        role: "operator",
        tag: "voluum",
        summary: "Sync Voluum's conversions of a window and push new converters to Ongage",
        description:
          "Body {from_date, to_date} as /sync-voluum-reports. Runs as a job. Without Ongage settings the conversions are stored and the push reports not_configured.",
        body: SyncDate,
        query: WaitQuery,
        waitsMs: (query) => (query.wait_seconds ?? DEFAULT_WAIT_SECONDS) * 1000,
        accepted: SYNC_ACCEPTED,
        returns:
          '{"row_counts": {"successful_rows", "unsuccessful_rows"}, "fetched", "inserted", "pushed", "ongage", …, "job_id"}' +
          SYNC_RETURNS_NOTE,
        response: ConversionsSyncResult
      },
      ({ c, body, query }) =>
        VoluumSyncJobs.use((s) =>
          s.syncConversions(windowOf(body), query.wait_seconds === undefined ? {} : { waitSeconds: query.wait_seconds })
        ).pipe(Effect.map((outcome) => syncAnswer(c, outcome)))
    )
    .add(
      {
        method: "post",
        path: "/sync-voluum-conversions-for-range",
        role: "operator",
        tag: "voluum",
        summary: "Queue one conversions sync per day [start_day, end_day) of a month (rolls over the month's end)",
        body: SyncRange,
        returns: '{"status": "success", "job_ids": [...], "windows": [{"from", "to"}]} (the original answered null)',
        response: RangeQueued
      },
      ({ body }) => VoluumSyncJobs.use((s) => s.syncConversionsForRange(rangeOf(body)))
    )
    // ---- smart cleaning -------------------------------------------------------------------------
    .add(
      {
        method: "post",
        path: "/find-smart-cleaning-voluum",
        role: "operator",
        tag: "smart-cleaning",
        summary:
          "New smart-cleaning entry from the whitelist numbers of a country (optionally first listed in a date window)",
        query: CountryQuery,
        returns:
          '{"id", "original_filename", "status": "uploaded", "record_count_total", "offer_count", "offers", "from_date", "to_date"} (the original answered null)',
        response: SmartCleaningCreated
      },
      ({ query }) =>
        SmartCleaning.use((s) =>
          s.createFromCountry({
            ...(query.country_code === undefined ? {} : { countryCode: query.country_code }),
            ...(query.from_date === undefined ? {} : { fromDate: query.from_date }),
            ...(query.to_date === undefined ? {} : { toDate: query.to_date })
          })
        )
    )
  fileRoutes(routes, {
    tag: "smart-cleaning",
    upload: {
      path: "/upload-smart-cleaning-voluum",
      summary: "New smart-cleaning entry from an uploaded .csv (phone, or phone,timestamp per line)",
      returns: '{"id", "original_filename", "status": "uploaded"}',
      response: Uploaded,
      run: (file) => SmartCleaning.use((s) => s.upload({ filename: file.filename, body: file.stream }))
    },
    list: {
      path: "/smart-cleaning-files-voluum",
      summary: "Smart-cleaning entries, newest first; ?status=a,b filters",
      returns:
        '{"items": [{"id", "original_filename", "status", "uploaded_at", "processing_started_at", "processed_at", "error_message", "record_count_total", "record_count_clean", "offer_count", "offers", "selected_offer"}]}',
      item: SmartCleaningEntry,
      run: (status) => SmartCleaning.use((s) => s.list(statusParam(status)))
    },
    process: {
      path: "/:file_id/process-smart-cleaning-files-voluum",
      summary: "Remove the numbers that converted on the chosen offers (a job; one entry at a time)",
      description:
        "Body {offers: [...]}. ?filter_regs=true also removes REG converters; ?filter_last_24h=true also removes numbers with a live click on the offers in the last 24 h.",
      query: SmartCleaningFlags,
      body: OffersBody,
      returns: '{"ok": true, "file_id", "status": "processing", "job_id"}',
      run: ({ fileId, query, body }) =>
        SmartCleaning.use((s) =>
          s.process(fileId, {
            offers: body.offers,
            filterRegs: query.filter_regs === true,
            filterLast24h: query.filter_last_24h === true
          })
        )
    },
    download: {
      path: "/:file_id/download-smart-cleaning-files-voluum",
      summary: "The processed list: phone[,timestamp] per line, no header (processed_voluum_click_<name>)",
      returns: "text/csv",
      run: (fileId) => SmartCleaning.use((s) => s.download(fileId))
    },
    archive: {
      path: "/:file_id/archive-smart-cleaning-files-voluum",
      summary: "Archive a smart-cleaning entry",
      returns: '{"ok": true}',
      response: Ok,
      run: (fileId) => SmartCleaning.use((s) => s.archive(fileId))
    },
    delete: {
      path: "/:file_id/delete-smart-cleaning-files-voluum",
      summary: "Delete a smart-cleaning entry and its files",
      returns: '{"ok": true}',
      response: Ok,
      run: (fileId) => SmartCleaning.use((s) => s.delete(fileId))
    }
  })
  // ---- REG search -----------------------------------------------------------------------------
  routes.add(
    {
      method: "post",
      path: "/reg-search/search",
      role: "operator",
      tag: "reg-search",
      summary: "New REG search for a country (offers with conversions, optionally in a postback date window)",
      query: CountryQuery,
      returns:
        '{"id", "original_filename", "country_code", "status": "uploaded", "offer_count", "offers", "from_date", "to_date"}',
      response: RegSearchCreated
    },
    ({ query }) =>
      RegSearch.use((s) =>
        s.search({
          ...(query.country_code === undefined ? {} : { countryCode: query.country_code }),
          ...(query.from_date === undefined ? {} : { fromDate: query.from_date }),
          ...(query.to_date === undefined ? {} : { toDate: query.to_date })
        })
      )
  )
  return fileRoutes(routes, {
    tag: "reg-search",
    list: {
      path: "/reg-search/files",
      summary: "REG searches, newest first; ?status=a,b filters",
      returns:
        '{"items": [{"id", "original_filename", "country_code", "status", "uploaded_at", "processing_started_at", "processed_at", "error_message", "record_count_total", "record_count_clean", "offer_count", "offers", "selected_offer"}]}',
      item: RegSearchEntry,
      run: (status) => RegSearch.use((s) => s.list(statusParam(status)))
    },
    process: {
      path: "/reg-search/:file_id/process",
      summary: "Find the numbers with a REG but no FTD on the chosen offers (a job; one search at a time)",
      body: OffersBody,
      returns: '{"ok": true, "file_id", "status": "processing", "job_id"}',
      run: ({ fileId, body }) => RegSearch.use((s) => s.process(fileId, { offers: body.offers }))
    },
    download: {
      path: "/reg-search/:file_id/download",
      summary: "The REG-only numbers: one per line, no header (reg_only_<name>.csv)",
      returns: "text/csv",
      run: (fileId) => RegSearch.use((s) => s.download(fileId))
    },
    archive: {
      path: "/reg-search/:file_id/archive",
      summary: "Archive a REG search",
      returns: '{"ok": true}',
      response: Ok,
      run: (fileId) => RegSearch.use((s) => s.archive(fileId))
    },
    delete: {
      path: "/reg-search/:file_id/delete",
      summary: "Delete a REG search and its file",
      returns: '{"ok": true}',
      response: Ok,
      run: (fileId) => RegSearch.use((s) => s.delete(fileId))
    }
  })
}
