/**
 * The original's country lookups: longest calling-code prefix (whitelist `country_code`) and
 * campaign-name country (conversions).
 */
import { assert, describe, it } from "@effect/vitest"
import { countryByCallingCode, countryCodeByName } from "../../src/phone/CallingCodes.ts"

describe("countryByCallingCode", () => {
  it("takes the longest matching prefix", () => {
    assert.strictEqual(countryByCallingCode("447700900123"), "GB")
    assert.strictEqual(countryByCallingCode("12015550123"), "US")
    assert.strictEqual(countryByCallingCode("12425551234"), "BS") // 1242 before 1
    assert.strictEqual(countryByCallingCode("18765550123"), "JM")
    assert.strictEqual(countryByCallingCode("33612345678"), "FR")
    assert.strictEqual(countryByCallingCode("4915112345678"), "DE")
    assert.strictEqual(countryByCallingCode("2348021234567"), "NG") // 234, not 23 (none) or 2
    assert.strictEqual(countryByCallingCode("79123456789"), "RU")
  })

  it("accepts a leading + or 00 like the original", () => {
    assert.strictEqual(countryByCallingCode("+447700900123"), "GB")
    assert.strictEqual(countryByCallingCode("00447700900123"), "GB")
  })

  it("gives undefined when no prefix matches", () => {
    for (const value of ["", "0", "0447700900123", "+", "abc", "999", "{{phoneNumber}}"]) {
      assert.strictEqual(countryByCallingCode(value), undefined, value)
    }
  })
})

describe("countryCodeByName", () => {
  it("maps the campaign-name country to ISO2", () => {
    assert.strictEqual(countryCodeByName("France"), "FR")
    assert.strictEqual(countryCodeByName("United Kingdom"), "GB")
    assert.strictEqual(countryCodeByName("Germany"), "DE")
    assert.strictEqual(countryCodeByName("Korea, Republic of"), "KR")
  })

  it("gives undefined for unknown names, matching exactly as the original did", () => {
    for (const name of ["", "france", "France ", "Atlantis", "constructor", "__proto__", "toString"]) {
      assert.strictEqual(countryCodeByName(name), undefined, name)
    }
  })
})
