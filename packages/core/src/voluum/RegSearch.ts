/**
 * REG search (docs/original-api.md): the numbers that registered on chosen offers of a country but
 * never deposited (REG without FTD) — the list a re-engagement broadcast goes to.
 *
 * - Search (`search`): the offers with conversions of the country (optionally with a postback between
 *   `from_date` and `to_date`: calendar dates, UTC, both inclusive) make a new entry
 *   `REG_<cc>_<YYYY-MM-DD_HHMMSS>` (UTC).
 * - Process (`process`, a durable job; one search processing at a time; from `uploaded` or
 *   `failed` only, as the original): distinct canonical numbers with a REG conversion for the country,
 *   one of the selected offers and the window, minus those with an FTD for the same country, offers
 *   and window. Written one number per line, no header, in number order. Numbers that are not
 *   canonical keys (an un-substituted `{{phoneNumber}}` stored by the original) are left out.
 * - Everything else — the status machine, the job, archive, delete, download — is the shared
 *   file-job workflow (`platform/FileJobs.ts`).
 */
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { toDatabaseError } from "../platform/Database.ts"
import { NotFound, ValidationError, type Conflict, type DatabaseError, type StorageError } from "../platform/Errors.ts"
import { makeFileJobs, runOutputKey } from "../platform/FileJobs.ts"
import { FileStore } from "../platform/FileStore.ts"
import type { RunningJob } from "../platform/Jobs.ts"
import {
  countryCodeParam,
  csvLine,
  dateWindow,
  ENTRY_COLUMNS,
  ENTRY_FIELDS,
  jobOffers,
  staleResult,
  type SearchFileOperations,
  statusFilter,
  utcStamp,
  writeLines
} from "./SearchFiles.ts"
import type { DownloadableFile } from "./SmartCleaning.ts"

export const REG_SEARCH_QUEUE = "reg-search"
/** FileStore folder, as the original's directory. */
export const REG_SEARCH_PROCESSED_DIR = "processed_reg_search"

const { id, original_filename, ...listed } = ENTRY_FIELDS
const Entry = Schema.Struct({
  id,
  original_filename,
  country_code: Schema.NullOr(Schema.String),
  ...listed,
  cleaned_file_path: Schema.NullOr(Schema.String),
  job_id: Schema.NullOr(Schema.String),
  from_date: Schema.NullOr(Schema.String),
  to_date: Schema.NullOr(Schema.String)
})

/** An entry with the original's keys only. */
const entryItem = ({
  cleaned_file_path: _clean,
  job_id: _job,
  from_date: _from,
  to_date: _to,
  ...item
}: typeof Entry.Type) => item satisfies RegSearchEntry

/** What `/reg-search/search` answers (the original's keys). */
export interface RegSearchCreated {
  readonly id: string
  readonly original_filename: string
  readonly country_code: string
  readonly status: "uploaded"
  readonly offer_count: number
  /** Offer names joined with `^`. */
  readonly offers: string
  readonly from_date: string | null
  readonly to_date: string | null
}

/** An item of `/reg-search/files` (the original's keys). */
export type RegSearchEntry = Omit<typeof Entry.Type, "cleaned_file_path" | "job_id" | "from_date" | "to_date">

export interface RegSearchJobResult {
  readonly file_id: string
  readonly skipped?: string
  readonly reg_only?: number
}

export type RegSearchError = ValidationError | NotFound | Conflict | DatabaseError | StorageError

/** A canonical key (E.164 digits without "+"), as the conversions sync stores valid phones. */
const CANONICAL = "^[1-9][0-9]{6,14}$"

/** The window condition on `postback_timestamp`: `$from`/`$to` are dates or NULL. */
const windowSql = (alias: string, from: string, to: string) =>
  `(${from}::date IS NULL OR ${alias}.postback_timestamp >= (${from}::date)::timestamp AT TIME ZONE 'UTC')
   AND (${to}::date IS NULL OR ${alias}.postback_timestamp < (${to}::date + 1)::timestamp AT TIME ZONE 'UTC')`

const REG_ONLY_SQL = `
  SELECT DISTINCT r.custom_variable_1 AS phone
  FROM api_voluum_conversions r
  WHERE r.country_code = $1 AND r.offer_name = ANY($2::text[]) AND r.conversion_type = 'REG'
    AND r.custom_variable_1 ~ '${CANONICAL}'
    AND ${windowSql("r", "$3", "$4")}
    AND NOT EXISTS (
      SELECT 1 FROM api_voluum_conversions f
      WHERE f.custom_variable_1 = r.custom_variable_1
        AND f.country_code = $1 AND f.offer_name = ANY($2::text[]) AND f.conversion_type = 'FTD'
        AND ${windowSql("f", "$3", "$4")}
    )
  ORDER BY 1`

export class RegSearch extends Context.Service<
  RegSearch,
  {
    /** A new search entry for a country (and optional postback window). */
    readonly search: (params: {
      readonly countryCode?: string
      readonly fromDate?: string
      readonly toDate?: string
    }) => Effect.Effect<RegSearchCreated, RegSearchError>
  } & SearchFileOperations<
    RegSearchEntry,
    { readonly offers: ReadonlyArray<string> },
    RegSearchJobResult,
    RegSearchError
  >
