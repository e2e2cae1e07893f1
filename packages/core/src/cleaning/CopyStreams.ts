/**
 * The cleaning engine's byte streams: rows travel as bytes, never as one JS string per row, so a
 * million rows of garbage stay in V8's young generation and the heap does not grow with the file.
 *
 * - `CopyBatch`: `seq \t phone \t repeat` COPY rows gathered into buffers, on the way in;
 * - (those buffers go into a `COPY … FROM STDIN` through platform/CopyText.ts's `CopyIn`);
 * - `CopyOutRows` / `mergeBySeq`: seq-ordered `COPY … TO STDOUT` streams read as positions in their
 *   chunks, and merged in seq order (a k-way merge over the partitions);
 * - `ByteOutput` / `OutputBuffer`: bytes or lines handed to a `FileWriter` ~64 KiB at a time.
 *
 * Hot loops: plain code, no allocation per row beyond what the rows need.
 */
import type pg from "pg"
import { copyOut } from "../platform/CopyText.ts"
import type { FileWriter } from "../platform/FileStore.ts"

/** COPY data gathered per partition before it is handed to the connection. */
export const COPY_BATCH_BYTES = 64 * 1024
const OUTPUT_BATCH_CHARS = 64 * 1024
const OUTPUT_BATCH_BYTES = 64 * 1024

/**
 * COPY rows `seq \t phone \t repeat` written straight into bytes: no string per row, so the
 * garbage of a million rows stays in the young generation and the heap does not grow with the file.
 */
export class CopyBatch {
  private full: Array<Buffer> = []
  private buffer = Buffer.allocUnsafe(COPY_BATCH_BYTES)
  private position = 0
  /** Bytes gathered (all buffers). */
  length = 0

  add(seq: number, e164: string, repeat: boolean): void {
    // A row is at most 10 + 1 + 64 + 3 bytes; start a new buffer when it might not fit.
    if (this.position + 96 > this.buffer.length) {
      this.full.push(this.buffer.subarray(0, this.position))
      this.buffer = Buffer.allocUnsafe(COPY_BATCH_BYTES)
      this.position = 0
    }
    const b = this.buffer
    let p = this.position
    let digits = 1
    for (let n = seq; n >= 10; n = (n / 10) | 0) digits++
    let n = seq
    for (let i = p + digits - 1; i >= p; i--) {
      b[i] = 48 + (n % 10)
      n = (n / 10) | 0
    }
    p += digits
    b[p++] = 9
    for (let i = 0; i < e164.length; i++) b[p++] = e164.charCodeAt(i)
    b[p++] = 9
    b[p++] = repeat ? 116 : 102 // t / f
    b[p++] = 10
    this.length += p - this.position
    this.position = p
  }

  /** The rows gathered so far, as one buffer that now belongs to the caller; the batch starts over. */
  take(): Buffer {
    const last = this.buffer.subarray(0, this.position)
    const taken = this.full.length === 0 ? last : Buffer.concat([...this.full, last])
    this.full = []
    this.buffer = Buffer.allocUnsafe(COPY_BATCH_BYTES)
    this.position = 0
    this.length = 0
    return taken
  }
}

/**
 * Rows of a `COPY (SELECT seq, …) TO STDOUT` in order, a chunk at a time, as positions in the
 * chunk's bytes (no string per row): `seq` parsed, the rest of the line — after the first tab,
 * newline included — between `starts[i]` and `ends[i]`.
 */
export class CopyOutRows {
  private readonly iterator: AsyncIterator<Buffer>
  private rest: Buffer | undefined
  private ended = false
  chunk: Buffer = Buffer.alloc(0)
  seqs: Array<number> = []
  starts: Array<number> = []
  ends: Array<number> = []
  index = 0

  constructor(client: pg.PoolClient, sql: string) {
    this.iterator = copyOut(client, sql)[Symbol.asyncIterator]()
  }

