/**
 * Phone numbers → the one canonical key of the product: E.164 digits without `+` (`447700900123`),
 * `docs/lists.md` "Phone numbers". The original kept `+` in manual imports and bare digits from Voluum (`docs/original-api.md`
 * "Lists"), so the same phone had two keys and lookups missed.
 *
 * What is accepted (after a BOM, surrounding whitespace and the `'` spreadsheets prepend are dropped;
 * spaces, dashes, dots, slashes and parentheses are separators; any other character — letters,
 * `{{phoneNumber}}`, `#`, an extension — makes the value invalid):
 * - `+44 7700 900123`, `0044 7700 900123`: international; `+44 (0)7700 900123` drops the `(0)`.
 * - `447700900123`: digits without a leading 0 are read as international first (the canonical key
 *   itself, what Voluum and the original's lists hold); only if that is not a valid number and a
 *   default country is given are they read as a national number of that country. Exception: with a
 *   NANP default country (US, CA, …: calling code 1) exactly 10 digits are read as national first,
 *   because that is how NANP numbers are written and 4 in 10 of them are also valid international
 *   numbers (`2015550123` is +20 15550123 in Egypt). Measured on mutated example numbers:
 *   libphonenumber's own default (national first for every country) misreads 87% of foreign
 *   canonical keys in a DE-hinted file and 21% in an IT-hinted one; this rule misreads none of
 *   them. Its cost: national numbers written WITHOUT their trunk prefix outside NANP may read as
 *   another country's valid number (`15123456789`, a German mobile without its 0, is a valid US
 *   number; 4% of such Mexican numbers collide) — such files need the `+` or the trunk prefix.
 * - `07700 900123`, `(0)7700 900123`: national (leading 0); needs a default country (ISO2),
 *   otherwise invalid. The default country's own international prefix (`011…` for US) is honoured.
 *
 * Validity: a number must be VALID by libphonenumber's full metadata (`isValidNumber()`: it matches
 * one of the number-type patterns of its country), not merely POSSIBLE (right length). The cleaned
 * lists are sent to SMS, and an unallocated range can never receive one. The price: a range
 * allocated after the metadata was published is rejected until libphonenumber-js is upgraded
 * (`PHONE_METADATA_VERSION` is recorded with each cleaning result, so a result can be explained).
 * One exception: Ofcom's drama range 07700 900000–900999 (`447700900xxx`) is reserved, never
 * allocated, and absent from libphonenumber's patterns; it is accepted as a valid GB mobile so that
 * documentation, seeds and tests can use numbers that can never reach a real person.
 *
 * Speed: `parsePhoneNumber()` of libphonenumber-js builds a `new RegExp` from multi-kilobyte
 * metadata patterns at every match: 5–65 µs per number on the project's 2-core VM (the 44 calling
 * code, shared by GB/GG/IM/JE, is the slowest), 25+ s for a million rows. This module therefore compiles each
 * country's patterns ONCE (lazily) and runs libphonenumber-js's own parse algorithm over them
 * (calling-code extraction, national-prefix stripping with its transform rule, country detection
 * among countries sharing a calling code, `isValidNumber`), reading the same `metadata.max.json`.
 * `PhoneNumber.test.ts` checks it against libphonenumber-js's `parsePhoneNumber(...).isValid()` on
 * a large random sample. Input that is already canonical skips the character cleaning entirely.
 */
import { createRequire } from "node:module"
import { Effect, Schema, SchemaGetter, SchemaIssue } from "effect"
import metadataJson from "libphonenumber-js/metadata.max.json"

/** The metadata that decided validity: libphonenumber-js's version and its "max" (full) metadata. */
export const PHONE_METADATA_VERSION: string = `${
  (createRequire(import.meta.url)("libphonenumber-js/package.json") as { version: string }).version
}+max`

export type NormalizedPhone =
  | { readonly ok: true; readonly e164: string; readonly country: string | undefined }
  | { readonly ok: false; readonly reason: "INVALID_PHONE_NUMBER" }

const INVALID: NormalizedPhone = { ok: false, reason: "INVALID_PHONE_NUMBER" }

// ---------------------------------------------------------------------------------------------
// Metadata (libphonenumber-js metadata format v4: each country is a positional array).

