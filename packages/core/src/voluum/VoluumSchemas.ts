/**
 * What Voluum sends and what the client asks for (`docs/external-apis.md` "Voluum", `docs/original-api.md` "Voluum reports", "Conversions and the Ongage push"): the request column
 * lists, the row schemas, and Voluum's time formats.
 *
 * Rows are decoded BY FIELD NAME (the original read them by position in a DataFrame, so one extra key
 * shifted every column). The property names are Voluum's own (`customVariable1`, `Click2Reg`), so a
 * reader can grep both sides. Decoding is lenient, because Voluum's types drift between endpoints and
 * accounts: a metric may arrive as a number, a numeric string, null or not at all (→ `number | null`); a
 * text field may arrive as a number (→ its string) or be absent (→ null); `costSources` may be a list or
 * a string (→ a list of strings). Extra keys are ignored.
 */
import { Option, Schema, SchemaGetter } from "effect"
import { ValidationError } from "../platform/Errors.ts"

const toNumberOrNull = (u: unknown): number | null => {
  if (typeof u === "number") return Number.isFinite(u) ? u : null
  if (typeof u === "string") {
    const t = u.trim()
    if (t === "") return null
    const n = Number(t)
    return Number.isFinite(n) ? n : null
  }
  return null
}

const toStringOrNull = (u: unknown): string | null => {
  if (typeof u === "string") return u
  if (typeof u === "number" || typeof u === "boolean") return String(u)
  return null
}

const toStringList = (u: unknown): ReadonlyArray<string> => {
  if (u === null || u === undefined) return []
  if (Array.isArray(u))
    return u
      .filter((x) => x !== null && x !== undefined)
      .map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x)))
  const s = String(u).trim()
  return s === "" ? [] : [s]
}

/** A field that decodes anything (or nothing) with `f`. */
const lenient = <T>(to: Schema.Codec<T>, f: (u: unknown) => T) =>
  Schema.optionalKey(Schema.Unknown).pipe(
    Schema.decodeTo(to, {
      decode: SchemaGetter.transformOptional((o: Option.Option<unknown>) => Option.some(f(Option.getOrUndefined(o)))),
      encode: SchemaGetter.transformOptional((o: Option.Option<T>) => o)
    })
  )

/** A metric: number, numeric string, null or absent → `number | null`. */
export const LenientNumber = lenient(Schema.NullOr(Schema.Number), toNumberOrNull)
/** A text field: string, number or absent → `string | null`. */
export const LenientString = lenient(Schema.NullOr(Schema.String), toStringOrNull)
/** A list, a single string, or absent → a list of strings. */
export const LenientStringList = lenient(Schema.Array(Schema.String), toStringList)

// ---------------------------------------------------------------------------------------------------
// GET /report (`docs/original-api.md` "Voluum reports")

/** The original's grouping for the traffic-source report: one row per phone × IP × browser × OS version. */
export const REPORT_GROUP_BY = ["custom-variable-1", "ip", "browser-version", "os-version"] as const

/** The original's column list, in its order (sent as repeated `column=`). */
export const REPORT_COLUMNS = [
  "profit",
  "customVariable1",
  "visits",
  "uniqueVisits",
  "suspiciousVisitsPercentage",
  "campaignNoConversionsWarning",
  "conversions",
  "costSources",
  "cost",
  "revenue",
  "roi",
  "cv",
  "epv",
  "cpv",
  "errors",
  "Click2Reg",
  "Reg2FTD",
  "customConversions1",
  "customRevenue1",
  "customConversions2",
  "customRevenue2",
  "customConversions3",
  "customRevenue3",
  "osVersion",
  "browserVersion",
  "actions",
  "type",
  "clicks",
  "suspiciousClicksPercentage",
  "suspiciousVisits",
  "suspiciousClicks"
] as const

/** One row of the traffic-source report (`docs/original-api.md` "Voluum reports" lists the fields), mapped by name. */
export const ReportRow = Schema.Struct({
  customVariable1: LenientString,
  osVersion: LenientString,
  browserVersion: LenientString,
  ip: LenientString,
  visits: LenientNumber,
  uniqueVisits: LenientNumber,
  clicks: LenientNumber,
  conversions: LenientNumber,
  cost: LenientNumber,
  costSources: LenientStringList,
  revenue: LenientNumber,
  profit: LenientNumber,
  roi: LenientNumber,
  cv: LenientNumber,
  epv: LenientNumber,
  cpv: LenientNumber,
  errors: LenientNumber,
  Click2Reg: LenientNumber,
  Reg2FTD: LenientNumber,
  customConversions1: LenientNumber,
  customConversions2: LenientNumber,
  customConversions3: LenientNumber,
  customRevenue1: LenientNumber,
  customRevenue2: LenientNumber,
  customRevenue3: LenientNumber,
  suspiciousVisits: LenientNumber,
  suspiciousClicks: LenientNumber,
  suspiciousVisitsPercentage: LenientNumber,
  suspiciousClicksPercentage: LenientNumber
})
export type ReportRow = typeof ReportRow.Type

