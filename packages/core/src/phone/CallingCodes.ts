/**
 * The original's two country lookups, kept because their results are stored and exported:
 *
 * - `countryByCallingCode`: the whitelist's `country_code` = the country of the LONGEST calling-code
 *   prefix of the phone in `calling-codes.json` (`docs/original-api.md` "Voluum reports"), e.g. `1242…` → BS before
 *   `1…` → US. It differs from libphonenumber's country (`countryOfPhone`), which looks at number
 *   ranges (`447911…` is GG there, GB here); the whitelist column keeps the original's meaning.
 * - `countryCodeByName`: the conversions' country = the campaign name's second `" - "` segment
 *   looked up in `country-names.json` (`docs/original-api.md` "Conversions and the Ongage push", `"… - France - …"` → FR). The match is
 *   exact (case and spaces), as in the original; unknown names give undefined and the caller uses
 *   its default (`"DEF"`).
 *
 * Both data files are the original's, copied verbatim.
 */
import callingCodesJson from "./calling-codes.json" with { type: "json" }
import countryNamesJson from "./country-names.json" with { type: "json" }

const CALLING_CODES: Readonly<Record<string, string>> = callingCodesJson
const COUNTRY_NAMES: Readonly<Record<string, string>> = countryNamesJson

/** Calling codes by numeric value: codes never start with 0, so codes of different lengths cannot collide. */
const byValue = new Map<number, string>(Object.entries(CALLING_CODES).map(([code, country]) => [Number(code), country]))
const LONGEST_CODE = Math.max(...Object.keys(CALLING_CODES).map((code) => code.length))

/**
 * The ISO2 country of the longest calling-code prefix of a phone, or undefined. Accepts the
 * canonical key (`447700900123`) and, like the original, a leading `+` or `00`.
 */
export const countryByCallingCode = (e164digits: string): string | undefined => {
  let start = 0
  if (e164digits.charCodeAt(0) === 43 /* + */) start = 1
  else if (e164digits.startsWith("00")) start = 2
  let value = 0
  let found: string | undefined
  for (let i = start; i < e164digits.length && i - start < LONGEST_CODE; i++) {
    const digit = e164digits.charCodeAt(i) - 48
    if (digit < 0 || digit > 9 || (i === start && digit === 0)) break
    value = value * 10 + digit
    found = byValue.get(value) ?? found
  }
  return found
}

/** The ISO2 code of an English country name as the original's `country_codes.json` spells it, or undefined. */
export const countryCodeByName = (name: string): string | undefined =>
  Object.hasOwn(COUNTRY_NAMES, name) ? COUNTRY_NAMES[name] : undefined
