/**
 * The results read as bytes (`HlrResultLines.ts`, `HlrResultBytes.ts`) give what the string reader
 * gives, whatever the chunks: the same records and cells, the same numbers and typed values.
 */
import { describe, expect, it } from "vitest"
import { canonicalKey, isInteger, isNumber, isTimestamp, keyLength, writeKey } from "../../src/hlr/HlrResultBytes.ts"
import { resultBatches } from "../../src/hlr/HlrResultLines.ts"
import { splitCsvRecord, textRecords } from "../../src/hlr/HlrResultsCsv.ts"

/** Every record as its cells, by the byte reader fed `text` cut into chunks at `cuts`. */
const read = async (bytes: Uint8Array, cuts: ReadonlyArray<number>): Promise<Array<Array<string>>> => {
  async function* chunks() {
    let from = 0
    for (const cut of [...cuts, bytes.length]) {
      yield bytes.slice(from, cut)
      from = cut
    }
  }
  const records: Array<Array<string>> = []
  for await (const batch of resultBatches(chunks())) {
    if (batch.kind === "bytes") {
      for (let i = 0; i < batch.count; i++) {
        const line = batch.bytes.toString("utf8", batch.bounds[2 * i], batch.bounds[2 * i + 1])
        records.push(splitCsvRecord(line))
      }
    } else for (const row of batch.rows) records.push(typeof row === "string" ? splitCsvRecord(row) : row)
  }
  return records
}

/** The string reader over the whole text at once: the reference. */
const reference = (text: string): Array<Array<string>> =>
  textRecords(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, true).batch.rows.map((row) =>
    typeof row === "string" ? splitCsvRecord(row) : row
  )

/** A deterministic generator (the same cases on every run). */
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

const PIECES = [
  "447700900001",
  "LIVE",
  "dead",
  " padded ",
  "",
  "Telefónica",
  '"Three, ""UK"""',
  '"two\nlines"',
  "x\\y",
  "a\tb",
  "+44 7700 900002",
  "\u00a0nbsp"
]

const randomFile = (next: () => number): string => {
  const lines: Array<string> = []
  const rows = 1 + Math.floor(next() * 12)
  for (let r = 0; r < rows; r++) {
    const cells = Array.from({ length: 1 + Math.floor(next() * 5) }, () => PIECES[Math.floor(next() * PIECES.length)]!)
    lines.push(cells.join(","))
    if (next() < 0.1) lines.push(next() < 0.5 ? "" : "   ")
  }
  const eol = next() < 0.3 ? "\r\n" : "\n"
  const bom = next() < 0.2 ? "\ufeff" : ""
  return bom + lines.join(eol) + (next() < 0.7 ? eol : "")
}

describe("HLR results read as bytes", () => {
  it("reads the records the string reader reads, wherever the chunks are cut", async () => {
    const next = random(7)
    for (let file = 0; file < 300; file++) {
      const text = randomFile(next)
      const bytes = new TextEncoder().encode(text)
      const cuts = Array.from({ length: Math.floor(next() * 6) }, () => Math.floor(next() * bytes.length)).sort(
        (a, b) => a - b
      )
      expect(await read(bytes, cuts), JSON.stringify({ text, cuts })).toEqual(reference(text))
    }
  })

  it("reads a plain file as byte lines: CRLF, a BOM and blank lines dropped", async () => {
    const text = "\ufeffa,b\r\n\r\n1,2\r\n   \r\n3,4"
    const bytes = new TextEncoder().encode(text)
    const kinds: Array<string> = []
    async function* whole() {
      yield bytes
    }
    for await (const batch of resultBatches(whole())) kinds.push(batch.kind)
    expect(kinds).toEqual(["bytes", "text"]) // the last line, without its line end, is read at the end
    expect(await read(bytes, [1, 2, 9])).toEqual([
      ["a", "b"],
      ["1", "2"],
      ["3", "4"]
    ])
  })

  it("fails on a runaway quote instead of reading the rest of the file as one cell", async () => {
    const text = `a,b\n"${"x".repeat(1024 * 1024 + 10)}\n`
    await expect(read(new TextEncoder().encode(text), [4, 70_000, 500_000])).rejects.toThrow("runaway quote")
  })

  it("checks numbers, integers and timestamps as the expressions do", () => {
    const INTEGER = /^-?\d{1,9}$/
    const NUMBER = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/
    const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/
    const CANONICAL = /^[1-9]\d{6,14}$/
    const samples = [
      "",
      "0",
      "-",
      "-1",
      "123456789",
      "1234567890",
      "1.5",
      "1.",
      ".5",
      "1e5",
      "1E-5",
      "1e",
      "-2.5e+10",
      "12a",
      "2025-05-01T10:00:00Z",
      "2025-05-01 10:00",
      "2025-05-01T10:00:00.123+02:00",
      "2025-05-01T10:00:00+0200",
      "2025-05-01T10:00:00+02",
      "2025-05-01T10:00:00.Z",
      "2025-05-01T10:00:0",
      "2025-5-01T10:00:00Z",
      "2025-05-01T10:00:00+02:0",
      "2025-05-01T10:00Zx",
      "447700900001",
      "0447700900001",
      "1234567",
      "123456",
      "123456789012345",
      "1234567890123456",
      "44770090000a"
    ]
    const next = random(11)
    const alphabet = "0123456789-+.:eETZ Z"
    for (let i = 0; i < 3000; i++) {
      const base = samples[Math.floor(next() * samples.length)]!
      const at = Math.floor(next() * (base.length + 1))
      samples.push(
        base.slice(0, at) + alphabet[Math.floor(next() * alphabet.length)] + base.slice(at + (next() < 0.5 ? 1 : 0))
      )
    }
    for (const sample of samples) {
      // Inside a longer line, as the pass reads them: bytes on either side must not count.
      const bytes = new TextEncoder().encode(`9,${sample},9`)
      const [from, to] = [2, 2 + sample.length]
      expect(isInteger(bytes, from, to), sample).toBe(INTEGER.test(sample))
      expect(isNumber(bytes, from, to), sample).toBe(NUMBER.test(sample))
      expect(isTimestamp(bytes, from, to), sample).toBe(TIMESTAMP.test(sample))
      expect(canonicalKey(bytes, from, to) >= 0, sample).toBe(CANONICAL.test(sample))
      if (CANONICAL.test(sample)) {
        const key = canonicalKey(bytes, from, to)
        expect(key).toBe(Number(sample))
        const out = new Uint8Array(keyLength(key))
        writeKey(out, 0, key, out.length)
        expect(new TextDecoder().decode(out)).toBe(sample)
      }
    }
  })
})