  /** Loads the next rows; false when the stream is exhausted. */
  async fill(): Promise<boolean> {
    this.seqs = []
    this.starts = []
    this.ends = []
    this.index = 0
    while (this.seqs.length === 0) {
      if (this.ended) return false
      const next = await this.iterator.next()
      let chunk: Buffer
      if (next.done === true) {
        this.ended = true
        if (this.rest === undefined || this.rest.length === 0) return false
        chunk = Buffer.concat([this.rest, Buffer.from("\n")])
        this.rest = undefined
      } else {
        chunk = this.rest === undefined ? next.value : Buffer.concat([this.rest, next.value])
      }
      let position = 0
      for (;;) {
        const lineEnd = chunk.indexOf(10, position)
        if (lineEnd === -1) break
        let seq = 0
        let i = position
        for (; chunk[i] !== 9; i++) seq = seq * 10 + (chunk[i]! - 48)
        this.seqs.push(seq)
        this.starts.push(i + 1)
        this.ends.push(lineEnd + 1)
        position = lineEnd + 1
      }
      this.chunk = chunk
      this.rest = next.done === true || position === chunk.length ? undefined : chunk.subarray(position)
    }
    return true
  }

  /** The current row's value as text (without the newline). */
  text(): string {
    return this.chunk.toString("latin1", this.starts[this.index]!, this.ends[this.index]! - 1)
  }

  async close(): Promise<void> {
    // Reads what is left, so the connection is ready for its next statement.
    while (!this.ended) {
      const next = await this.iterator.next()
      if (next.done === true) this.ended = true
    }
  }
}

/** The rows of several seq-ordered streams, merged in seq order; `onRow` reads the stream's current row. */
export const mergeBySeq = async (
  streams: ReadonlyArray<CopyOutRows>,
  onRow: (stream: CopyOutRows) => Promise<void> | undefined
): Promise<void> => {
  const live: Array<CopyOutRows> = []
  for (const s of streams) if (await s.fill()) live.push(s)
  while (live.length > 0) {
    let pick = 0
    let pickSeq = live[0]!.seqs[live[0]!.index]!
    for (let i = 1; i < live.length; i++) {
      const s = live[i]!
      const seq = s.seqs[s.index]!
      if (seq < pickSeq) {
        pick = i
        pickSeq = seq
      }
    }
    const stream = live[pick]!
    const waiting = onRow(stream)
    if (waiting !== undefined) await waiting
    stream.index++
    if (stream.index >= stream.seqs.length && !(await stream.fill())) live.splice(pick, 1)
  }
}

/** Bytes gathered and handed to a writer ~64 KiB at a time (each batch a buffer of its own). */
export class ByteOutput {
  private buffer = Buffer.allocUnsafe(OUTPUT_BATCH_BYTES)
  private position = 0
  private readonly writer: FileWriter
  constructor(writer: FileWriter) {
    this.writer = writer
  }
  add(source: Buffer, start: number, end: number): Promise<void> | undefined {
    const length = end - start
    if (this.position + length > this.buffer.length) {
      const full = this.buffer.subarray(0, this.position)
      this.buffer = Buffer.allocUnsafe(Math.max(OUTPUT_BATCH_BYTES, length))
      this.position = 0
      source.copy(this.buffer, 0, start, end)
      this.position = length
      return this.writer.write(full)
    }
    source.copy(this.buffer, this.position, start, end)
    this.position += length
    return undefined
  }
  flush(): Promise<void> {
    const rest = this.buffer.subarray(0, this.position)
    this.buffer = Buffer.allocUnsafe(OUTPUT_BATCH_BYTES)
    this.position = 0
    return rest.length === 0 ? Promise.resolve() : this.writer.write(rest)
  }
}

/** Buffers output lines and hands them to a writer in batches. */
export class OutputBuffer {
  private text = ""
  private readonly writer: FileWriter
  constructor(writer: FileWriter) {
    this.writer = writer
  }
  add(line: string): Promise<void> | undefined {
    this.text += line
    if (this.text.length < OUTPUT_BATCH_CHARS) return undefined
    const text = this.text
    this.text = ""
    return this.writer.write(text)
  }
  flush(): Promise<void> {
    const text = this.text
    this.text = ""
    return text === "" ? Promise.resolve() : this.writer.write(text)
  }
}
