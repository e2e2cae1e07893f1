/**
 * `/find_records` (docs/original-api.md): the Voluum traffic-source history of one number, plus
 * the list it is on now.
 *
 * - Input: a phone in any format (`+44 7700 900123`, `07700 900123` is not enough without a
 *   country: numbers are read as international) or an encryption token (≥ 25 base64 characters,
 *   the original's rule, decrypted with `AES_KEY` / `AES_KEY_PREVIOUS`) — only for a caller that may
 *   see decrypted numbers (`mayDecrypt`: the HTTP API passes it for admins; a token from anyone else
 *   is `Forbidden`, since the answer would reveal the number). Both become the canonical
 *   key (E.164 digits without `+`) that every table stores. A value that is neither is looked up as
 *   typed, so it simply matches nothing; a token that does not decrypt is an error naming why. A
 *   value over `MAX_LOOKUP_CHARS` is refused before any parsing.
 * - Output: the original's `results` — every `api_voluum_ts_sources` row of the number as a
 *   positional array in the original's column order (the table's physical order; the added `id`,
 *   which comes last, is left out) — oldest first, plus `columns` naming each position, and the
 *   number's current `list` (`blacklist` | `whitelist` | `monitor` | null) and `reason`, with the
 *   same precedence as `Lists.explain`.
 * - One parameterised statement per request (rows and list in one round trip), read as value
 *   arrays: the original interpolated the value into its SQL. The statement's text is kept short
 *   (`t.*`, sliced): the driver keys its prepared statements by that text on every call.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { ListName } from "../lists/ListSchemas.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { toDatabaseError } from "../platform/Database.ts"
import { Forbidden, ValidationError, type DatabaseError, type NotConfigured } from "../platform/Errors.ts"
import { Encryption, type TokenError } from "../encryption/Encryption.ts"

/** `api_voluum_ts_sources`' columns in the original's order: the positions of each `results` row. */
export const TS_SOURCES_COLUMNS = [
  "click_2_reg",
  "reg_2_ftd",
  "browser_version",
  "custom_variable_1",
  "timestamp_created",
  "category",
  "cost",
  "conversions",
  "clicks",
  "cost_sources",
  "cpv",
  "custom_conversions_1",
  "custom_conversions_2",
  "custom_conversions_3",
  "custom_revenue_1",
  "custom_revenue_2",
  "custom_revenue_3",
  "cv",
  "epv",
  "errors",
  "profit",
  "revenue",
  "roi",
  "suspicious_clicks",
  "suspicious_clicks_percentage",
  "suspicious_visits",
  "suspicious_visits_percentage",
  "unique_visits",
  "visits",
  "ip",
  "os_version",
  "data_source"
] as const

export interface FoundRecords {
  /** One positional array per row, in `columns` order, oldest first. */
  readonly results: ReadonlyArray<ReadonlyArray<unknown>>
  readonly columns: ReadonlyArray<string>
  /** The list the number is on now, or null. */
  readonly list: ListName | null
  /** Why it is there (the whitelist has no reason). */
  readonly reason: string | null
}

/** Longer than any phone number or token (a token of a 15-digit number is ~50 characters). */
export const MAX_LOOKUP_CHARS = 256

export interface FindOptions {
  /** May a token be decrypted (the answer reveals its number)? Default true: the SDK's caller decides. */
  readonly mayDecrypt?: boolean
}

/** The original's token rule (length ≥ 25), narrowed to base64 text so that free text is not read as one. */
const TOKEN_LIKE = /^[A-Za-z0-9_+/-]{25,}={0,2}$/

/** Where `category` (NOT NULL) sits in a selected row: NULL there is the all-NULL row of a number without history. */
const CATEGORY_AT = 2 + TS_SOURCES_COLUMNS.indexOf("category")
/** `t.*` ends with the added `id` (and any column a later migration appends): the original's columns stop here. */
const ROW_END = 2 + TS_SOURCES_COLUMNS.length

/**
 * One row per history row (or one all-NULL row without history), each carrying the current list.
 * A constant text with one parameter rather than a template: the statement is not compiled again
 * for every request, and the driver's prepared-statement cache finds it by a string whose hash
 * V8 has already computed.
 */
const FIND_STATEMENT = `
  SELECT l.list, l.reason, t.*
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (
    SELECT 'blacklist' AS list, reason FROM blacklist WHERE custom_variable_1 = $1
    UNION ALL
    SELECT 'monitor', reason FROM monitor WHERE custom_variable_1 = $1
    UNION ALL
    SELECT 'whitelist', NULL FROM whitelist WHERE custom_variable_1 = $1
    LIMIT 1
  ) AS l ON true
  LEFT JOIN api_voluum_ts_sources AS t ON t.custom_variable_1 = $1
  ORDER BY t.timestamp_created, t.id`

export class Records extends Context.Service<
  Records,
  {
    readonly find: (
      phoneOrToken: string,
      options?: FindOptions
    ) => Effect.Effect<FoundRecords, ValidationError | Forbidden | TokenError | NotConfigured | DatabaseError>
  }
>()("@optimizer/core/records/Records") {
  static readonly layerNoDeps = Layer.effect(
    Records,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const encryption = yield* Encryption

      /** The key to look up: canonical when the value is a number, else the value as typed. */
      const keyOf = (
        value: string,
        mayDecrypt: boolean
      ): Effect.Effect<string, ValidationError | Forbidden | TokenError | NotConfigured> => {
        if (value.length > MAX_LOOKUP_CHARS) {
          return Effect.fail(
            new ValidationError({
              message: `phone_number: at most ${MAX_LOOKUP_CHARS} characters`,
              field: "phone_number"
            })
          )
        }
        const trimmed = value.trim()
        if (trimmed === "") {
          return Effect.fail(new ValidationError({ message: "phone_number is empty", field: "phone_number" }))
        }
        const isToken = TOKEN_LIKE.test(trimmed)
        if (isToken && !mayDecrypt) {
          return Effect.fail(
            new Forbidden({ message: "Looking a number up by its encryption token needs the admin role" })
          )
        }
        const plain = isToken ? encryption.decrypt(trimmed) : Effect.succeed(trimmed)
        return Effect.map(plain, (text) => {
          const parsed = normalizePhone(text)
          return parsed.ok ? parsed.e164 : text
        })
      }

      // Untraced: the endpoint serves thousands of requests a second, and `Effect.fn`'s span and
      // call-site stack capture cost more than the query's own processing (~70 → ~50 µs per call).
      const find = Effect.fnUntraced(function* (phoneOrToken: string, options?: FindOptions) {
        const key = yield* keyOf(phoneOrToken, options?.mayDecrypt ?? true)
        const rows = yield* sql.unsafe(FIND_STATEMENT, [key]).values.pipe(Effect.mapError(toDatabaseError))
        const first = rows[0]
        const results: Array<ReadonlyArray<unknown>> = []
        for (const row of rows) if (row[CATEGORY_AT] !== null) results.push(row.slice(2, ROW_END))
        return {
          results,
          columns: TS_SOURCES_COLUMNS,
          list: (first?.[0] ?? null) as ListName | null,
          reason: (first?.[1] ?? null) as string | null
        } satisfies FoundRecords
      })

      return Records.of({ find })
    })
  )

  static readonly layer = Records.layerNoDeps.pipe(Layer.provide(Encryption.layer))
}
