/**
 * The rows a batch copies straight to a list (`directLine` in StageLines.ts: phone, ip,
 * os_version, browser_version, reason, source, sticky — COPY text, tab-separated), kept as bytes with
 * their phone key and given back in key order, as B-trees want them (a sorted COPY of 500k numbers
 * with their audit rows: 1.6 s; the same rows shuffled: 2.8 s) — and their audit rows, made from
 * the same bytes when they are written.
 *
 * Bytes, not strings: a batch holds up to 50,000 rows until it is applied, and that many strings
 * (cons-strings, built by concatenation) would outlive V8's young generation — a million-row
 * import grew to 570 MB RSS and twice the CPU time when the lines were kept in arrays. The bytes
 * live in blocks of 256 KiB from a `BlockPool` that the batches of one write share, and a sink
 * reuses its `KeyOrderedLines` from batch to batch (`clear`): a million-row import allocates what
 * its busiest moment needs and leaves no garbage behind.
 */
export class KeyOrderedLines {
  private readonly pool: BlockPool
  private readonly blocks: Array<Buffer> = []
  private block: Buffer | undefined
  private used = 0
  /** Line i: bytes starts[i] … ends[i] of block where[i] (a line never spans two blocks). */
  private where = new Uint16Array(1024)
  private starts = new Int32Array(1024)
  private ends = new Int32Array(1024)
  /** The phone's digits left-aligned to 15 (so numbers compare as their text does), and its length. */
  private keys = new Float64Array(1024)
  private lengths = new Uint8Array(1024)
  count = 0

  constructor(pool: BlockPool) {
    this.pool = pool
  }

  /** Adds a row; `key` is its canonical key as a number, of `digits` digits (7–15); `row` ends with "\n". */
  add(key: number, digits: number, row: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (this.block === undefined || this.used + row.length * 3 > this.block.length) {
      this.block = row.length * 3 > BLOCK ? Buffer.allocUnsafe(row.length * 3) : this.pool.take()
      this.blocks.push(this.block)
      this.used = 0
    }
    if (this.count === this.keys.length) {
      const size = this.count * 2
      this.where = grow(this.where, new Uint16Array(size))
      this.starts = grow(this.starts, new Int32Array(size))
      this.ends = grow(this.ends, new Int32Array(size))
      this.keys = grow(this.keys, new Float64Array(size))
      this.lengths = grow(this.lengths, new Uint8Array(size))
    }
    this.keys[this.count] = key * 10 ** (15 - digits)
    this.lengths[this.count] = digits
    this.where[this.count] = this.blocks.length - 1
    this.starts[this.count] = this.used
    this.used += this.block.write(row, this.used, "utf8")
    this.ends[this.count] = this.used
    this.count++
  }

  /** Whether one of the rows is of one of `phones` (canonical keys). */
  containsAny(phones: ReadonlyArray<string> | undefined): boolean {
    if (phones === undefined || phones.length === 0 || this.count === 0) return false
    const wanted = new Set(phones.map(Number))
    for (let i = 0; i < this.count; i++) {
      if (wanted.has(this.keys[i]! / 10 ** (15 - this.lengths[i]!))) return true
    }
    return false
  }

  /** The positions of the rows in key order: byte order of the phones, a prefix before longer numbers. */
  order(): Uint32Array {
    const order = new Uint32Array(this.count)
    for (let i = 0; i < this.count; i++) order[i] = i
    const keys = this.keys
    const lengths = this.lengths
    return order.sort((a, b) => keys[a]! - keys[b]! || lengths[a]! - lengths[b]!)
  }

  /**
   * Writes the rows (in `order`, else as added) through `write`, in chunks of up to 256 KiB taken
   * from the pool; the chunks go back to the pool once `write`'s promise has settled (a COPY is done
   * with its chunks when it ends).
   */
  writeRows(write: (chunks: Iterable<Uint8Array>) => Promise<void>, order?: Uint32Array): Promise<void> {
    return this.write(write, (line, chunk, at) => this.copyLine(line, chunk, at), order, 0)
  }

