/**
 * Realistic Voluum data for the fakes: report rows and conversions shaped as Voluum returns them
 * (`docs/external-apis.md` "Voluum", `docs/original-api.md` "Voluum reports", "Conversions and the Ongage push"), and a classification scenario that exercises every
 * OS-version rule (`docs/original-api.md` "Classification"), phones in clear and as AES-GCM tokens made with the real
 * encryption, duplicate rows per phone and invalid custom variables.
 *
 *   fake.state.reportRows.push(...classificationScenario({ aesKey }).rows)
 *   fake.state.conversions.push({ at, trafficSourceId, fields: conversionRow({ at, conversionType: "FTD" }) })
 */
import { createHash } from "node:crypto"
import { Result } from "effect"
import { formatVoluumTimestamp, makeCipher, parseAesKey } from "@optimizer/core"
import type { SeededConversion, SeededReportRow } from "./voluum.ts"

/** The original's two traffic sources (`docs/original-api.md` "Voluum reports"). */
export const TRAFFIC_SOURCE_A = "61a5a37e-cf24-46cd-8a2f-038fd9c8d5f8"
export const TRAFFIC_SOURCE_B = "4b62c9a1-6c3e-434b-aa7a-fbdf721f7e89"

export type Category = "BLACKLIST" | "MONITOR" | "WHITELIST" | "UNKNOWN"

/** One OS-version string per classification rule and edge (`docs/original-api.md` "Classification"), with the expected category. */
export const OS_VERSION_CASES: ReadonlyArray<{
  readonly osVersion: string
  readonly category: Category
  readonly rule: string
}> = [
  { osVersion: "IOS 10.3", category: "BLACKLIST", rule: "1: IOS major <= 10" },
  { osVersion: "IOS 9", category: "BLACKLIST", rule: "1: IOS major <= 10" },
  { osVersion: "Android 7.1", category: "BLACKLIST", rule: "2: Android major <= 7" },
  { osVersion: "Android 4.4.2", category: "BLACKLIST", rule: "2: Android major <= 7" },
  { osVersion: "Windows 7", category: "BLACKLIST", rule: "3: Windows 7" },
  { osVersion: "Windows XP", category: "BLACKLIST", rule: "3: Windows XP" },
  { osVersion: "Ubuntu", category: "BLACKLIST", rule: "3: contains Ubuntu" },
  { osVersion: "Android 8.0", category: "MONITOR", rule: "4: Android 8" },
  { osVersion: "Android 9", category: "MONITOR", rule: "4: Android 9" },
  { osVersion: "Android", category: "MONITOR", rule: "4: Android without a version (9999)" },
  { osVersion: "Windows 10", category: "MONITOR", rule: "5: Windows 10" },
  { osVersion: "Windows 11", category: "MONITOR", rule: "5: Windows 11" },
  { osVersion: "Linux", category: "MONITOR", rule: "5: os Linux" },
  { osVersion: "Android 17", category: "MONITOR", rule: "6: Android major >= 17" },
  { osVersion: "IOS 18.7", category: "WHITELIST", rule: "7: IOS major >= 11" },
  { osVersion: "IOS 11.0", category: "WHITELIST", rule: "7: IOS major >= 11" },
  { osVersion: "IOS", category: "WHITELIST", rule: "7: IOS without a version (9999)" },
  { osVersion: "Mac OS X 10.15", category: "WHITELIST", rule: "8: contains Mac" },
  { osVersion: "MacOS 14.2", category: "WHITELIST", rule: "8: contains MacOS" },
  { osVersion: "Android 13", category: "WHITELIST", rule: "9: Android 10..16" },
  { osVersion: "Android 10", category: "WHITELIST", rule: "9: Android 10..16" },
  { osVersion: "Android 16.1", category: "WHITELIST", rule: "9: Android 10..16" },
  { osVersion: "Windows 8.1", category: "UNKNOWN", rule: "10: no rule" },
  { osVersion: "Chrome OS", category: "UNKNOWN", rule: "10: no rule" },
  { osVersion: "iOS 17", category: "UNKNOWN", rule: "10: lower-case iOS matches no rule" }
]

