/** The results file's pure parts: the CSV split, the number read, the classification. */
import { describe, expect, it } from "vitest"
import { categoryOf, resultKey, splitCsvRecord } from "../../src/hlr/HlrResults.ts"

describe("HlrResults", () => {
  it("splits records with and without quotes, trimming cells", () => {
    expect(splitCsvRecord("a, b ,c")).toEqual(["a", "b", "c"])
    expect(splitCsvRecord('a,"Three, ""UK""",,c')).toEqual(["a", 'Three, "UK"', "", "c"])
  })

  it("reads the formatted number, else the detected one, as canonical digits", () => {
    expect(resultKey("447700900001", "")).toBe("447700900001")
    expect(resultKey("", "+44 7700 900001")).toBe("447700900001")
    expect(resultKey(undefined, "0044 7700 900001")).toBe("447700900001")
    expect(resultKey("", "")).toBeUndefined()
    expect(resultKey("n/a", undefined)).toBeUndefined()
  })

  it("classifies every status; unknown ones are unknown, a cached risky result stays risky", () => {
    expect(categoryOf("LIVE", false)).toBe("live")
    expect(categoryOf("LIVE", true)).toBe("risky")
    expect(categoryOf("LIVE_RISKY_NETWORK", false)).toBe("risky")
    for (const s of ["DEAD", "NOT_AVAILABLE_NETWORK_ONLY", "NOT_APPLICABLE", "NO_TELESERVICE_PROVISIONED"]) {
      expect(categoryOf(s, false)).toBe("dead")
    }
    for (const s of ["NO_COVERAGE", "INCONCLUSIVE", "ABSENT_SUBSCRIBER"]) expect(categoryOf(s, false)).toBe("monitor")
    expect(categoryOf("PORTED_AWAY", false)).toBe("unknown")
    expect(categoryOf("", false)).toBe("unknown")
  })
})
