/**
 * The Voluum conversions sync and the Ongage push (`docs/voluum.md`, "Conversions sync and the Ongage
 * push"; the original's behaviour in `docs/original-api.md`, "Conversions and the Ongage push").
 *
 * 1. Fetch Voluum's raw conversions of the window (all traffic sources, as the original), rows by name.
 * 2. Derive, per row (`ConversionRows.ts`):
 *    - phone: custom variable 1, decrypted when it is a token (25+ characters), normalised to the
 *      canonical key; stored in `custom_variable_1` (an invalid value is stored as received, a token
 *      no key opens too, and counted);
 *    - country: the campaign name's second `" - "` segment looked up by English name
 *      (`"… - France - …"` → FR); when there is no such segment or the name is unknown, Voluum's own
 *      `countryCode`; else `DEF` (the original crashed on a name without `" - "`);
 *    - type: `FTD` when Voluum says FTD (any case), else `REG`;
 *    - `generated_email`: `+<phone>@<ONGAGE_EMAIL_DOMAIN>` for a valid phone, else NULL;
 *    - `source`: `<country>_<type>`; `postback_timestamp` / `visit_timestamp` read as UTC (the
 *      client asks Voluum for `tz=Etc/GMT`).
 * 3. Insert into `api_voluum_conversions`, `ON CONFLICT (click_id, transaction_id, conversion_type)
 *    DO NOTHING` (a row already stored keeps its push state).
 * 4. Push, among the fetched conversions, the rows not pushed yet (`processed = false` and no error,
 *    or an earlier Ongage failure with fewer than `MAX_PUSH_ATTEMPTS` attempts):
 *    - a row without a valid phone is marked `error_message = 'INVALID_PHONE_NUMBER'` (the original
 *      wrote the typo `INAVLID_…` and bumped `retry_count` on every run);
 *    - a row of a country outside `ONGAGE_COUNTRIES` (default GB) is marked `COUNTRY_NOT_PUSHED`
 *      (the original left them pending forever);
 *    - the rest go to Ongage as one contact per email (the latest conversion of that phone wins), in
 *      batches of 500. Each batch is claimed (`FOR UPDATE SKIP LOCKED`, so two syncs never send the
 *      same rows), sent, and marked by ITS OWN outcome in the same transaction: rows of emails Ongage
 *      took → `processed = true`, `processed_at = now()`, error and retries cleared; rows of emails it
 *      rejected (a 412 names them) → `error_message = 'ONGAGE_REJECTED: <reason>'`, `retry_count + 1`,
 *      `last_retry_at`. A batch that fails as a whole (Ongage down after the retry budget) is marked
 *      `ONGAGE_FAILED: <message>` and the remaining batches wait for the next sync of the window.
 *    Nothing processed is sent again, so a second identical sync sends nothing.
 *    Without LIST_ID/X_USERNAME/X_PASSWORD/X_ACCOUNT_CODE the conversions are still stored and marked,
 *    the pushable rows stay pending (pushed by the first sync of their window once Ongage is set) and
 *    the result says `ongage: "not_configured"` with the missing variables.
 *
 * Contacts carry the original's fields, dates written as Voluum writes them (`2025-10-01 04:17:21 AM`,
 * UTC). This file is the service; the row building is `ConversionRows.ts`, the Ongage forwarding
 * `ConversionsOngagePush.ts`.
 */