const sortedKeys = (row: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(
    Object.keys(row)
      .sort()
      .map((k) => [k, row[k]])
  )

/**
 * A `/report` row as Voluum returns it for the original's columns: the 29 fields of `docs/original-api.md` "Voluum reports",
 * keys ASCII-sorted. Overrides replace fields (or add new ones).
 */
export const reportRow = (overrides: Record<string, unknown> = {}): Record<string, unknown> => {
  const visits = typeof overrides["visits"] === "number" ? overrides["visits"] : 3
  const cost = 0.042 * visits
  const revenue = typeof overrides["revenue"] === "number" ? overrides["revenue"] : 0
  return sortedKeys({
    Click2Reg: 0,
    Reg2FTD: 0,
    browserVersion: "Chrome Mobile 124",
    clicks: Math.max(0, visits - 1),
    conversions: 0,
    cost,
    costSources: ["CAMPAIGN"],
    cpv: 0.042,
    customConversions1: 0,
    customConversions2: 0,
    customConversions3: 0,
    customRevenue1: 0,
    customRevenue2: 0,
    customRevenue3: 0,
    customVariable1: "447700900123",
    cv: 0,
    epv: revenue / visits,
    errors: 0,
    ip: "81.2.69.160",
    osVersion: "Android 13",
    profit: revenue - cost,
    revenue,
    roi: cost === 0 ? 0 : ((revenue - cost) / cost) * 100,
    suspiciousClicks: 0,
    suspiciousClicksPercentage: 0,
    suspiciousVisits: 0,
    suspiciousVisitsPercentage: 0,
    uniqueVisits: 1,
    visits,
    ...overrides
  })
}

/** The campaign naming convention the original reads the country from ("<name> - <country> - <code>"). */
export const campaignName = (country = "United Kingdom", n = 1) => `Marketing Services ${n} - ${country} - AB CC18`

/**
 * A `/report/conversions` row as Voluum returns it (`docs/original-api.md` "Conversions and the Ongage push" columns, plus `device` which
 * Voluum sends unasked), keys ASCII-sorted. `at` is the postback time (written `2025-10-01 04:17:21 AM`,
 * UTC); the visit is 7 minutes earlier. `conversionType` is "FTD" or "Reg"/"REG".
 */
export const conversionRow = (
  options: { readonly at: Date } & Record<string, unknown> = { at: new Date("2025-10-01T04:17:21Z") }
): Record<string, unknown> => {
  const { at, ...overrides } = options
  const ftd = (overrides["conversionType"] ?? "FTD") === "FTD"
  const revenue = ftd ? 35 : 0
  return sortedKeys({
    affiliateNetworkId: "9a1d1f52-3b1e-4c62-9f5e-0b7c4a1e2d11",
    affiliateNetworkName: "Casino Partners",
    browser: "Chrome Mobile",
    browserVersion: "Chrome Mobile 124",
    campaignId: "2213facf-7ebb-42b1-b1c5-eea60c5f9076",
    campaignName: campaignName(),
    city: "London",
    clickId: `c${at.getTime().toString(36).toUpperCase()}6JHQODRN70575OK6UG5`,
    connectionType: "MOBILE",
    conversionType: "FTD",
    conversionTypeId: ftd ? "ftd" : "reg",
    cost: 0.04,
    countryCode: "GB",
    countryName: "United Kingdom",
    customVariable1: "447700900123",
    customVariable10: "",
    customVariable2: "bc_20251001_chunk3",
    customVariable3: "mw-88121",
    customVariable4: "",
    customVariable5: "",
    customVariable6: "",
    customVariable7: "",
    customVariable8: "",
    customVariable9: "",
    device: "MOBILE",
    deviceName: "Mobile phone",
    externalId: "mw-88121",
    externalIdType: "CLICK_ID",
    flowId: "f4e0a6a2-5b4f-4a44-9d8e-3f3c1a2b9c77",
    ip: "81.2.69.160",
    isp: "EE",
    landerId: "5c2b8d1e-0f3a-4e7b-a1c9-6d4e2f8a0b33",
    landerName: "UK Lander 3",
    language: "en",
    offerId: "30b618d1-44fb-4455-91f5-3caeb309c17f",
    offerName: "Offer 1",
    os: "Android",
    osVersion: "Android 13",
    pathId: "8b7c6d5e-4f3a-4b2c-9d1e-0a9b8c7d6e5f",
    postbackTimestamp: formatVoluumTimestamp(at),
    profit: revenue - 0.04,
    referrer: "",
    region: "England",
    revenue,
    trafficSourceId: TRAFFIC_SOURCE_A,
    trafficSourceName: "MessageWhiz SMS",
    transactionId: `TX-${at.getTime() % 100_000}`,
    userAgent: "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
    visitTimestamp: formatVoluumTimestamp(new Date(at.getTime() - 7 * 60_000)),
    ...overrides
  })
}

// ---------------------------------------------------------------------------------------------------
// Phones as the original's Voluum custom variable 1 carries them: plain digits or AES-GCM tokens.

/** The test vectors' AES-256 key (bytes 0..31), as AES_KEY. */
export const TEST_AES_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/**
 * The token the product's encryption makes for a phone. Deterministic (the nonce is derived from the
 * phone) so seeded data is the same on every run; real tokens use random nonces.
 */
export const encryptPhone = (phone: string, aesKey: string = TEST_AES_KEY): string => {
  const key = parseAesKey(aesKey)
  if (Result.isFailure(key)) throw new Error(`test AES key ${key.failure}`)
  const nonce = createHash("sha256").update(`nonce:${phone}`).digest().subarray(0, 12)
  return makeCipher(key.success).encryptWithNonce(phone, nonce)
}

export interface ClassificationScenario {
  /** For `fake.state.reportRows` (traffic source A, inside 2025-05-01 unless told otherwise). */
  readonly rows: ReadonlyArray<SeededReportRow>
  /** Plain phone → the category the reports sync must give it (after decrypting, dropping, de-duplicating). */
  readonly expected: ReadonlyMap<string, Category>
  /** Phones whose only rows have uniqueVisits ≥ 2: the original discards them entirely (`docs/original-api.md` "Voluum reports"). */
  readonly droppedPhones: ReadonlyArray<string>
  /** cv1 values that are not phones: dropped. */
  readonly invalidValues: ReadonlyArray<string>
}

/**
 * Report rows covering every classification rule once (`OS_VERSION_CASES`, phones 4477009001NN, every
 * other one encrypted), duplicate rows per phone with uniqueVisits 0, 1 and 2+, and invalid cv1 values.
 */
export const classificationScenario = (
  options: { readonly aesKey?: string; readonly trafficSourceId?: string; readonly at?: Date } = {}
): ClassificationScenario => {
  const at = options.at ?? new Date("2025-05-01T10:00:00Z")
  const trafficSourceId = options.trafficSourceId ?? TRAFFIC_SOURCE_A
  const token = (phone: string) => encryptPhone(phone, options.aesKey)
  const rows: Array<SeededReportRow> = []
  const expected = new Map<string, Category>()
  const add = (cv1: string, osVersion: string, uniqueVisits: number, ip: string) =>
    rows.push({
      trafficSourceId,
      at,
      fields: reportRow({ customVariable1: cv1, osVersion, uniqueVisits, visits: uniqueVisits + 2, ip })
    })

  OS_VERSION_CASES.forEach(({ osVersion, category }, i) => {
    const phone = `4477009001${String(i).padStart(2, "0")}`
    add(i % 2 === 0 ? phone : token(phone), osVersion, 1, `10.0.${i}.1`)
    expected.set(phone, category)
  })

  // A unique visit (1) wins over a repeat (0); rows with 2+ are discarded.
  add("447700900201", "Android 8.0", 0, "10.2.1.1")
  add(token("447700900201"), "IOS 18.7", 1, "10.2.1.2")
  add("447700900201", "Windows 7", 2, "10.2.1.3")
  expected.set("447700900201", "WHITELIST")
  // Only repeats: the first is kept (same OS, so the category does not depend on which).
  add("447700900202", "Android 13", 0, "10.2.2.1")
  add(token("447700900202"), "Android 13", 0, "10.2.2.2")
  expected.set("447700900202", "WHITELIST")
  // Only 2+: gone.
  add("447700900203", "Android 7.1", 2, "10.2.3.1")
  add("447700900203", "IOS 9", 3, "10.2.3.2")
  // The unique visit's OS decides even when a repeat looks better.
  add("447700900204", "Windows 10", 1, "10.2.4.1")
  add("447700900204", "IOS 18.7", 0, "10.2.4.2")
  expected.set("447700900204", "MONITOR")

  const invalidValues = ["{{phoneNumber}}", ""]
  invalidValues.forEach((cv1, i) => add(cv1, "IOS 18.7", 1, `10.3.${i}.1`))

  return { rows, expected, droppedPhones: ["447700900203"], invalidValues }
}

export interface ExpectedConversion {
  readonly clickId: string
  /** The plain phone, or null when cv1 is not one. */
  readonly phone: string | null
  /** From the campaign name's second segment; "DEF" when unknown (`docs/original-api.md` "Conversions and the Ongage push"). */
  readonly countryCode: string
  readonly conversionType: "FTD" | "REG"
}

/**
 * Conversions of one day (2025-10-01, UTC): GB FTD and REG (plain and encrypted phones), a French
 * FTD, an unknown country, an un-substituted `{{phoneNumber}}` and an empty cv1; postback times on
 * both sides of noon and midnight (`12:30:00 AM`, `12:05:00 PM`).
 */
export const conversionScenario = (
  options: { readonly aesKey?: string; readonly trafficSourceId?: string } = {}
): { readonly conversions: ReadonlyArray<SeededConversion>; readonly expected: ReadonlyArray<ExpectedConversion> } => {
  const trafficSourceId = options.trafficSourceId ?? TRAFFIC_SOURCE_A
  const cases: ReadonlyArray<{
    at: string
    cv1: string
    phone: string | null
    country: string
    countryCode: string
    type: "FTD" | "Reg" | "REG"
  }> = [
    {
      at: "2025-10-01T00:30:00Z",
      cv1: "447700900401",
      phone: "447700900401",
      country: "United Kingdom",
      countryCode: "GB",
      type: "FTD"
    },
    {
      at: "2025-10-01T04:17:21Z",
      cv1: encryptPhone("447700900402", options.aesKey),
      phone: "447700900402",
      country: "United Kingdom",
      countryCode: "GB",
      type: "Reg"
    },
    {
      at: "2025-10-01T12:05:00Z",
      cv1: "447700900403",
      phone: "447700900403",
      country: "United Kingdom",
      countryCode: "GB",
      type: "REG"
    },
    {
      at: "2025-10-01T13:45:10Z",
      cv1: encryptPhone("33612345678", options.aesKey),
      phone: "33612345678",
      country: "France",
      countryCode: "FR",
      type: "FTD"
    },
    {
      at: "2025-10-01T15:00:00Z",
      cv1: "447700900405",
      phone: "447700900405",
      country: "Atlantis",
      countryCode: "DEF",
      type: "Reg"
    },
    {
      at: "2025-10-01T18:20:00Z",
      cv1: "{{phoneNumber}}",
      phone: null,
      country: "United Kingdom",
      countryCode: "GB",
      type: "Reg"
    },
    { at: "2025-10-01T23:59:59Z", cv1: "", phone: null, country: "United Kingdom", countryCode: "GB", type: "FTD" }
  ]
  const conversions: Array<SeededConversion> = []
  const expected: Array<ExpectedConversion> = []
  cases.forEach((c, i) => {
    const at = new Date(c.at)
    const clickId = `CLK${String(i + 1).padStart(3, "0")}OPTIMIZERTESTCLICK`
    conversions.push({
      at,
      trafficSourceId,
      fields: conversionRow({
        at,
        clickId,
        transactionId: `TX-${i + 1}`,
        customVariable1: c.cv1,
        campaignName: campaignName(c.country, i + 1),
        conversionType: c.type,
        conversionTypeId: c.type.toLowerCase()
      })
    })
    expected.push({
      clickId,
      phone: c.phone,
      countryCode: c.countryCode,
      conversionType: c.type === "FTD" ? "FTD" : "REG"
    })
  })
  return { conversions, expected }
}
