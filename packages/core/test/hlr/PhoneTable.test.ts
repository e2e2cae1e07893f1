/** The HLR pass's table of phones: each key once, its flags kept, through growth; 15-digit keys exact. */
import { describe, expect, it } from "vitest"
import { PhoneTable } from "../../src/hlr/PhoneTable.ts"

describe("PhoneTable", () => {
  it("keeps each key's flags, tells new keys from known ones, and grows without losing any", () => {
    const table = new PhoneTable(4)
    const keys: Array<number> = []
    // Keys that share their low 32 bits or their high bits, up to 15 digits.
    for (let i = 0; i < 50_000; i++) keys.push(447700000000 + i * 7919, 999999999999999 - i * 4294967296, 1000000 + i)
    keys.forEach((key, i) => expect(table.mark(key, 1 + (i % 2))).toBe(0))
    expect(table.size).toBe(keys.length)
    keys.forEach((key, i) => expect(table.flags(key)).toBe(1 + (i % 2)))
    expect(table.mark(keys[0]!, 2)).toBe(1)
    expect(table.flags(keys[0]!)).toBe(3)
    expect(table.flags(447700000001)).toBe(0)
    expect(table.size).toBe(keys.length)
  })
})