type RawType = readonly [pattern: string, possibleLengths?: ReadonlyArray<number>] | 0 | undefined
type RawPlan = ReadonlyArray<unknown>
interface RawMetadata {
  readonly version: number
  readonly country_calling_codes: Readonly<Record<string, ReadonlyArray<string>>>
  readonly countries: Readonly<Record<string, RawPlan>>
  readonly nonGeographic?: Readonly<Record<string, RawPlan>>
}

const METADATA = metadataJson as unknown as RawMetadata
if (METADATA.version !== 4) {
  // The positions read below are those of format v4; a different format must not be misread silently.
  throw new Error(`libphonenumber-js metadata format ${METADATA.version} is not supported (expected 4)`)
}

/** One country's (or one non-geographic calling code's) numbering plan, its patterns compiled once. */
interface Plan {
  /** ISO2; undefined for a non-geographic calling code (+800, +882, …). */
  readonly country: string | undefined
  readonly callingCode: string
  readonly callingCodeValue: number
  readonly nationalNumber: RegExp
  readonly possibleLengths: ReadonlyArray<number> | undefined
  readonly prefixForParsing: RegExp | undefined
  readonly transformRule: string | undefined
  readonly leadingDigits: RegExp | undefined
  readonly iddPrefix: RegExp | undefined
  /** Number types (fixed line, mobile, toll free, …) with a non-empty pattern; undefined = the plan has none. */
  readonly types:
    ReadonlyArray<{ readonly pattern: RegExp; readonly lengths: ReadonlyArray<number> | undefined }> | undefined
}

/** A calling code: the plan libphonenumber selects for it, and the countries sharing it (main one first). */
interface CallingCode {
  readonly code: string
  readonly main: Plan
  /** Undefined for a non-geographic calling code. */
  readonly countries: ReadonlyArray<Plan> | undefined
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined)
const entire = (pattern: string): RegExp => new RegExp(`^(?:${pattern})$`)
const atStart = (pattern: string): RegExp => new RegExp(`^(?:${pattern})`)

const compilePlan = (country: string | undefined, raw: RawPlan): Plan => {
  const possibleLengths = Array.isArray(raw[3]) ? (raw[3] as ReadonlyArray<number>) : undefined
  const rawTypes = Array.isArray(raw[11]) ? (raw[11] as ReadonlyArray<RawType>) : undefined
  const npfp = str(raw[7]) ?? str(raw[5])
  const leading = str(raw[10])
  const idd = str(raw[1])
  return {
    country,
    callingCode: raw[0] as string,
    callingCodeValue: Number(raw[0]),
    nationalNumber: entire(raw[2] as string),
    possibleLengths,
    prefixForParsing: npfp === undefined ? undefined : atStart(npfp),
    transformRule: str(raw[8]),
    leadingDigits: leading === undefined ? undefined : atStart(leading),
    iddPrefix: idd === undefined ? undefined : atStart(idd),
    types:
      rawTypes === undefined || rawTypes.length === 0
        ? undefined
        : // Mobile first: for validity any order gives the same answer, and most numbers here are mobiles.
          [rawTypes[1], ...rawTypes.filter((_, i) => i !== 1)].flatMap((t) =>
            Array.isArray(t) && str(t[0]) !== undefined
              ? [{ pattern: entire(t[0] as string), lengths: t[1] ?? possibleLengths }]
              : []
          )
  }
}

const countryPlans = new Map<string, Plan>()

const countryPlan = (country: string): Plan => {
  let plan = countryPlans.get(country)
  if (plan === undefined) {
    plan = compilePlan(country, METADATA.countries[country]!)
    countryPlans.set(country, plan)
  }
  return plan
}

/**
 * Calling codes by numeric value (1–999), filled on first use: `null` = not a calling code. Codes
 * never start with 0, so the values of 1-, 2- and 3-digit codes cannot collide.
 */
const callingCodes: Array<CallingCode | null | undefined> = new Array(1000)

const callingCodeOf = (value: number): CallingCode | null => {
  let found = callingCodes[value]
  if (found === undefined) {
    const code = String(value)
    const countries = METADATA.country_calling_codes[code]
    const nonGeographic = METADATA.nonGeographic?.[code]
    if (countries !== undefined && !(countries.length === 1 && countries[0]!.length === 3)) {
      const plans = countries.map(countryPlan)
      found = { code, main: plans[0]!, countries: plans }
    } else if (nonGeographic !== undefined) {
      found = { code, main: compilePlan(undefined, nonGeographic), countries: undefined }
    } else {
      found = null
    }
    callingCodes[value] = found
  }
  return found
}

