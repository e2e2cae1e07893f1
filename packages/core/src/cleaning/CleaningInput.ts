/**
 * Reading an operator's file for the cleaning engine: the bytes decoded to text (binary and UTF-16
 * files refused), the dialect sniffed from the first characters, and every data record handed on
 * with its seq (its position among the data rows), a chunk at a time so the caller can apply
 * backpressure between chunks. Both passes over the file (the numbers, then the optional annotated
 * and rejects files) read it through `forEachDataRecord`, so their seq numbers agree.
 */
import { UnreadableFile, ValidationError } from "../platform/Errors.ts"
import { CsvReader, isEmptyRecord, sniffDialect, type Dialect, type SniffOptions } from "./CsvDialect.ts"

/** Decoded characters read before the dialect is decided. */
const SAMPLE_CHARS = 64 * 1024

/** The run was interrupted by its `signal` (worker stopping, job cancelled). */
export class Aborted extends Error {
  constructor() {
    super("the cleaning run was interrupted")
  }
}

/** The file as text: BOM dropped, bytes that are not UTF-8 replaced (as the original decoded); binary files refused. */
export async function* decodedText(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: false })
  let first = true
  for await (const chunk of source) {
    if (signal?.aborted) throw new Aborted()
    if (first && chunk.length >= 2) {
      first = false
      if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff)) {
        throw new UnreadableFile({ message: "the file is UTF-16 text: save it as UTF-8 CSV" })
      }
    }
    if (chunk.indexOf(0) !== -1) {
      throw new UnreadableFile({ message: "the file is not a CSV text file (it contains binary data)" })
    }
    const text = decoder.decode(chunk, { stream: true })
    if (text !== "") yield text
  }
  const tail = decoder.decode()
  if (tail !== "") yield tail
}

/**
 * Calls `onRecord(cells, seq)` for each data record (header skipped, empty records skipped), in
 * file order. Both passes go through here, so their seq numbers agree.
 */
export const forEachDataRecord = async (
  texts: AsyncIterable<string>,
  prefix: string,
  dialect: Dialect,
  phoneIndex: number,
  onRecord: (cells: Array<string>, seq: number) => void,
  afterChunk: () => Promise<void> | undefined
): Promise<number> => {
  const reader = new CsvReader(dialect)
  let skipHeader = dialect.hasHeader
  let seq = 0
  const handle = (cells: Array<string>) => {
    if (skipHeader) {
      skipHeader = false
      return
    }
    const phone = cells[phoneIndex]
    // Only a record whose phone cell is empty or starts blank can be an empty record (checked cheaply first).
    if ((phone === undefined || phone.length === 0 || phone.charCodeAt(0) <= 32) && isEmptyRecord(cells)) return
    onRecord(cells, seq++)
  }
  if (prefix !== "") {
    reader.feed(prefix, handle)
    const waiting = afterChunk()
    if (waiting !== undefined) await waiting
  }
  for await (const text of texts) {
    reader.feed(text, handle)
    const waiting = afterChunk()
    if (waiting !== undefined) await waiting
  }
  reader.end(handle)
  const waiting = afterChunk()
  if (waiting !== undefined) await waiting
  return seq
}

/** The file's dialect, from its first characters, and the text read to decide it. */
export interface SniffedFile {
  readonly dialect: Dialect
  /** The characters read for the sniff, to be read again as the file's start. */
  readonly sample: string
  /** The rest of the file (nothing when the sample took all of it: a finished generator stays finished). */
  readonly rest: AsyncIterable<string>
}

/** Reads the first `SAMPLE_CHARS` of `texts` and sniffs the dialect; `ValidationError` for an unknown phone column. */
export const sniffFile = async (texts: AsyncIterator<string>, options: SniffOptions): Promise<SniffedFile> => {
  let sample = ""
  while (sample.length < SAMPLE_CHARS) {
    const next = await texts.next()
    if (next.done === true) break
    sample += next.value
  }
  const sniffed = sniffDialect(sample, options)
  if (sniffed instanceof ValidationError) throw sniffed
  return { dialect: sniffed, sample, rest: { [Symbol.asyncIterator]: () => texts } }
}
