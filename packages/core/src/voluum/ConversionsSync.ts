/**
 * The Voluum conversions sync and the Ongage push (ORIGINAL.md §1.3 item 4, §5; SPEC.md §4.7).
 *
 * 1. Fetch Voluum's raw conversions of the window (all traffic sources, as the original), rows by name.
 * 2. Derive, per row (ORIGINAL.md §5.2):
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
 * Contacts carry the original's fields (ORIGINAL.md §5.4), dates written as Voluum writes them
 * (`2025-10-01 04:17:21 AM`, UTC).
 */
import { Array as Arr, Context, Effect, Layer, Result, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { Encryption, isEncryptedToken, type TokenError } from "../encryption/Encryption.ts"
import { OngageClient, type OngageContact } from "../ongage/OngageClient.ts"
import { countryCodeByName } from "../phone/CallingCodes.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { AppConfig, requireIntegration } from "../platform/Config.ts"
import { toDatabaseError } from "../platform/Database.ts"
import { ValidationError, type DatabaseError, type NotConfigured, type UpstreamError } from "../platform/Errors.ts"
import { utcWindow, type SyncWindow } from "./ReportsSync.ts"
import { VoluumClient } from "./VoluumClient.ts"
import {
  formatVoluumHour,
  formatVoluumTimestamp,
  hourWindow,
  parseVoluumTimestamp,
  type ConversionRow
} from "./VoluumSchemas.ts"

export const INVALID_PHONE_NUMBER = "INVALID_PHONE_NUMBER"
export const COUNTRY_NOT_PUSHED = "COUNTRY_NOT_PUSHED"
/** Prefix of the error of a contact Ongage rejected (`ONGAGE_REJECTED: <Ongage's reason>`). */
export const ONGAGE_REJECTED = "ONGAGE_REJECTED"
/** Prefix of the error of a batch Ongage did not answer (`ONGAGE_FAILED: <message>`). */
export const ONGAGE_FAILED = "ONGAGE_FAILED"
/** A row Ongage failed this many times is not sent again by a sync (it keeps its error). */
export const MAX_PUSH_ATTEMPTS = 5
/** Contacts per Ongage request (the original's). */
export const ONGAGE_BATCH_SIZE = 500
/** The original's country code when the campaign name says nothing usable. */
export const DEFAULT_COUNTRY = "DEF"

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

// ---------------------------------------------------------------------------------------------
// Derived values (ORIGINAL.md §5.2).

/** The campaign name's second `" - "` segment, as the original read it. */
export const campaignCountryName = (campaignName: string | null): string | undefined => {
  if (campaignName === null) return undefined
  const parts = campaignName.split(" - ")
  return parts.length >= 2 ? parts[1] : undefined
}

/** The country of a conversion: campaign name first, then Voluum's `countryCode`, then `DEF`. */
export const conversionCountry = (campaignName: string | null, voluumCountryCode: string | null): string => {
  const name = campaignCountryName(campaignName)
  const byName = name === undefined ? undefined : (countryCodeByName(name) ?? countryCodeByName(name.trim()))
  if (byName !== undefined) return byName
  const code = voluumCountryCode?.trim().toUpperCase()
  return code !== undefined && /^[A-Z]{2}$/.test(code) ? code : DEFAULT_COUNTRY
}

export const conversionType = (voluumType: string | null): "FTD" | "REG" =>
  voluumType?.trim().toUpperCase() === "FTD" ? "FTD" : "REG"

export const generatedEmail = (phone: string, domain: string): string => `+${phone}@${domain}`

// ---------------------------------------------------------------------------------------------
// Rows.

const ISO_LIKE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?$/

/** Voluum's `2025-10-01 04:17:21 AM` (UTC, as asked), or an ISO-like time (UTC when it has no zone). */
export const conversionTime = (value: string | null): Date | null => {
  if (value === null) return null
  const voluum = parseVoluumTimestamp(value)
  if (voluum !== undefined) return voluum
  const m = ISO_LIKE.exec(value.trim())
  if (m === null) return null
  const d = new Date(`${m[1]}T${m[2]}${m[3] ?? "Z"}`)
  return Number.isNaN(d.getTime()) ? null : d
}

/** A row of api_voluum_conversions as inserted (column names). */
interface ConversionInsert {
  readonly click_id: string | null
  readonly postback_timestamp: Date | null
  readonly processed: boolean
  readonly retry_count: number
  readonly generated_email: string | null
  readonly custom_variable_1: string | null
  readonly conversion_type: "FTD" | "REG"
  readonly country_code: string
  readonly source: string
  readonly visit_timestamp: Date | null
  readonly transaction_id: string | null
  readonly [column: string]: unknown
}

const keyOf = (clickId: string | null, transactionId: string | null, type: string): string =>
  `${clickId ?? "\u0000"}\u0001${transactionId ?? "\u0000"}\u0001${type}`

const insertRow = (row: ConversionRow, phone: string | null, cv1: string | null, domain: string): ConversionInsert => {
  const type = conversionType(row.conversionType)
  const country = conversionCountry(row.campaignName, row.countryCode)
  return {
    click_id: row.clickId,
    postback_timestamp: conversionTime(row.postbackTimestamp),
    processed: false,
    retry_count: 0,
    generated_email: phone === null ? null : generatedEmail(phone, domain),
    custom_variable_1: cv1,
    affiliate_network_id: row.affiliateNetworkId,
    affiliate_network_name: row.affiliateNetworkName,
    browser: row.browser,
    browser_version: row.browserVersion,
    campaign_id: row.campaignId,
    campaign_name: row.campaignName,
    city: row.city,
    connection_type: row.connectionType,
    conversion_type: type,
    conversion_type_id: row.conversionTypeId,
    cost: row.cost,
    country_code: country,
    country_name: row.countryName,
    custom_variable_2: row.customVariable2,
    custom_variable_3: row.customVariable3,
    custom_variable_4: row.customVariable4,
    custom_variable_5: row.customVariable5,
    custom_variable_6: row.customVariable6,
    custom_variable_7: row.customVariable7,
    custom_variable_8: row.customVariable8,
    custom_variable_9: row.customVariable9,
    custom_variable_10: row.customVariable10,
    device: row.device,
    device_name: row.deviceName,
    external_id: row.externalId,
    external_id_type: row.externalIdType,
    flow_id: row.flowId,
    ip: row.ip,
    isp: row.isp,
    lander_id: row.landerId,
    lander_name: row.landerName,
    language: row.language,
    offer_id: row.offerId,
    offer_name: row.offerName,
    os: row.os,
    os_version: row.osVersion,
    path_id: row.pathId,
    profit: row.profit,
    referrer: row.referrer,
    region: row.region,
    revenue: row.revenue,
    traffic_source_id: row.trafficSourceId,
    traffic_source_name: row.trafficSourceName,
    transaction_id: row.transactionId,
    user_agent: row.userAgent,
    visit_timestamp: conversionTime(row.visitTimestamp),
    source: `${country}_${type}`
  }
}

/** What the push reads of a stored conversion. */
interface StoredConversion {
  readonly id: string
  readonly click_id: string | null
  readonly transaction_id: string | null
  readonly conversion_type: "FTD" | "REG"
  readonly generated_email: string | null
  readonly custom_variable_1: string | null
  readonly custom_variable_2: string | null
  readonly custom_variable_3: string | null
  readonly campaign_id: string | null
  readonly campaign_name: string | null
  readonly offer_id: string | null
  readonly offer_name: string | null
  readonly lander_name: string | null
  readonly traffic_source_id: string | null
  readonly traffic_source_name: string | null
  readonly device: string | null
  readonly os: string | null
  readonly browser: string | null
  readonly revenue: number | null
  readonly external_id: string | null
  readonly country_code: string | null
  readonly country_name: string | null
  readonly ip: string | null
  readonly language: string | null
  readonly source: string | null
  readonly postback_timestamp: Date | null
  readonly visit_timestamp: Date | null
}

const STORED_COLUMNS = `id::text AS id, click_id, transaction_id, conversion_type, generated_email, custom_variable_1,
  custom_variable_2, custom_variable_3, campaign_id, campaign_name, offer_id, offer_name, lander_name,
  traffic_source_id, traffic_source_name, device, os, browser, revenue, external_id, country_code, country_name,
  ip, language, source, postback_timestamp, visit_timestamp`

const voluumTime = (d: Date | null): string => (d === null ? "" : formatVoluumTimestamp(d))

/** The Ongage contact of a conversion: the original's fields (ORIGINAL.md §5.4). */
export const contactOf = (c: StoredConversion): OngageContact => {
  const ftd = c.conversion_type === "FTD"
  const date = voluumTime(c.postback_timestamp)
  return {
    email: c.generated_email!,
    overwrite: true,
    fields: {
      mobile: c.custom_variable_1,
      country: campaignCountryName(c.campaign_name) ?? c.country_name ?? "",
      ip: c.ip ?? "",
      language: c.language ?? "",
      source: c.source ?? `${c.country_code}_${c.conversion_type}`,
      conversion_type: c.conversion_type,
      is_ftd: ftd ? "true" : "false",
      click_id: c.click_id ?? "",
      campaign_name: c.campaign_name ?? "",
      campaign_id: c.campaign_id ?? "",
      offer_name: c.offer_name ?? "",
      lander_name: c.lander_name ?? "",
      traffic_source_id: c.traffic_source_id ?? "",
      traffic_source_name: c.traffic_source_name ?? "",
      transaction_id: c.transaction_id ?? "",
      device_type: c.device ?? "",
      os: c.os ?? "",
      browser: c.browser ?? "",
      revenue: ftd ? (c.revenue ?? "") : "",
      currency: "",
      external_id: c.external_id ?? "",
      custom_var_1: c.custom_variable_1 ?? "",
      custom_var_2: c.custom_variable_2 ?? "",
      custom_var_3: c.custom_variable_3 ?? "",
      offer_id: c.offer_id ?? "",
      country_code: c.country_code ?? "",
      conversion_date: date,
      registration_date: ftd ? "" : date,
      ftd_date: ftd ? date : "",
      visit_timestamp: voluumTime(c.visit_timestamp)
    }
  }
}

/** Rows inserted per statement (≈ 58 parameters each). */
const INSERT_ROWS = 500
/** Fetched rows decrypted and normalised per step. */
const CHUNK_ROWS = 2_000

const oneLine = (message: string) => message.replace(/\s+/g, " ").slice(0, 500)

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

      /** Rows of the fetched keys that still need the push step. */
      const pushCandidates = (clickIds: ReadonlyArray<string>, keys: ReadonlySet<string>) =>
        Effect.gen(function* () {
          const found: Array<StoredConversion> = []
          for (let i = 0; i < clickIds.length; i += 5_000) {
            const rows = yield* db(
              sql.unsafe<StoredConversion>(
                `SELECT ${STORED_COLUMNS} FROM api_voluum_conversions
                 WHERE click_id = ANY($1::text[]) AND processed = false
                   AND (error_message IS NULL OR (error_message LIKE $2 AND retry_count < $3))
                 ORDER BY postback_timestamp NULLS FIRST, id`,
                [clickIds.slice(i, i + 5_000), "ONGAGE\\_%", MAX_PUSH_ATTEMPTS]
              )
            )
            for (const r of rows) if (keys.has(keyOf(r.click_id, r.transaction_id, r.conversion_type))) found.push(r)
          }
          // Conversions without a click id cannot be looked up by it: the push skips them (none seen in practice).
          return found
        })

      const markSkipped = (ids: ReadonlyArray<string>, reason: string) =>
        ids.length === 0
          ? Effect.succeed(0)
          : db(
              sql<{ id: string }>`
                UPDATE api_voluum_conversions SET error_message = ${reason}, last_retry_at = now()
                WHERE id = ANY(${ids}::uuid[]) AND processed = false
                RETURNING id::text AS id`
            ).pipe(Effect.map((rows) => rows.length))

      const markPushed = (ids: ReadonlyArray<string>) =>
        ids.length === 0
          ? Effect.succeed(0)
          : db(
              sql<{ id: string }>`
                UPDATE api_voluum_conversions
                SET processed = true, processed_at = now(), error_message = NULL, retry_count = 0, last_retry_at = NULL
                WHERE id = ANY(${ids}::uuid[])
                RETURNING id::text AS id`
            ).pipe(Effect.map((rows) => rows.length))

      const markFailed = (failures: ReadonlyArray<{ readonly id: string; readonly error: string }>) =>
        failures.length === 0
          ? Effect.succeed(0)
          : db(
              sql<{ id: string }>`
                UPDATE api_voluum_conversions c
                SET error_message = f.error, retry_count = c.retry_count + 1, last_retry_at = now()
                FROM unnest(${failures.map((f) => f.id)}::uuid[], ${failures.map((f) => f.error)}::text[]) AS f(id, error)
                WHERE c.id = f.id
                RETURNING c.id::text AS id`
            ).pipe(Effect.map((rows) => rows.length))

      /**
       * One batch: claim the rows still pushable (another sync may have taken some), send one contact
       * per email, mark the rows by the outcome — all in one transaction.
       */
      const pushBatch = (ids: ReadonlyArray<string>) =>
        sql
          .withTransaction(
            Effect.gen(function* () {
              const claimed = yield* db(
                sql.unsafe<StoredConversion>(
                  `SELECT ${STORED_COLUMNS} FROM api_voluum_conversions
                   WHERE id = ANY($1::uuid[]) AND processed = false
                     AND (error_message IS NULL OR (error_message LIKE $2 AND retry_count < $3))
                   ORDER BY postback_timestamp NULLS FIRST, id
                   FOR UPDATE SKIP LOCKED`,
                  [ids, "ONGAGE\\_%", MAX_PUSH_ATTEMPTS]
                )
              )
              if (claimed.length === 0) return { pushed: 0, failed: 0, batchError: undefined }
              // One contact per email: the latest conversion (rows are in postback order).
              const byEmail = new Map<string, { contact: OngageContact; ids: Array<string> }>()
              for (const row of claimed) {
                const email = row.generated_email!.toLowerCase()
                const entry = byEmail.get(email)
                if (entry === undefined) byEmail.set(email, { contact: contactOf(row), ids: [row.id] })
                else {
                  entry.contact = contactOf(row)
                  entry.ids.push(row.id)
                }
              }
              const contacts = [...byEmail.values()].map((e) => e.contact)
              const outcome = yield* Effect.result(ongage.upsertContacts(contacts))
              if (Result.isFailure(outcome)) {
                const error = `${ONGAGE_FAILED}: ${oneLine(outcome.failure.message)}`
                const failed = yield* markFailed(claimed.map((r) => ({ id: r.id, error })))
                return { pushed: 0, failed, batchError: outcome.failure.message }
              }
              const pushedIds: Array<string> = []
              for (const email of outcome.success.succeeded) {
                pushedIds.push(...(byEmail.get(email.toLowerCase())?.ids ?? []))
              }
              const failures: Array<{ id: string; error: string }> = []
              for (const { email, reason } of outcome.success.failed) {
                for (const id of byEmail.get(email.toLowerCase())?.ids ?? []) {
                  failures.push({ id, error: `${ONGAGE_REJECTED}: ${oneLine(reason)}` })
                }
              }
              const pushed = yield* markPushed(pushedIds)
              const failed = yield* markFailed(failures)
              return { pushed, failed, batchError: undefined as string | undefined }
            })
          )
          .pipe(Effect.mapError((e) => (e._tag === "SqlError" ? toDatabaseError(e) : e)))

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
            const values = rows.map((r) => (r.customVariable1 ?? "").trim())
            const tokenSlots: Array<number> = []
            values.forEach((v, i) => {
              if (isEncryptedToken(v)) tokenSlots.push(i)
            })
            const decrypted: ReadonlyArray<Result.Result<string, TokenError>> =
              tokenSlots.length === 0 ? [] : yield* encryption.decryptMany(tokenSlots.map((i) => values[i]!))
            const undecrypted = new Set<number>()
            tokenSlots.forEach((slot, k) => {
              const outcome = decrypted[k]!
              if (Result.isSuccess(outcome)) values[slot] = outcome.success.trim()
              else undecrypted.add(slot)
            })
            undecryptable += undecrypted.size
            const records = rows.map((row, i) => {
              const value = values[i]!
              const parsed = undecrypted.has(i) ? undefined : normalizePhone(value)
              const phone = parsed?.ok === true ? parsed.e164 : null
              const record = insertRow(row, phone, phone ?? (value === "" ? null : value), settings.ongageEmailDomain)
              keys.add(keyOf(record.click_id, record.transaction_id, record.conversion_type))
              if (record.click_id !== null) clickIds.add(record.click_id)
              return record
            })
            for (let i = 0; i < records.length; i += INSERT_ROWS) {
              const slice = records.slice(i, i + INSERT_ROWS)
              if (!Arr.isReadonlyArrayNonEmpty(slice)) break // never: i < records.length
              const rowsInserted = yield* db(
                sql<{ id: string }>`
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
