/**
 * The Ongage forwarding of stored conversions: which rows still need the push, the contact of a
 * row, and the push in batches — each batch claimed (`FOR UPDATE SKIP LOCKED`), sent and marked by
 * its own outcome in one transaction. What the rows are marked with is listed in `ConversionsSync.ts`.
 */
import { Effect, Result, Schema } from "effect"
import type { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type { OngageClient, OngageContact } from "../ongage/OngageClient.ts"
import { decodeRows, toDatabaseError } from "../platform/Database.ts"
import type { DatabaseError } from "../platform/Errors.ts"
import { campaignCountryName, keyOf } from "./ConversionRows.ts"
import { formatVoluumTimestamp } from "./VoluumSchemas.ts"

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
/** What the push reads of a stored conversion. */
export const StoredConversion = Schema.Struct({
  id: Schema.String,
  click_id: Schema.NullOr(Schema.String),
  transaction_id: Schema.NullOr(Schema.String),
  conversion_type: Schema.Literals(["FTD", "REG"]),
  generated_email: Schema.NullOr(Schema.String),
  custom_variable_1: Schema.NullOr(Schema.String),
  custom_variable_2: Schema.NullOr(Schema.String),
  custom_variable_3: Schema.NullOr(Schema.String),
  campaign_id: Schema.NullOr(Schema.String),
  campaign_name: Schema.NullOr(Schema.String),
  offer_id: Schema.NullOr(Schema.String),
  offer_name: Schema.NullOr(Schema.String),
  lander_name: Schema.NullOr(Schema.String),
  traffic_source_id: Schema.NullOr(Schema.String),
  traffic_source_name: Schema.NullOr(Schema.String),
  device: Schema.NullOr(Schema.String),
  os: Schema.NullOr(Schema.String),
  browser: Schema.NullOr(Schema.String),
  revenue: Schema.NullOr(Schema.Number),
  external_id: Schema.NullOr(Schema.String),
  country_code: Schema.NullOr(Schema.String),
  country_name: Schema.NullOr(Schema.String),
  ip: Schema.NullOr(Schema.String),
  language: Schema.NullOr(Schema.String),
  source: Schema.NullOr(Schema.String),
  postback_timestamp: Schema.NullOr(Schema.Date),
  visit_timestamp: Schema.NullOr(Schema.Date)
})
export type StoredConversion = typeof StoredConversion.Type

const STORED_COLUMNS = `id::text AS id, click_id, transaction_id, conversion_type, generated_email, custom_variable_1,
  custom_variable_2, custom_variable_3, campaign_id, campaign_name, offer_id, offer_name, lander_name,
  traffic_source_id, traffic_source_name, device, os, browser, revenue, external_id, country_code, country_name,
  ip, language, source, postback_timestamp, visit_timestamp`

const voluumTime = (d: Date | null): string => (d === null ? "" : formatVoluumTimestamp(d))

/**
 * The Ongage contact of a conversion: the original's fields (`docs/original-api.md`, "Conversions and
 * the Ongage push"), dates written as Voluum writes them (`2025-10-01 04:17:21 AM`, UTC).
 */
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

const oneLine = (message: string) => message.replace(/\s+/g, " ").slice(0, 500)

/** What one batch did. */
export interface BatchPushed {
  readonly pushed: number
  readonly failed: number
  /** Set when Ongage failed the whole batch: the push stops there. */
  readonly batchError: string | undefined
}

/** The push's statements on the app's SQL client and Ongage client. */
export const makeOngagePush = (sql: SqlClient.SqlClient, ongage: OngageClient["Service"]) => {
  const db = <A>(effect: Effect.Effect<A, SqlError>) => Effect.mapError(effect, toDatabaseError)

  /** Rows of the fetched keys that still need the push step. */
  const pushCandidates = (clickIds: ReadonlyArray<string>, keys: ReadonlySet<string>) =>
    Effect.gen(function* () {
      const found: Array<StoredConversion> = []
      for (let i = 0; i < clickIds.length; i += 5_000) {
        const rows = yield* sql
          .unsafe(
            `SELECT ${STORED_COLUMNS} FROM api_voluum_conversions
                 WHERE click_id = ANY($1::text[]) AND processed = false
                   AND (error_message IS NULL OR (error_message LIKE $2 AND retry_count < $3))
                 ORDER BY postback_timestamp NULLS FIRST, id`,
            [clickIds.slice(i, i + 5_000), "ONGAGE\\_%", MAX_PUSH_ATTEMPTS]
          )
          .pipe(decodeRows(StoredConversion))
        for (const r of rows) if (keys.has(keyOf(r.click_id, r.transaction_id, r.conversion_type))) found.push(r)
      }
      // Conversions without a click id cannot be looked up by it: the push skips them (none seen in practice).
      return found
    })

  const markSkipped = (ids: ReadonlyArray<string>, reason: string) =>
    ids.length === 0
      ? Effect.succeed(0)
      : db(
          sql`
                UPDATE api_voluum_conversions SET error_message = ${reason}, last_retry_at = now()
                WHERE id = ANY(${ids}::uuid[]) AND processed = false
                RETURNING id::text AS id`
        ).pipe(Effect.map((rows) => rows.length))

  const markPushed = (ids: ReadonlyArray<string>) =>
    ids.length === 0
      ? Effect.succeed(0)
      : db(
          sql`
                UPDATE api_voluum_conversions
                SET processed = true, processed_at = now(), error_message = NULL, retry_count = 0, last_retry_at = NULL
                WHERE id = ANY(${ids}::uuid[])
                RETURNING id::text AS id`
        ).pipe(Effect.map((rows) => rows.length))

  const markFailed = (failures: ReadonlyArray<{ readonly id: string; readonly error: string }>) =>
    failures.length === 0
      ? Effect.succeed(0)
      : db(
          sql`
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
  const pushBatch = (ids: ReadonlyArray<string>): Effect.Effect<BatchPushed, DatabaseError> =>
    sql
      .withTransaction(
        Effect.gen(function* () {
          const claimed = yield* sql
            .unsafe(
              `SELECT ${STORED_COLUMNS} FROM api_voluum_conversions
                   WHERE id = ANY($1::uuid[]) AND processed = false
                     AND (error_message IS NULL OR (error_message LIKE $2 AND retry_count < $3))
                   ORDER BY postback_timestamp NULLS FIRST, id
                   FOR UPDATE SKIP LOCKED`,
              [ids, "ONGAGE\\_%", MAX_PUSH_ATTEMPTS]
            )
            .pipe(decodeRows(StoredConversion))
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
          return { pushed, failed, batchError: undefined }
        })
      )
      .pipe(Effect.mapError((e) => (e._tag === "SqlError" ? toDatabaseError(e) : e)))

  return { pushCandidates, markSkipped, pushBatch }
}
