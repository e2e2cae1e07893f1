/**
 * The HLR results CSV read as bytes (`HlrResultsPass.ts`): a million rows are ~330 MB, and making a
 * string of each line, of its cells and of its COPY rows was most of the pass's work and garbage.
 * A run of complete lines that needs no CSV or COPY care — no quote, backslash or tab, no CR but
 * before a LF, valid UTF-8 — is handed over as the byte ranges of its lines (`ByteLines`), which the
 * pass reads and copies into its COPY rows as bytes. Any other run goes through the string reader
 * (`HlrResultsCsv.ts`: quotes, fields over several lines, escaping) as `TextRecords`. A BOM is dropped,
 * blank lines are skipped either way.
 */
import { isUtf8 } from "node:buffer"
import { MAX_RECORD, runawayQuote, textRecords, type CsvBatch } from "./HlrResultsCsv.ts"

/** Lines as byte ranges of `bytes`: line i is `[bounds[2i], bounds[2i+1])`, without its LF or CR LF. */
export interface ByteLines {
  readonly kind: "bytes"
  readonly bytes: Buffer
  readonly bounds: Int32Array
  readonly count: number
}

export interface TextRecords extends CsvBatch {
  readonly kind: "text"
}

export type ResultBatch = ByteLines | TextRecords

const LF = 10
const CR = 13

/** `text` needs no CSV or COPY care: no quote, backslash or tab; a CR only before a LF; valid UTF-8. */
const plainBytes = (text: Buffer): boolean => {
  if (text.indexOf(0x22) >= 0 || text.indexOf(0x5c) >= 0 || text.indexOf(0x09) >= 0) return false
  for (let cr = text.indexOf(CR); cr >= 0; cr = text.indexOf(CR, cr + 1)) if (text[cr + 1] !== LF) return false
  return isUtf8(text)
}

/** The non-blank lines of `text` (which ends with a LF). */
const byteLines = (text: Buffer): ByteLines => {
  let bounds = new Int32Array(512)
  let count = 0
  let start = 0
  for (let nl = text.indexOf(LF); nl >= 0; nl = text.indexOf(LF, start)) {
    const end = nl > start && text[nl - 1] === CR ? nl - 1 : nl
    if (end > start && !blank(text, start, end)) {
      if (2 * count + 2 > bounds.length) {
        const grown = new Int32Array(bounds.length * 2)
        grown.set(bounds)
        bounds = grown
      }
      bounds[2 * count] = start
      bounds[2 * count + 1] = end
      count++
    }
    start = nl + 1
  }
  return { kind: "bytes", bytes: text, bounds, count }
}

/** Only spaces (the only blank a plain line can hold besides a CR before its LF). */
const blank = (text: Buffer, start: number, end: number): boolean => {
  if (text[start] !== 0x20) return false
  for (let i = start; i < end; i++) if (text[i] !== 0x20) return false
  return true
}

const textBatch = (text: string, final: boolean): { batch: TextRecords; left: string } => {
  const { batch, left } = textRecords(text, final)
  return { batch: { kind: "text", rows: batch.rows, plain: batch.plain }, left }
}

/** The lines of `bytes` up to its last LF as a batch (or none), and the bytes to read again with what follows. */
const linesOf = (bytes: Buffer): { readonly batch: ResultBatch | undefined; readonly left: Buffer | undefined } => {
  const last = bytes.lastIndexOf(LF)
  if (last < 0) return { batch: undefined, left: bytes }
  const lines = bytes.subarray(0, last + 1)
  const rest = bytes.subarray(last + 1)
  if (plainBytes(lines)) {
    const batch = byteLines(lines)
    return { batch: batch.count > 0 ? batch : undefined, left: rest.length > 0 ? rest : undefined }
  }
  const { batch, left } = textBatch(lines.toString("utf8"), false)
  return {
    batch: batch.rows.length > 0 ? batch : undefined,
    left: left !== "" ? Buffer.concat([Buffer.from(left, "utf8"), rest]) : rest.length > 0 ? rest : undefined
  }
}

/**
 * The results body as batches of lines, a batch or two per chunk read. The line cut by a chunk's
 * end is joined to the start of the next chunk on its own: the chunk itself is read where it lies,
 * never copied (hundreds of MB of copies would wait for the garbage collector).
 */
export async function* resultBatches(body: AsyncIterable<Uint8Array>): AsyncGenerator<ResultBatch> {
  // What was read after the last complete line: the start of the next one (or a quoted record still open).
  let carry: Buffer | undefined
  let first = true
  for await (const chunk of body) {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (first) {
      if (carry !== undefined) bytes = Buffer.concat([carry, bytes])
      carry = undefined
      if (bytes.length < 3) {
        carry = Buffer.from(bytes)
        continue
      }
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3)
      first = false
    } else if (carry !== undefined) {
      const nl = carry.indexOf(0x22) < 0 ? bytes.indexOf(LF) : -1
      if (nl < 0) {
        // A quoted record still open, or a line longer than the chunk: read with the whole chunk.
        bytes = Buffer.concat([carry, bytes])
      } else {
        const { batch, left } = linesOf(Buffer.concat([carry, bytes.subarray(0, nl + 1)]))
        if (batch !== undefined) yield batch
        bytes = bytes.subarray(nl + 1)
        // A quote opened on the joined line: what it left is read with the rest of the chunk.
        if (left !== undefined) bytes = Buffer.concat([left, bytes])
      }
      carry = undefined
    }
    const { batch, left } = linesOf(bytes)
    if (batch !== undefined) yield batch
    // Copied: the chunk is not kept alive by a few bytes of it.
    if (left !== undefined) {
      if (left.length > MAX_RECORD) throw runawayQuote()
      carry = Buffer.from(left)
    }
  }
  if (carry === undefined) return
  let text = carry.toString("utf8")
  if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const { batch } = textBatch(text, true)
  if (batch.rows.length > 0) yield batch
}
