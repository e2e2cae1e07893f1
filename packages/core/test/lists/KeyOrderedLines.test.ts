/**
 * The lines a batch copies straight to a list come back in the order of the list's key (byte order
 * of the phone text, as `COLLATE "C"` sorts it), whatever their lengths, with every byte intact.
 */
import { describe, expect, it } from "vitest"
import { BlockPool, KeyOrderedLines } from "../../src/lists/KeyOrderedLines.ts"

const text = async (lines: KeyOrderedLines, which: "rows" | "audit", order?: Uint32Array): Promise<string> => {
  const parts: Array<string> = []
  const collect = async (chunks: Iterable<Uint8Array>) => {
    for (const chunk of chunks) parts.push(Buffer.from(chunk).toString("utf8"))
  }
  if (which === "rows") await lines.writeRows(collect, order)
  else await lines.writeAudit(collect, order!)
  return parts.join("")
}

describe("KeyOrderedLines", () => {
  it("orders numbers of different lengths as their text sorts, and keeps non-ASCII bytes", async () => {
    const lines = new KeyOrderedLines(new BlockPool())
    const phones = ["4480", "447", "44700", "4470", "33612345678", "4479999999999", "447"]
    for (const [i, phone] of phones.entries())
      lines.add(Number(phone), phone.length, `${phone}\trow ${i} é\n`, `${phone}\taudit ${i}\n`)
    const order = lines.order()
    const sorted = [...phones].sort()
    expect(
      (await text(lines, "rows", order))
        .split("\n")
        .slice(0, -1)
        .map((l) => l.split("\t")[0])
    ).toEqual(sorted)
    expect(
      (await text(lines, "audit", order))
        .split("\n")
        .slice(0, -1)
        .map((l) => l.split("\t")[0])
    ).toEqual(sorted)
    expect(await text(lines, "rows")).toBe(phones.map((p, i) => `${p}\trow ${i} é\n`).join(""))
  })

  it("holds more lines than one block, and is empty again after clear", async () => {
    const lines = new KeyOrderedLines(new BlockPool())
    const phones = Array.from({ length: 30_000 }, (_, i) => String(447_000_000_000 + ((i * 7_919) % 30_000) * 1_000))
    const long = "x".repeat(20)
    for (const phone of phones) lines.add(Number(phone), phone.length, `${phone}\t${long}\n`, `${phone}\n`)
    const rows = await text(lines, "rows", lines.order())
    expect(rows.length).toBe(30_000 * (12 + 1 + 20 + 1))
    expect(
      rows
        .split("\n")
        .slice(0, -1)
        .map((l) => l.split("\t")[0])
    ).toEqual([...phones].sort())
    lines.clear()
    expect(lines.count).toBe(0)
    lines.add(447700900123, 12, "447700900123\tagain\n", "447700900123\n")
    expect(await text(lines, "rows", lines.order())).toBe("447700900123\tagain\n")
  })
})