// ---------------------------------------------------------------------------------------------
// libphonenumber-js's algorithm (source/helpers/*.js of the pinned version), over compiled plans.

/** `getNumberType(...) !== undefined`: the national number matches the plan and one of its types. */
const hasType = (plan: Plan, nationalNumber: string): boolean => {
  if (plan.types === undefined) return false
  const length = nationalNumber.length
  for (const type of plan.types) {
    if (type.lengths !== undefined && !type.lengths.includes(length)) continue
    if (type.pattern.test(nationalNumber)) return plan.nationalNumber.test(nationalNumber)
  }
  return false
}

/** `isValidNumber()` for a plan. */
const isValidIn = (plan: Plan, nationalNumber: string): boolean =>
  plan.types !== undefined ? hasType(plan, nationalNumber) : plan.nationalNumber.test(nationalNumber)

/**
 * Set by `countryByCallingCode` when it found the country by matching a number type, i.e. the number
 * is already known valid there: saves running the same (multi-kilobyte) patterns twice. A module
 * variable rather than a returned pair, to allocate nothing per number.
 */
let detectedByType = false

/** `getCountryByCallingCode()`: which of the countries sharing a calling code a number belongs to. */
const countryByCallingCode = (callingCode: CallingCode, nationalNumber: string): Plan | undefined => {
  detectedByType = false
  const countries = callingCode.countries
  if (countries === undefined) return undefined
  if (countries.length === 1) return countries[0]
  for (const plan of countries) {
    if (plan.leadingDigits !== undefined) {
      if (nationalNumber !== "" && plan.leadingDigits.test(nationalNumber)) return plan
    } else if (hasType(plan, nationalNumber)) {
      detectedByType = true
      return plan
    }
  }
  return undefined
}

type LengthCheck = "IS_POSSIBLE" | "TOO_SHORT" | "TOO_LONG" | "INVALID_LENGTH"

/** `checkNumberLength()`. */
const checkLength = (plan: Plan, nationalNumber: string): LengthCheck => {
  const lengths = plan.possibleLengths
  if (lengths === undefined || lengths.length === 0) return "IS_POSSIBLE"
  const length = nationalNumber.length
  const min = lengths[0]!
  if (min === length) return "IS_POSSIBLE"
  if (min > length) return "TOO_SHORT"
  if (lengths[lengths.length - 1]! < length) return "TOO_LONG"
  return lengths.indexOf(length, 1) >= 0 ? "IS_POSSIBLE" : "INVALID_LENGTH"
}

/** `extractNationalNumber()`: strips a national (trunk) prefix / carrier code when that is right. */
const extractNationalNumber = (plan: Plan, number: string): string => {
  if (plan.prefixForParsing === undefined) return number
  const match = plan.prefixForParsing.exec(number)
  if (match === null) return number
  const groups = match.length - 1
  const hasGroups = groups > 0 && Boolean(match[groups])
  const stripped =
    plan.transformRule !== undefined && hasGroups
      ? number.replace(plan.prefixForParsing, plan.transformRule)
      : number.slice(match[0].length)
  if (stripped === number) return number
  if (plan.nationalNumber.test(number) && !plan.nationalNumber.test(stripped)) return number
  if (plan.possibleLengths !== undefined) {
    const country = countryByCallingCode(callingCodeOf(plan.callingCodeValue)!, stripped)
    const check = checkLength(country ?? plan, stripped)
    if (check === "TOO_SHORT" || check === "INVALID_LENGTH") return number
  }
  return stripped
}

const MIN_NATIONAL_LENGTH = 2
const MAX_NATIONAL_LENGTH = 17

/** Ofcom's drama range 07700 900000–900999: reserved, never allocated (see the module comment). */
const isUkDramaNumber = (digits: string): boolean => digits.length === 12 && digits.startsWith("447700900")

/** The verdict once the national number and its country are known (`detectedByType` must be fresh). */
const finish = (
  callingCode: string,
  nationalNumber: string,
  country: Plan | undefined,
  fallback: Plan
): NormalizedPhone => {
  if (nationalNumber.length < MIN_NATIONAL_LENGTH || nationalNumber.length > MAX_NATIONAL_LENGTH) return INVALID
  if (detectedByType || isValidIn(country ?? fallback, nationalNumber)) {
    return { ok: true, e164: callingCode + nationalNumber, country: country?.country }
  }
  return INVALID
}