  /**
   * Writes each row's audit row, in `order`: its phone, `between`, its reason and source (the 5th
   * and 6th fields, with the tab between them), `after` — e.g. `\tadd\tblacklist\t` and
   * `\t<actor>\n` give `list_audit (custom_variable_1, action, to_list, reason, source, actor)`.
   */
  writeAudit(
    write: (chunks: Iterable<Uint8Array>) => Promise<void>,
    order: Uint32Array,
    between: Buffer,
    after: Buffer
  ): Promise<void> {
    const copy = (line: number, chunk: Buffer, at: number) => this.copyAudit(line, chunk, at, between, after)
    return this.write(write, copy, order, between.length + after.length)
  }

  /** Empties it for the next batch: the blocks go back to the pool, the index arrays are kept. */
  clear(): void {
    this.pool.give(this.blocks)
    this.blocks.length = 0
    this.block = undefined
    this.used = 0
    this.count = 0
  }

  private async write(
    write: (chunks: Iterable<Uint8Array>) => Promise<void>,
    copy: (line: number, chunk: Buffer, at: number) => number,
    order: Uint32Array | undefined,
    extra: number
  ): Promise<void> {
    const taken: Array<Buffer> = []
    try {
      await write(this.chunks(copy, order, extra, taken))
    } finally {
      this.pool.give(taken)
    }
  }

  /** Lines copied into chunks; `copy` makes at most a line's bytes + `extra` of output from it. */
  private *chunks(
    copy: (line: number, chunk: Buffer, at: number) => number,
    order: Uint32Array | undefined,
    extra: number,
    taken: Array<Buffer>
  ): Generator<Uint8Array> {
    let chunk = this.pool.take()
    taken.push(chunk)
    let filled = 0
    for (let i = 0; i < this.count; i++) {
      const line = order === undefined ? i : order[i]!
      const most = this.ends[line]! - this.starts[line]! + extra
      if (filled + most > chunk.length) {
        yield chunk.subarray(0, filled)
        chunk = most > BLOCK ? Buffer.allocUnsafe(most) : this.pool.take()
        taken.push(chunk)
        filled = 0
      }
      filled += copy(line, chunk, filled)
    }
    if (filled > 0) yield chunk.subarray(0, filled)
  }

  private copyLine(line: number, chunk: Buffer, at: number): number {
    return this.blocks[this.where[line]!]!.copy(chunk, at, this.starts[line]!, this.ends[line]!)
  }

  private copyAudit(line: number, chunk: Buffer, at: number, between: Buffer, after: Buffer): number {
    const bytes = this.blocks[this.where[line]!]!
    const start = this.starts[line]!
    // Tabs only separate fields: COPY text escapes a tab inside a value as "\t".
    let i = start
    while (bytes[i] !== 9) i++
    const phoneEnd = i
    let tabs = 1
    while (tabs < 4) if (bytes[++i] === 9) tabs++
    const reasonStart = i + 1
    while (tabs < 6) if (bytes[++i] === 9) tabs++
    let n = bytes.copy(chunk, at, start, phoneEnd)
    n += between.copy(chunk, at + n)
    n += bytes.copy(chunk, at + n, reasonStart, i)
    n += after.copy(chunk, at + n)
    return n
  }
}

/** Blocks of 256 KiB, reused by the batches of one write. */
export class BlockPool {
  private readonly free: Array<Buffer> = []

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(BLOCK)
  }

  give(blocks: ReadonlyArray<Buffer>): void {
    for (const block of blocks) if (this.free.length < MAX_FREE_BLOCKS && block.length === BLOCK) this.free.push(block)
  }
}

const grow = <A extends Uint8Array | Uint16Array | Int32Array | Float64Array>(from: A, to: A): A => {
  to.set(from)
  return to
}

const BLOCK = 256 * 1024
/** Blocks are kept for reuse, up to 256 (64 MiB: a write never has that many in use at once). */
const MAX_FREE_BLOCKS = 256