// ---------------------------------------------------------------------------------------------------
// GET /report/conversions (`docs/original-api.md` "Conversions and the Ongage push")

/** The original's column list for raw conversions, in its order. */
export const CONVERSION_COLUMNS = [
  "clickId",
  "transactionId",
  "visitTimestamp",
  "postbackTimestamp",
  "revenue",
  "cost",
  "profit",
  "campaignId",
  "campaignName",
  "offerId",
  "offerName",
  "landerId",
  "landerName",
  "flowId",
  "pathId",
  "trafficSourceId",
  "trafficSourceName",
  "conversionType",
  "conversionTypeId",
  "referrer",
  "affiliateNetworkId",
  "affiliateNetworkName",
  "countryCode",
  "countryName",
  "region",
  "city",
  "ip",
  "isp",
  "connectionType",
  "deviceName",
  "os",
  "osVersion",
  "browser",
  "browserVersion",
  "userAgent",
  "language",
  "status",
  "customVariable1",
  "customVariable2",
  "customVariable3",
  "customVariable4",
  "customVariable5",
  "customVariable6",
  "customVariable7",
  "customVariable8",
  "customVariable9",
  "customVariable10",
  "externalId",
  "externalIdType"
] as const

/**
 * One raw conversion, mapped by name. `postbackTimestamp` and `visitTimestamp` stay Voluum's strings
 * (`"2025-10-01 04:17:21 AM"`, in the requested `tz`); `parseVoluumTimestamp` reads them.
 */
export const ConversionRow = Schema.Struct({
  clickId: LenientString,
  transactionId: LenientString,
  postbackTimestamp: LenientString,
  visitTimestamp: LenientString,
  conversionType: LenientString,
  conversionTypeId: LenientString,
  conversions: LenientNumber,
  revenue: LenientNumber,
  cost: LenientNumber,
  profit: LenientNumber,
  campaignId: LenientString,
  campaignName: LenientString,
  offerId: LenientString,
  offerName: LenientString,
  landerId: LenientString,
  landerName: LenientString,
  flowId: LenientString,
  pathId: LenientString,
  trafficSourceId: LenientString,
  trafficSourceName: LenientString,
  affiliateNetworkId: LenientString,
  affiliateNetworkName: LenientString,
  referrer: LenientString,
  countryCode: LenientString,
  countryName: LenientString,
  region: LenientString,
  city: LenientString,
  ip: LenientString,
  isp: LenientString,
  mobileCarrier: LenientString,
  connectionType: LenientString,
  device: LenientString,
  deviceName: LenientString,
  brand: LenientString,
  model: LenientString,
  os: LenientString,
  osVersion: LenientString,
  browser: LenientString,
  browserVersion: LenientString,
  userAgent: LenientString,
  language: LenientString,
  status: LenientString,
  externalId: LenientString,
  externalIdType: LenientString,
  customVariable1: LenientString,
  customVariable2: LenientString,
  customVariable3: LenientString,
  customVariable4: LenientString,
  customVariable5: LenientString,
  customVariable6: LenientString,
  customVariable7: LenientString,
  customVariable8: LenientString,
  customVariable9: LenientString,
  customVariable10: LenientString
})
export type ConversionRow = typeof ConversionRow.Type

// ---------------------------------------------------------------------------------------------------
// Envelopes

/** One page of `/report` or `/report/conversions`; a missing `rows` is an empty page. */
export const reportPage = <S extends Schema.Top>(row: S) =>
  Schema.Struct({
    totalRows: LenientNumber,
    rows: Schema.optionalKey(Schema.Array(row))
  })

/** A campaign's totals over a window (`GET /report?filter1=campaign&limit=1`, its `totals`). */
export const CampaignTotals = Schema.Struct({
  visits: Schema.optionalKey(LenientNumber),
  uniqueVisits: Schema.optionalKey(LenientNumber),
  Click2Reg: Schema.optionalKey(LenientNumber),
  Reg2FTD: Schema.optionalKey(LenientNumber)
})
export type CampaignTotals = typeof CampaignTotals.Type

