/**
 * The rows a batch copies straight to a list come back in the order of the list's key (byte order
 * of the phone text, as `COLLATE "C"` sorts it), whatever their lengths, with every byte intact; their
 * audit rows are made from the same bytes: phone, action and list, reason and source, actor.
 */
import { describe, expect, it } from "vitest"
import { BlockPool, KeyOrderedLines } from "../../src/lists/KeyOrderedLines.ts"

/** A row as `directLine` writes it: phone, ip, os_version, browser_version, reason, source, sticky. */
const row = (phone: string, reason: string, source: string) =>
  `${phone}\t10.0.0.1\t\\N\tChrome\t${reason}\t${source}\tt\n`

const collect = async (writing: (write: (chunks: Iterable<Uint8Array>) => Promise<void>) => Promise<void>) => {
  const parts: Array<string> = []
  await writing(async (chunks) => {
    for (const chunk of chunks) parts.push(Buffer.from(chunk).toString("utf8"))
  })
  return parts.join("")
}

const BETWEEN = Buffer.from("\tadd\tblacklist\t")
const AFTER = Buffer.from("\tcli\n")

describe("KeyOrderedLines", () => {
  it("orders numbers of different lengths as their text sorts, and makes each audit row from its row", async () => {
    const lines = new KeyOrderedLines(new BlockPool())
    const phones = ["4480", "447", "44700", "4470", "33612345678", "4479999999999", "447"]
    for (const [i, phone] of phones.entries()) lines.add(Number(phone), phone.length, row(phone, `R${i} é`, "a\\tb"))
    const order = lines.order()
    const sorted = [...phones].sort()
    const rows = await collect((write) => lines.writeRows(write, order))
    expect(
      rows
        .split("\n")
        .slice(0, -1)
        .map((l) => l.split("\t")[0])
    ).toEqual(sorted)
    const audit = await collect((write) => lines.writeAudit(write, order, BETWEEN, AFTER))
    const auditRows = audit.split("\n").slice(0, -1)
    expect(auditRows.map((l) => l.split("\t")[0])).toEqual(sorted)
    expect(auditRows).toContain("33612345678\tadd\tblacklist\tR4 é\ta\\tb\tcli")
    expect(await collect((write) => lines.writeRows(write))).toBe(
      phones.map((p, i) => row(p, `R${i} é`, "a\\tb")).join("")
    )
  })

  it("holds more rows than one block, and is empty again after clear", async () => {
    const lines = new KeyOrderedLines(new BlockPool())
    const phones = Array.from({ length: 30_000 }, (_, i) => String(447_000_000_000 + ((i * 7_919) % 30_000) * 1_000))
    for (const phone of phones) lines.add(Number(phone), phone.length, row(phone, "x".repeat(20), "\\N"))
    const order = lines.order()
    const rows = await collect((write) => lines.writeRows(write, order))
    expect(rows.length).toBe(phones.length * row(phones[0]!, "x".repeat(20), "\\N").length)
    expect(
      rows
        .split("\n")
        .slice(0, -1)
        .map((l) => l.split("\t")[0])
    ).toEqual([...phones].sort())
    const audit = await collect((write) => lines.writeAudit(write, order, BETWEEN, AFTER))
    expect(audit.split("\n").length - 1).toBe(30_000)
    expect(audit.startsWith(`${[...phones].sort()[0]}\tadd\tblacklist\t${"x".repeat(20)}\t\\N\tcli\n`)).toBe(true)
    lines.clear()
    expect(lines.count).toBe(0)
    lines.add(447700900123, 12, row("447700900123", "again", "\\N"))
    expect(await collect((write) => lines.writeRows(write, lines.order()))).toBe(row("447700900123", "again", "\\N"))
  })
})