import { Array as Arr, Context, Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { Encryption } from "../encryption/Encryption.ts"
import { OngageClient } from "../ongage/OngageClient.ts"
import { AppConfig, requireIntegration } from "../platform/Config.ts"
import { toDatabaseError } from "../platform/Database.ts"
import { ValidationError, type DatabaseError, type NotConfigured, type UpstreamError } from "../platform/Errors.ts"
import { conversionRecords, keyOf } from "./ConversionRows.ts"
import { COUNTRY_NOT_PUSHED, INVALID_PHONE_NUMBER, makeOngagePush, ONGAGE_BATCH_SIZE } from "./ConversionsOngagePush.ts"
import { utcWindow, type SyncWindow } from "./ReportsSync.ts"
import { VoluumClient } from "./VoluumClient.ts"
import { formatVoluumHour, hourWindow, type ConversionRow } from "./VoluumSchemas.ts"

// The parts' names, importable from here as before the split.
export {
  campaignCountryName,
  conversionCountry,
  conversionTime,
  conversionType,
  DEFAULT_COUNTRY,
  generatedEmail
} from "./ConversionRows.ts"
export {
  contactOf,
  COUNTRY_NOT_PUSHED,
  INVALID_PHONE_NUMBER,
  MAX_PUSH_ATTEMPTS,
  ONGAGE_BATCH_SIZE,
  ONGAGE_FAILED,
  ONGAGE_REJECTED
} from "./ConversionsOngagePush.ts"

export interface ConversionsSyncOptions {
  /** Contacts per Ongage request. Default 500. */
  readonly batchSize?: number
}

/** The original's response (`row_counts`), plus the counts it did not give. */
export interface ConversionsSyncResult {
  readonly row_counts: {
    /** Rows pushed to Ongage by this sync. */
    readonly successful_rows: number
    /** Rows marked INVALID_PHONE_NUMBER or failed by Ongage in this sync. */
    readonly unsuccessful_rows: number
  }
  readonly from: string
  readonly to: string
  /** Conversions Voluum returned. */
  readonly fetched: number
  /** New rows in api_voluum_conversions. */
  readonly inserted: number
  /** Fetched rows that were stored already (their push state is kept). */
  readonly already_stored: number
  /** Fetched rows whose custom variable 1 is a token no configured key decrypts. */
  readonly undecryptable_tokens: number
  /** Rows marked INVALID_PHONE_NUMBER now. */
  readonly invalid_phones: number
  /** Rows marked COUNTRY_NOT_PUSHED now. */
  readonly other_countries: number
  readonly pushed: number
  /** Rows marked with an Ongage failure now (rejected contacts and failed batches). */
  readonly push_failed: number
  /** Rows that could be pushed but were not (Ongage not configured, or a failed batch stopped the push). */
  readonly pending: number
  readonly ongage: "pushed" | "nothing_to_push" | "not_configured" | "failed"
  /** Why the push did not (fully) happen. */
  readonly ongage_error?: string
}

export type ConversionsSyncError = UpstreamError | NotConfigured | ValidationError | DatabaseError

/** Rows inserted per statement (≈ 58 parameters each). */
const INSERT_ROWS = 500
/** Fetched rows decrypted and normalised per step. */
const CHUNK_ROWS = 2_000

export class ConversionsSync extends Context.Service<
  ConversionsSync,
  {
    /** Syncs the conversions of `window` and pushes the new converters to Ongage (module comment). */
    readonly syncConversions: (
      window: SyncWindow,
      options?: ConversionsSyncOptions
    ) => Effect.Effect<ConversionsSyncResult, ConversionsSyncError>
  }
>()("@optimizer/core/voluum/ConversionsSync") {
  static readonly layer = Layer.effect(
    ConversionsSync,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const voluum = yield* VoluumClient
      const ongage = yield* OngageClient
      const encryption = yield* Encryption
      const sql = yield* SqlClient.SqlClient
      const db = <A>(effect: Effect.Effect<A, SqlError>) => Effect.mapError(effect, toDatabaseError)
      const pushCountries = new Set(settings.ongageCountries)
      const { pushCandidates, markSkipped, pushBatch } = makeOngagePush(sql, ongage)

      const syncConversions = Effect.fn("ConversionsSync.syncConversions")(function* (
        window: SyncWindow,
        options?: ConversionsSyncOptions
      ) {
        yield* requireIntegration("Voluum", settings.voluum)
        const checked = hourWindow(utcWindow(window), { from: "from_date", to: "to_date" })
        if (checked instanceof ValidationError) return yield* checked
        const { from, to } = checked
        const batchSize = Math.max(1, Math.min(1_000, Math.trunc(options?.batchSize ?? ONGAGE_BATCH_SIZE)))
        yield* Effect.annotateCurrentSpan({ from: from.toISOString(), to: to.toISOString() })

        // 1–3. Fetch, derive, insert.
        let fetched = 0
        let inserted = 0
        let undecryptable = 0
        const keys = new Set<string>()
        const clickIds = new Set<string>()

        const storeChunk = (rows: ReadonlyArray<ConversionRow>) =>
          Effect.gen(function* () {
            fetched += rows.length
            const built = yield* conversionRecords(encryption, rows, settings.ongageEmailDomain)
            undecryptable += built.undecryptable
            const records = built.records
            for (const record of records) {
              keys.add(keyOf(record.click_id, record.transaction_id, record.conversion_type))
              if (record.click_id !== null) clickIds.add(record.click_id)
            }
            for (let i = 0; i < records.length; i += INSERT_ROWS) {
              const slice = records.slice(i, i + INSERT_ROWS)
              if (!Arr.isReadonlyArrayNonEmpty(slice)) break // never: i < records.length
              const rowsInserted = yield* db(
                sql`
                  INSERT INTO api_voluum_conversions ${sql.insert(slice)}
                  ON CONFLICT ON CONSTRAINT api_voluum_conversions_dedup_key DO NOTHING
                  RETURNING id::text AS id`
              )
              inserted += rowsInserted.length
            }
          })

        yield* voluum.conversionsStream({ from, to }).pipe(Stream.grouped(CHUNK_ROWS), Stream.runForEach(storeChunk))

        // 4. Push.
        const candidates = yield* pushCandidates([...clickIds], keys)
        const invalidIds = candidates.filter((c) => c.generated_email === null).map((c) => c.id)
        const otherCountryIds = candidates
          .filter((c) => c.generated_email !== null && !pushCountries.has(c.country_code ?? ""))
          .map((c) => c.id)
        const invalidPhones = yield* markSkipped(invalidIds, INVALID_PHONE_NUMBER)
        const otherCountries = yield* markSkipped(otherCountryIds, COUNTRY_NOT_PUSHED)
        const pushable = candidates.filter((c) => c.generated_email !== null && pushCountries.has(c.country_code ?? ""))

        // Batches of emails (all rows of one email in the same batch).
        const groups = new Map<string, Array<string>>()
        for (const c of pushable) {
          const email = c.generated_email!.toLowerCase()
          const ids = groups.get(email)
          if (ids === undefined) groups.set(email, [c.id])
          else ids.push(c.id)
        }
        const emailGroups = [...groups.values()]

        let pushed = 0
        let pushFailed = 0
        let pending = pushable.length
        let ongageState: ConversionsSyncResult["ongage"] = pushable.length === 0 ? "nothing_to_push" : "pushed"
        let ongageError: string | undefined
        if (pushable.length > 0 && !settings.ongage.configured) {
          ongageState = "not_configured"
          ongageError = `Ongage is not configured: set ${settings.ongage.missing.join(", ")}`
        } else {
          for (let i = 0; i < emailGroups.length; i += batchSize) {
            const batch = emailGroups.slice(i, i + batchSize)
            const outcome = yield* pushBatch(batch.flat())
            pushed += outcome.pushed
            pushFailed += outcome.failed
            pending -= batch.reduce((n, ids) => n + ids.length, 0)
            if (outcome.batchError !== undefined) {
              ongageState = "failed"
              ongageError = outcome.batchError
              break
            }
          }
        }

        const result: ConversionsSyncResult = {
          row_counts: { successful_rows: pushed, unsuccessful_rows: invalidPhones + pushFailed },
          from: formatVoluumHour(from),
          to: formatVoluumHour(to),
          fetched,
          inserted,
          already_stored: fetched - inserted,
          undecryptable_tokens: undecryptable,
          invalid_phones: invalidPhones,
          other_countries: otherCountries,
          pushed,
          push_failed: pushFailed,
          pending,
          ongage: ongageState,
          ...(ongageError === undefined ? {} : { ongage_error: ongageError })
        }
        yield* Effect.logInfo("voluum conversions synced").pipe(
          Effect.annotateLogs({
            from: result.from,
            to: result.to,
            fetched,
            inserted,
            pushed,
            pushFailed,
            invalid: invalidPhones,
            otherCountries,
            ongage: ongageState
          })
        )
        if (ongageState === "failed") {
          yield* Effect.logWarning("ongage push stopped after a failed batch", ongageError)
        }
        return result
      })

      return ConversionsSync.of({ syncConversions })
    })
  )
}
