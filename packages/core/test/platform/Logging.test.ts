/**
 * Log masking: every line a process logs passes through `maskPhones`, so whatever looks like a phone
 * number — in any of the spellings operators and providers use — is masked, and what only resembles
 * one (ids, timestamps, versions, decimals) is left readable.
 */
import { Effect, Logger } from "effect"
import { describe, expect, it } from "vitest"
import { jsonLogger, maskPhones } from "../../src/platform/Logging.ts"

describe("maskPhones", () => {
  it.each([
    ["number 447400123456 rejected", "number 4474****3456 rejected"],
    ["+447400123456", "4474****3456"],
    ["ended with 447400123456.", "ended with 4474****3456."],
    ["sign -447400123456 kept apart", "sign -4474****3456 kept apart"],
    ['{"phone":"-447400123456"}', '{"phone":"-4474****3456"}'],
    ["spaced +44 7400 123456", "spaced 4474****3456"],
    ["double  +44  7400  123456 spaces", "double  4474****3456 spaces"],
    ["bracketed (+44) 7400 123456", "bracketed 4474****3456"],
    ["bracketed (44)7400123456", "bracketed 4474****3456"],
    ["dashed 0044-7400-123-456", "dashed 0044****3456"],
    ["two: 447400123456, 33612345678", "two: 4474****3456, 3361****5678"],
    ["date-shaped but longer 2025-05-01234567", "date-shaped but longer 2025****4567"],
    ["dashed like a date 2012-10-12-3456", "dashed like a date 2012****3456"]
  ])("masks %j", (line, masked) => {
    expect(maskPhones(line)).toBe(masked)
  })

  it.each([
    "file 123e4567-e89b-12d3-a456-426614174000 done",
    "at 2026-12-07T20:43:18.123Z",
    '{"date":"2025-05-01","skipped":2}',
    "from 2025-05-01 to 2025-05-31",
    "took 12345678ms",
    "version 4.1.12345678",
    "ratio 12345678.9",
    "short 1234567",
    "host db-447400123456.internal"
  ])("leaves %j as it is", (line) => {
    expect(maskPhones(line)).toBe(line)
  })
})

describe("jsonLogger", () => {
  it("writes one JSON line per log call, with the level, the message and its fields, phones masked", async () => {
    const lines: Array<string> = []
    const write = process.stderr.write
    process.stderr.write = ((chunk: string) => {
      lines.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    try {
      await Effect.runPromise(
        Effect.logWarning("number +44 7400 123456 rejected").pipe(
          Effect.annotateLogs({ phone: "447400123456", job_id: "j-1" }),
          Effect.provide(Logger.layer([jsonLogger]))
        )
      )
    } finally {
      process.stderr.write = write
    }
    expect(lines).toHaveLength(1)
    expect(lines[0]).not.toMatch(/7400 ?123456/)
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>
    expect(entry).toMatchObject({ level: "WARN", annotations: { phone: "4474****3456", job_id: "j-1" } })
    expect(JSON.stringify(entry.message)).toContain("number 4474****3456 rejected")
  })
})