export const campaignTotalsPage = Schema.Struct({
  totals: Schema.optionalKey(Schema.NullOr(CampaignTotals))
})

/** `POST /auth/access/session` → the token and its expiry (`inaugural` is unused). */
export const SessionResponse = Schema.Struct({
  token: Schema.String.pipe(Schema.check(Schema.isMinLength(1))),
  expirationTimestamp: LenientString
})

// ---------------------------------------------------------------------------------------------------
// Time

/** `2025-05-01T14:00:00Z`: Voluum answers 400 to a `from`/`to` that is not on a whole hour. */
export const formatVoluumHour = (d: Date): string => `${d.toISOString().slice(0, 13)}:00:00Z`

export const isWholeHour = (d: Date): boolean => d.getTime() % 3_600_000 === 0

export const floorToHour = (d: Date): Date => new Date(Math.floor(d.getTime() / 3_600_000) * 3_600_000)

export const ceilToHour = (d: Date): Date => new Date(Math.ceil(d.getTime() / 3_600_000) * 3_600_000)

// An instant: a zone designator is required, because a bare "2025-05-01T00:00:00" would be read in the
// server's local zone by `Date`.
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})$/i

/** A `Date` or an ISO instant with a zone (`2025-05-01T00:00:00Z`), or a `ValidationError` naming the field. */
export const toInstant = (field: string, value: Date | string): Date | ValidationError => {
  if (value instanceof Date) {
    return Number.isNaN(value.getTime())
      ? new ValidationError({ message: `${field} is not a valid date`, field })
      : value
  }
  const d = INSTANT.test(value.trim()) ? new Date(value.trim()) : undefined
  if (d === undefined || Number.isNaN(d.getTime())) {
    return new ValidationError({
      message: `${field} must be an ISO date-time with a zone, like 2025-05-01T00:00:00Z; got "${value}"`,
      field
    })
  }
  return d
}

/** A `from`/`to` pair on whole hours, `from` before `to`; otherwise a `ValidationError` that names the field. */
export const hourWindow = (
  window: { readonly from: Date | string; readonly to: Date | string },
  fields: { readonly from: string; readonly to: string } = { from: "from", to: "to" }
): { readonly from: Date; readonly to: Date } | ValidationError => {
  const from = toInstant(fields.from, window.from)
  if (from instanceof ValidationError) return from
  const to = toInstant(fields.to, window.to)
  if (to instanceof ValidationError) return to
  for (const [field, d] of [
    [fields.from, from],
    [fields.to, to]
  ] as const) {
    if (!isWholeHour(d)) {
      return new ValidationError({
        message: `${field} must be on a whole hour (Voluum rejects anything else): got ${d.toISOString()}, use ${formatVoluumHour(floorToHour(d))} or ${formatVoluumHour(ceilToHour(d))}`,
        field
      })
    }
  }
  if (from.getTime() >= to.getTime()) {
    return new ValidationError({
      message: `${fields.from} (${formatVoluumHour(from)}) must be before ${fields.to} (${formatVoluumHour(to)})`,
      field: fields.from
    })
  }
  return { from, to }
}

const VOLUUM_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{1,2}):(\d{2}):(\d{2}) ([AP]M)$/i

/**
 * Reads Voluum's conversion timestamp (`"2025-10-01 04:17:21 AM"`, `%Y-%m-%d %I:%M:%S %p`) as a wall
 * clock in UTC — right when the report was asked with `tz=Etc/GMT`, as this client does by default.
 */
export const parseVoluumTimestamp = (s: string): Date | undefined => {
  const m = VOLUUM_TIMESTAMP.exec(s.trim())
  if (m === null) return undefined
  const [, y, mo, d, h, mi, se, ampm] = m
  let hour = Number(h)
  if (hour < 1 || hour > 12) return undefined
  if (ampm!.toUpperCase() === "AM") hour = hour === 12 ? 0 : hour
  else hour = hour === 12 ? 12 : hour + 12
  const date = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), hour, Number(mi), Number(se)))
  return Number.isNaN(date.getTime()) ? undefined : date
}

/** The inverse of `parseVoluumTimestamp`: a UTC instant as Voluum writes it. */
export const formatVoluumTimestamp = (d: Date): string => {
  const iso = d.toISOString()
  const h24 = d.getUTCHours()
  const h12 = h24 % 12 === 0 ? 12 : h24 % 12
  return `${iso.slice(0, 10)} ${String(h12).padStart(2, "0")}:${iso.slice(14, 19)} ${h24 < 12 ? "AM" : "PM"}`
}