/** The calling code an international number starts with (libphonenumber: the shortest known one). */
const leadingCallingCode = (digits: string): CallingCode | null => {
  let value = 0
  for (let i = 0; i < 3 && i < digits.length; i++) {
    value = value * 10 + (digits.charCodeAt(i) - 48)
    const found = callingCodeOf(value)
    if (found !== null) return found
  }
  return null
}

/** An international number's digits (after `+`, `00` or the default country's IDD prefix). */
const parseInternational = (digits: string): NormalizedPhone => {
  if (digits.length === 0 || digits.charCodeAt(0) === 48 /* 0 */) return INVALID
  if (isUkDramaNumber(digits)) return { ok: true, e164: digits, country: "GB" }
  const callingCode = leadingCallingCode(digits)
  if (callingCode === null || callingCode.code.length === digits.length) return INVALID
  const nationalNumber = extractNationalNumber(callingCode.main, digits.slice(callingCode.code.length))
  return finish(callingCode.code, nationalNumber, countryByCallingCode(callingCode, nationalNumber), callingCode.main)
}

/** `parse(digits, { defaultCountry })` of libphonenumber-js for digits without `+`. */
const parseNational = (digits: string, defaultCountry: string): NormalizedPhone => {
  const plan = countryPlan(defaultCountry)
  // The default country's international prefix (011 in the US): the rest is international.
  if (plan.iddPrefix !== undefined) {
    const idd = plan.iddPrefix.exec(digits)
    if (idd !== null && digits.length > idd[0].length && digits.charCodeAt(idd[0].length) !== 48) {
      return parseInternational(digits.slice(idd[0].length))
    }
  }
  const callingCode = callingCodeOf(plan.callingCodeValue)!
  // Digits that start with the country's calling code and only make sense without it.
  if (digits.startsWith(callingCode.code)) {
    const shorter = digits.slice(callingCode.code.length)
    const whole = extractNationalNumber(plan, digits)
    if (
      (!plan.nationalNumber.test(whole) && plan.nationalNumber.test(extractNationalNumber(plan, shorter))) ||
      checkLength(plan, whole) === "TOO_LONG"
    ) {
      const nationalNumber = extractNationalNumber(callingCode.main, shorter)
      return finish(
        callingCode.code,
        nationalNumber,
        countryByCallingCode(callingCode, nationalNumber),
        callingCode.main
      )
    }
  }
  const nationalNumber = extractNationalNumber(plan, digits)
  const detected = countryByCallingCode(callingCode, nationalNumber)
  const result = finish(callingCode.code, nationalNumber, detected ?? plan, plan)
  return result.ok || !isUkDramaNumber(callingCode.code + nationalNumber)
    ? result
    : { ok: true, e164: callingCode.code + nationalNumber, country: "GB" }
}

// ---------------------------------------------------------------------------------------------
// Input cleaning.

const MAX_INPUT_LENGTH = 64

/** Is this an ISO 3166-1 alpha-2 code libphonenumber has metadata for (upper case)? */
export const isSupportedCountry = (country: string): boolean =>
  country.length === 2 && Object.hasOwn(METADATA.countries, country)

/** The digit a character stands for (ASCII, full-width, Arabic-Indic, Eastern Arabic-Indic), or -1. */
const digitOf = (code: number): number => {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 0xff10 && code <= 0xff19) return code - 0xff10
  if (code >= 0x660 && code <= 0x669) return code - 0x660
  if (code >= 0x6f0 && code <= 0x6f9) return code - 0x6f0
  return -1
}

const isSeparator = (code: number): boolean =>
  code === 32 || // space
  code === 9 || // tab
  code === 45 || // -
  code === 46 || // .
  code === 47 || // /
  code === 40 || // (
  code === 41 || // )
  code === 0xa0 || // no-break space
  code === 0x2007 ||
  code === 0x202f || // narrow no-break spaces
  (code >= 0x2010 && code <= 0x2015) || // hyphens and dashes
  code === 0x2212 // minus sign

