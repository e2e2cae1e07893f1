/** The range endpoints' day windows (month ends, leap years, the original's exclusive end) and zone-less windows. */
import { describe, expect, it } from "vitest"
import { ValidationError } from "../../src/platform/Errors.ts"
import { utcWindow } from "../../src/voluum/ReportsSync.ts"
import { dayWindows } from "../../src/voluum/VoluumJobs.ts"

const iso = (windows: ReturnType<typeof dayWindows>) =>
  windows instanceof ValidationError ? windows : windows.map((w) => [w.from.toISOString(), w.to.toISOString()])

describe("dayWindows", () => {
  it("one window per day [start_day, end_day), the last one ending on the next month's first day", () => {
    expect(iso(dayWindows({ year: 2025, month: 1, startDay: 30, endDay: 32 }))).toEqual([
      ["2025-01-30T00:00:00.000Z", "2025-01-31T00:00:00.000Z"],
      ["2025-01-31T00:00:00.000Z", "2025-02-01T00:00:00.000Z"]
    ])
    expect(iso(dayWindows({ year: 2025, month: 12, startDay: 31, endDay: 32 }))).toEqual([
      ["2025-12-31T00:00:00.000Z", "2026-01-01T00:00:00.000Z"]
    ])
    expect(iso(dayWindows({ year: 2024, month: 2, startDay: 29, endDay: 30 }))).toEqual([
      ["2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"]
    ])
  })

  it("an empty range has no windows (the original looped zero times)", () => {
    expect(dayWindows({ year: 2025, month: 5, startDay: 10, endDay: 10 })).toEqual([])
  })

  it("refuses days the month does not have, and bad months", () => {
    for (const range of [
      { year: 2025, month: 2, startDay: 29, endDay: 30 },
      { year: 2025, month: 4, startDay: 1, endDay: 32 },
      { year: 2025, month: 13, startDay: 1, endDay: 2 },
      { year: 2025, month: 5, startDay: 0, endDay: 2 }
    ]) {
      expect(dayWindows(range)).toBeInstanceOf(ValidationError)
    }
  })
})

describe("utcWindow", () => {
  it("reads ends without a zone as UTC and leaves the others alone", () => {
    expect(utcWindow({ from: "2025-05-01", to: "2025-05-02T00:00:00" })).toEqual({
      from: "2025-05-01T00:00:00Z",
      to: "2025-05-02T00:00:00Z"
    })
    expect(utcWindow({ from: "2025-05-01T00:00:00.000Z", to: "2025-05-02T02:00:00+02:00" })).toEqual({
      from: "2025-05-01T00:00:00.000Z",
      to: "2025-05-02T02:00:00+02:00"
    })
  })
})
