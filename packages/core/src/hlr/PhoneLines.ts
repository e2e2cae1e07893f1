/**
 * Files of one phone per line, as bytes, for the HLR results pass (`HlrResultsPass.ts`): the
 * canonical numbers of the cleaned file read as keys, and the clean file's lines written from keys.
 */
import type { FileWriter } from "../platform/FileStore.ts"
import { canonicalKey, keyLength, writeKey } from "./HlrResultBytes.ts"

/**
 * The clean file is written in Buffers of 16 KiB: small writes, and nothing of it waits in the JS
 * heap long enough to outlive the young generation's collections.
 */
const CLEAN_CHUNK = 16 * 1024

/** The clean file's lines (a phone each), as bytes. */
export class CleanLines {
  private bytes = Buffer.allocUnsafe(CLEAN_CHUNK)
  private at = 0
  private readonly sink: FileWriter
  constructor(sink: FileWriter) {
    this.sink = sink
  }
  add(key: number): Promise<void> | undefined {
    const length = keyLength(key)
    writeKey(this.bytes, this.at, key, length)
    this.bytes[this.at + length] = 10
    this.at += length + 1
    // Room for the next line (16 digits at most) or a fresh Buffer: the writer may keep this one.
    if (this.at + 17 <= this.bytes.length) return undefined
    return this.sink.write(this.take())
  }
  take(): Buffer {
    const full = this.bytes.subarray(0, this.at)
    this.bytes = Buffer.allocUnsafe(CLEAN_CHUNK)
    this.at = 0
    return full
  }
}

/**
 * The canonical numbers of the cleaned file (one per line; blank and other lines skipped), as keys,
 * a batch per chunk read.
 */
const isSpace = (b: number): boolean => b === 32 || (b >= 9 && b <= 13)

export async function* numberKeys(numbers: AsyncIterable<Uint8Array>): AsyncGenerator<Array<number>> {
  let carry: Buffer | undefined
  const keysOf = (bytes: Buffer, final: boolean): Array<number> => {
    const keys: Array<number> = []
    let start = 0
    for (;;) {
      let nl = bytes.indexOf(10, start)
      if (nl < 0) {
        if (!final) break
        nl = bytes.length
      }
      let from = start
      let to = nl
      while (from < to && isSpace(bytes[from]!)) from++
      while (to > from && isSpace(bytes[to - 1]!)) to--
      const key = canonicalKey(bytes, from, to)
      if (key > 0) keys.push(key)
      start = nl + 1
      if (start >= bytes.length) break
    }
    carry = start < bytes.length ? Buffer.from(bytes.subarray(start)) : undefined
    return keys
  }
  for await (const chunk of numbers) {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (carry !== undefined) bytes = Buffer.concat([carry, bytes])
    yield keysOf(bytes, false)
  }
  if (carry !== undefined) yield keysOf(carry, true)
}
