/**
 * The canonical phone key: every accepted spelling of a number gives the same key, garbage gives
 * INVALID_PHONE_NUMBER, and the compiled validator agrees with libphonenumber-js itself.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { getCountryCallingCode, parsePhoneNumberFromString } from "libphonenumber-js/max"
import type { CountryCode } from "libphonenumber-js/max"
import examples from "libphonenumber-js/examples.mobile.json"
import metadata from "libphonenumber-js/metadata.max.json"
import libPackage from "libphonenumber-js/package.json" with { type: "json" }
import {
  CountryHint,
  PHONE_METADATA_VERSION,
  PhoneNumberInput,
  countryOfPhone,
  isCanonicalPhone,
  normalizePhone,
  type NormalizedPhone
} from "../../src/phone/PhoneNumber.ts"

const key = (raw: string, country?: string): string | undefined => {
  const parsed = normalizePhone(raw, country)
  return parsed.ok ? parsed.e164 : undefined
}

describe("normalizePhone", () => {
  it("gives one key for every spelling of a UK mobile", () => {
    for (const raw of [
      "+44 7700 900123",
      "447700900123",
      "+447700900123",
      "0044 7700 900123",
      "00447700900123",
      "+44 (0)7700 900123",
      "+44(0)7700-900-123",
      "'447700900123",
      "'+44 7700 900123",
      "\uFEFF447700900123",
      "\uFEFF+44 7700 900123",
      "  +44.7700.900.123  ",
      "+44 7700 900 123\t",
      "(+44) 7700 900123"
    ]) {
      assert.deepStrictEqual(normalizePhone(raw), { ok: true, e164: "447700900123", country: "GB" }, raw)
    }
  })

  it("reads national numbers only with a default country", () => {
    assert.strictEqual(key("07700900123"), undefined)
    assert.strictEqual(key("(0)7700 900123"), undefined)
    assert.strictEqual(key("07700900123", "GB"), "447700900123")
    assert.strictEqual(key("(0)7700 900123", "GB"), "447700900123")
    assert.strictEqual(key("07700 900123", "gb"), "447700900123")
    assert.strictEqual(key("07911 123456", "GB"), "447911123456")
    assert.strictEqual(key("0151 12345678", "DE"), "4915112345678")
    assert.strictEqual(key("06 12 34 56 78", "FR"), "33612345678")
    assert.strictEqual(key("612 345 678", "ES"), "34612345678")
    assert.strictEqual(key("(201) 555-0123", "US"), "12015550123")
    // The default country's international prefix.
    assert.strictEqual(key("011 44 7911 123456", "US"), "447911123456")
    // Digits that already carry the default country's calling code.
    assert.strictEqual(key("447700900123", "GB"), "447700900123")
    assert.strictEqual(key("4915112345678", "DE"), "4915112345678")
    // An unknown default country is ignored.
    assert.strictEqual(key("07700900123", "XX"), undefined)
    assert.strictEqual(key("447700900123", "XX"), "447700900123")
  })

  it("reads digits without + as international first, even with a default country", () => {
    // A UK key in a file hinted DE stays a UK number (national-first would read it as German).
    assert.strictEqual(key("447911123456", "DE"), "447911123456")
    assert.strictEqual(key("33612345678", "GB"), "33612345678")
    // Not valid internationally → the national reading of the default country.
    assert.strictEqual(key("612345678", "ES"), "34612345678")
    // The documented cost: a German mobile written without its trunk 0 is a valid US number.
    assert.strictEqual(key("15123456789", "DE"), "15123456789")
    assert.strictEqual(key("015123456789", "DE"), "4915123456789")
  })

  it("reads 10 digits as a national number first for NANP default countries", () => {
    // Internationally this is +20 15550123 (Egypt), a valid number too.
    assert.strictEqual(key("2015550123"), "2015550123")
    assert.strictEqual(key("2015550123", "US"), "12015550123")
    assert.strictEqual(key("4165550123", "CA"), "14165550123")
    assert.strictEqual(key("12015550123", "US"), "12015550123")
  })

  it("rejects garbage with INVALID_PHONE_NUMBER", () => {
    for (const raw of [
      "{{phoneNumber}}",
      "",
      "   ",
      "'",
      "\uFEFF",
      "abc",
      "44770090012a",
      "phone: +447700900123",
      "+44 7700 900123 ext 12",
      "+44 7700 900123#",
      "++447700900123",
      "44+7700900123",
      "123",
      "4477",
      "4477009001234567", // too long
      "44770090012", // too short for GB
      "447700900123447700900123",
      "0",
      "000000000000000",
      "+0447700900123",
      "1111222233334444",
      "x".repeat(1000),
      "1".repeat(1000)
    ]) {
      assert.deepStrictEqual(normalizePhone(raw), { ok: false, reason: "INVALID_PHONE_NUMBER" }, raw)
    }
  })

  it("requires a valid number, not merely a possible one", () => {
    // Right length for GB (possible) but no GB range starts with 6 (not valid).
    assert.strictEqual(parsePhoneNumberFromString("+44 6000 000000")?.isPossible(), true)
    assert.strictEqual(key("+44 6000 000000"), undefined)
    // +1 555 is not an assigned area code (a possible but invalid NANP number).
    assert.strictEqual(key("15555550100"), undefined)
    assert.strictEqual(parsePhoneNumberFromString("+15555550100")?.isPossible(), true)
  })

  it("accepts Ofcom's drama range 07700 900xxx, which libphonenumber calls invalid", () => {
    assert.strictEqual(parsePhoneNumberFromString("+447700900123")?.isValid(), false)
    assert.deepStrictEqual(normalizePhone("447700900000"), { ok: true, e164: "447700900000", country: "GB" })
    assert.deepStrictEqual(normalizePhone("447700900999"), { ok: true, e164: "447700900999", country: "GB" })
    assert.strictEqual(key("447700901000"), undefined)
  })

  it("detects the country", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["+44 7911 123456", "GG"], // 07911 12 is a Guernsey range
      ["+44 7400 123456", "GB"],
      ["+44 7624 123456", "IM"],
      ["+1 201 555 0123", "US"],
      ["+1 416 555 0123", "CA"],
      ["+1 876 555 0123", "JM"],
      ["+49 151 12345678", "DE"],
      ["+33 6 12 34 56 78", "FR"],
      ["+34 612 345 678", "ES"],
      ["+39 312 345 6789", "IT"],
      ["+7 912 345 67 89", "RU"],
      ["+7 701 123 4567", "KZ"],
      ["+91 98765 43210", "IN"],
      ["+55 11 91234 5678", "BR"],
      ["+54 9 11 2345 6789", "AR"],
      ["+234 802 123 4567", "NG"]
    ]
    for (const [raw, country] of cases) {
      const parsed = normalizePhone(raw)
      assert.isTrue(parsed.ok, raw)
      if (parsed.ok) {
        assert.strictEqual(parsed.country, country, raw)
        assert.strictEqual(countryOfPhone(parsed.e164), country, raw)
      }
    }
    // A non-geographic number (+800 international freephone) has a key but no country.
    assert.deepStrictEqual(normalizePhone("+800 1234 5678"), { ok: true, e164: "80012345678", country: undefined })
    assert.strictEqual(countryOfPhone("12"), undefined)
    assert.strictEqual(countryOfPhone("15555550100"), undefined)
  })

  it("accepts full-width and Arabic-Indic digits", () => {
    assert.strictEqual(key("＋４４７７００９００１２３"), "447700900123")
    assert.strictEqual(key("+٤٤٧٧٠٠٩٠٠١٢٣"), "447700900123")
  })

  it("isCanonicalPhone tells keys from other spellings", () => {
    assert.isTrue(isCanonicalPhone("447700900123"))
    assert.isFalse(isCanonicalPhone("+447700900123"))
    assert.isFalse(isCanonicalPhone("07700900123"))
    assert.isFalse(isCanonicalPhone("15555550100"))
  })

  it("names the metadata version", () => {
    assert.strictEqual(PHONE_METADATA_VERSION, `${libPackage.version}+max`)
  })
})

describe("agreement with libphonenumber-js", () => {
  // A deterministic sample: example mobile numbers of every country with random tails, so that
  // about a third are valid and the rest fail in every possible way.
  let seed = 20_251_126
  const random = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
    return seed % n
  }
  const randomDigits = (n: number) => {
    let s = ""
    for (let i = 0; i < n; i++) s += String(random(10))
    return s
  }
  const entries = Object.entries(examples as Record<string, string>)
  const trunkPrefix = (country: string) =>
    (metadata.countries as unknown as Record<string, ReadonlyArray<unknown>>)[country]?.[5]

  it("gives the same verdict, key and country on 20,000 international and ~4,000 national numbers", () => {
    let compared = 0
    let valid = 0
    const check = (input: string, hint: string | undefined) => {
      const reference = parsePhoneNumberFromString(input, hint as CountryCode | undefined)
      const expected: NormalizedPhone =
        reference !== undefined && reference.isValid()
          ? { ok: true, e164: reference.number.slice(1), country: reference.country }
          : { ok: false, reason: "INVALID_PHONE_NUMBER" }
      assert.deepStrictEqual(normalizePhone(input, hint), expected, `${input} ${hint ?? ""}`)
      compared++
      if (expected.ok) valid++
    }
    for (let k = 0; k < 20_000; k++) {
      const [country, example] = entries[random(entries.length)]!
      const keep = random(example.length + 1)
      const nationalNumber = example.slice(0, keep) + randomDigits(Math.max(0, example.length - keep + random(3) - 1))
      if (nationalNumber.includes("7700900")) continue // the drama range, deliberately different
      check(`+${getCountryCallingCode(country as CountryCode)}${nationalNumber}`, undefined)
      // National spelling where the trunk prefix is 0 (ours reads every "00…" as international).
      if (k % 2 === 0 && trunkPrefix(country) === "0" && !nationalNumber.startsWith("0")) {
        check(`0${nationalNumber}`, country)
      }
    }
    assert.isAbove(compared, 23_000)
    assert.isAbove(valid, 5_000)
  })
})

describe("schemas", () => {
  it.effect("PhoneNumberInput decodes any accepted spelling to the key", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Schema.decodeUnknownEffect(PhoneNumberInput)("+44 7700 900123"), "447700900123")
      const error = yield* Schema.decodeUnknownEffect(PhoneNumberInput)("{{phoneNumber}}").pipe(Effect.flip)
      assert.include(error.message, "INVALID_PHONE_NUMBER")
    })
  )

  it.effect("CountryHint upper-cases known codes and rejects unknown ones", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Schema.decodeUnknownEffect(CountryHint)("gb"), "GB")
      const error = yield* Schema.decodeUnknownEffect(CountryHint)("XX").pipe(Effect.flip)
      assert.include(error.message, "XX")
    })
  )
})