/** Only ASCII digits, 8–15 of them, no leading 0: the canonical key form, read without cleaning. */
const isCanonicalShape = (raw: string): boolean => {
  const length = raw.length
  if (length < 8 || length > 15 || raw.charCodeAt(0) === 48) return false
  for (let i = 0; i < length; i++) {
    const c = raw.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

/**
 * The canonical key of a phone number as typed anywhere (CSV cell, API body, Voluum variable).
 * `defaultCountry` (ISO2, any case) lets national numbers (`07700 900123`) through; an unknown
 * country is ignored. Never throws.
 */
export const normalizePhone = (raw: string, defaultCountry?: string): NormalizedPhone => {
  if (typeof raw !== "string") return INVALID
  let hint: string | undefined
  if (defaultCountry !== undefined && defaultCountry.length === 2) {
    if (isSupportedCountry(defaultCountry)) hint = defaultCountry
    else if (isSupportedCountry(defaultCountry.toUpperCase())) hint = defaultCountry.toUpperCase()
  }
  if (isCanonicalShape(raw)) return readDigits(raw, hint)
  if (raw.length > MAX_INPUT_LENGTH) return INVALID

  let digits = ""
  let plus = false
  let i = 0
  const length = raw.length
  // Leading noise: BOM, whitespace, the apostrophe spreadsheets prepend to keep a number as text.
  while (i < length) {
    const c = raw.charCodeAt(i)
    if (c === 0xfeff || c === 39 /* ' */ || c === 32 || c === 9 || c === 0xa0) i++
    else break
  }
  for (; i < length; i++) {
    const c = raw.charCodeAt(i)
    const d = digitOf(c)
    if (d >= 0) {
      digits += String.fromCharCode(48 + d)
    } else if ((c === 43 /* + */ || c === 0xff0b) && digits.length === 0 && !plus) {
      plus = true
    } else if (
      c === 40 /* ( */ &&
      raw.charCodeAt(i + 1) === 48 &&
      raw.charCodeAt(i + 2) === 41 /* ) */ &&
      digits.length > 0 &&
      (plus || digits.startsWith("00"))
    ) {
      i += 2 // "+44 (0)7700…": the trunk 0 that must not be dialled from abroad.
    } else if (!isSeparator(c)) {
      return INVALID
    }
  }
  if (digits.length < 3) return INVALID

  if (plus) return parseInternational(digits)
  if (digits.startsWith("00")) return parseInternational(digits.slice(2))
  if (digits.charCodeAt(0) === 48) return hint === undefined ? INVALID : parseNational(digits, hint)
  return readDigits(digits, hint)
}

/** Digits without `+`, `00` or a leading 0: international first, except 10-digit NANP numbers (module comment). */
const readDigits = (digits: string, hint: string | undefined): NormalizedPhone => {
  if (hint === undefined) return parseInternational(digits)
  if (digits.length === 10 && countryPlan(hint).callingCode === "1") {
    const national = parseNational(digits, hint)
    return national.ok ? national : parseInternational(digits)
  }
  const international = parseInternational(digits)
  return international.ok ? international : parseNational(digits, hint)
}

/** The country (ISO2) of a canonical key, by libphonenumber's metadata; undefined if invalid or non-geographic. */
export const countryOfPhone = (e164digits: string): string | undefined => {
  const parsed = parseInternational(e164digits)
  return parsed.ok ? parsed.country : undefined
}

/** Is this string a canonical key of a valid number (digits only, as `normalizePhone` returns them)? */
export const isCanonicalPhone = (value: string): boolean => {
  const parsed = normalizePhone(value)
  return parsed.ok && parsed.e164 === value
}

// ---------------------------------------------------------------------------------------------
// Schemas for API input.

/** A phone number in any accepted international form, decoded to its canonical key. */
export const PhoneNumberInput = Schema.String.pipe(
  Schema.decodeTo(Schema.String, {
    decode: SchemaGetter.transformEffect((raw: string) => {
      const parsed = normalizePhone(raw)
      return parsed.ok
        ? Effect.succeed(parsed.e164)
        : Effect.fail(new SchemaIssue.InvalidValue({ message: "INVALID_PHONE_NUMBER: not a valid phone number" }, raw))
    }),
    encode: SchemaGetter.transform((key: string) => key)
  })
)

/** A default-country hint: ISO 3166-1 alpha-2 with phone metadata, any case, decoded to upper case. */
export const CountryHint = Schema.String.pipe(
  Schema.decodeTo(Schema.String, {
    decode: SchemaGetter.transformEffect((raw: string) => {
      const upper = raw.trim().toUpperCase()
      return isSupportedCountry(upper)
        ? Effect.succeed(upper)
        : Effect.fail(new SchemaIssue.InvalidValue({ message: `unknown country code "${raw}"` }, raw))
    }),
    encode: SchemaGetter.transform((code: string) => code)
  })
)