>()("@optimizer/core/voluum/RegSearch") {
  static readonly layer = Layer.effect(
    RegSearch,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const files = yield* FileStore
      const db = Effect.mapError((cause: unknown) => toDatabaseError(cause))
      const fileJobs = yield* makeFileJobs({
        table: "uploaded_reg_search_files",
        queue: REG_SEARCH_QUEUE,
        name: "RegSearch",
        columns: `${ENTRY_COLUMNS}, country_code, from_date::text AS from_date, to_date::text AS to_date`,
        row: Entry,
        storedKeys: (row) => [row.cleaned_file_path],
        startFrom: ["uploaded", "failed"],
        singletonKey: (id) => `reg-search-${id}`,
        messages: {
          notFound: () => "Entry not found",
          conflict: "Another search is already processing",
          notEligible: () => new ValidationError({ message: "Entry not found or not eligible for processing" }),
          notProcessed: () => "Not processed yet",
          queueFailed: "could not queue the processing"
        }
      })

      const search = Effect.fn("RegSearch.search")(function* (params: {
        readonly countryCode?: string
        readonly fromDate?: string
        readonly toDate?: string
      }) {
        const country = yield* countryCodeParam(params.countryCode, "country_code is required")
        const { from, to } = yield* dateWindow(params.fromDate, params.toDate)
        const offers = yield* sql
          .unsafe<{ offer_name: string }>(
            `SELECT DISTINCT c.offer_name FROM api_voluum_conversions c
             WHERE c.country_code = $1 AND c.offer_name IS NOT NULL AND ${windowSql("c", "$2", "$3")}
             ORDER BY c.offer_name`,
            [country, from, to]
          )
          .pipe(
            db,
            Effect.map((rows) => rows.map((r) => r.offer_name))
          )
        if (offers.length === 0) {
          return yield* new NotFound({ message: `No offers found for country code: ${country}` })
        }
        const id = randomUUID()
        const originalFilename = `REG_${country}_${utcStamp(new Date())}`
        yield* sql`
          INSERT INTO uploaded_reg_search_files
            (id, original_filename, country_code, status, offer_count, offers, from_date, to_date)
          VALUES (${id}::uuid, ${originalFilename}, ${country}, 'uploaded', ${offers.length}, ${offers.join("^")},
                  ${from}::date, ${to}::date)`.pipe(db)
        return {
          id,
          original_filename: originalFilename,
          country_code: country,
          status: "uploaded",
          offer_count: offers.length,
          offers: offers.join("^"),
          from_date: from,
          to_date: to
        } satisfies RegSearchCreated
      })

      const list = Effect.fn("RegSearch.list")(function* (params?: { readonly status?: string }) {
        const statuses = yield* statusFilter(params?.status)
        return (yield* fileJobs.list(statuses)).map(entryItem)
      })

      const process = Effect.fn("RegSearch.process")(function* (
        id: string,
        options: { readonly offers: ReadonlyArray<string> }
      ) {
        const offers = options.offers.filter((o) => typeof o === "string" && o !== "")
        if (offers.length === 0) {
          return yield* new ValidationError({ message: "At least one offer is required", field: "offers" })
        }
        return yield* fileJobs.start(id, { offers })
      })

      const download = (id: string): Effect.Effect<DownloadableFile, RegSearchError> =>
        fileJobs.download(id, (row) => ({
          key: row.cleaned_file_path,
          filename: `reg_only_${row.original_filename}.csv`
        }))

      // ---- the job ---------------------------------------------------------------------------------

      const work = (fileId: string, run: Date, entry: typeof Entry.Type, offers: ReadonlyArray<string>) =>
        Effect.gen(function* () {
          const key = runOutputKey(REG_SEARCH_PROCESSED_DIR, fileId, run)
          const numbers = sql
            .unsafe<{ phone: string }>(REG_ONLY_SQL, [entry.country_code, offers, entry.from_date, entry.to_date])
            .stream.pipe(
              Stream.mapError(toDatabaseError),
              Stream.map((r) => csvLine([r.phone]))
            )
          const count = yield* writeLines(files, key, numbers)
          const finished = yield* fileJobs.finish(
            fileId,
            run,
            sql`, cleaned_file_path = ${key}, record_count_total = ${count}, record_count_clean = ${count},
              selected_offer = ${offers.join("^")}`,
            [key]
          )
          if (!finished) return { file_id: fileId, skipped: "the entry changed while it was processed" }
          return { file_id: fileId, reg_only: count } satisfies RegSearchJobResult
        })

      const runJob = Effect.fn("RegSearch.runJob")(function* (job: RunningJob) {
        const offers = yield* jobOffers(job.data, "reg-search")
        return yield* fileJobs.runJob(
          job,
          (stale) => Effect.succeed(staleResult(stale)),
          (claim) => work(claim.fileId, claim.run, claim.row, offers)
        )
      })

      return RegSearch.of({
        search,
        list,
        get: (id) => fileJobs.get(id).pipe(Effect.map(entryItem)),
        process,
        archive: (id) => fileJobs.archive(id).pipe(Effect.as({ ok: true as const })),
        delete: (id) => fileJobs.delete(id).pipe(Effect.as({ ok: true as const })),
        download,
        runJob
      })
    })
  )
}
