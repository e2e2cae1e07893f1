/**
 * The rows of the conversions sync: the values derived from a Voluum conversion (country, type,
 * generated email, source, times; the original's rules are in `docs/original-api.md`, "Conversions
 * and the Ongage push", what differs here in `docs/voluum.md`) and the `api_voluum_conversions` row
 * built from them, custom variable 1 decrypted and normalised.
 */
import { Effect } from "effect"
import { decryptTokensAmong, type Encryption } from "../encryption/Encryption.ts"
import type { NotConfigured } from "../platform/Errors.ts"
import { countryCodeByName } from "../phone/CallingCodes.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { parseVoluumTimestamp, type ConversionRow } from "./VoluumSchemas.ts"

/** The original's country code when the campaign name says nothing usable. */
export const DEFAULT_COUNTRY = "DEF"

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
export interface ConversionInsert {
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

/** A conversion's identity, as the table's unique key `(click_id, transaction_id, conversion_type)`. */
export const keyOf = (clickId: string | null, transactionId: string | null, type: string): string =>
  `${clickId ?? "\u0000"}\u0001${transactionId ?? "\u0000"}\u0001${type}`

/** The row of a fetched conversion: `phone` its canonical key (or null), `cv1` what custom variable 1 stores. */
export const insertRow = (
  row: ConversionRow,
  phone: string | null,
  cv1: string | null,
  domain: string
): ConversionInsert => {
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

/**
 * The rows of fetched conversions. The tokens among the custom variables 1 are decrypted in one
 * call; a token no key opens is stored as received and counted in `undecryptable`, and so is a
 * value that is not a phone number (without the count).
 */
export const conversionRecords = (
  encryption: Encryption["Service"],
  rows: ReadonlyArray<ConversionRow>,
  emailDomain: string
): Effect.Effect<{ readonly records: Array<ConversionInsert>; readonly undecryptable: number }, NotConfigured> =>
  Effect.gen(function* () {
    const { values, undecrypted } = yield* decryptTokensAmong(
      encryption,
      rows.map((r) => (r.customVariable1 ?? "").trim())
    )
    const records = rows.map((row, i) => {
      const value = values[i]!
      const parsed = undecrypted.has(i) ? undefined : normalizePhone(value)
      const phone = parsed?.ok === true ? parsed.e164 : null
      return insertRow(row, phone, phone ?? (value === "" ? null : value), emailDomain)
    })
    return { records, undecryptable: undecrypted.size }
  })
