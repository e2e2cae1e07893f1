/**
 * Pairs of COPY text lines — a list row and its audit row — kept as bytes with their phone key and
 * given back in key order, as B-trees want them (a sorted COPY of 500k numbers with their audit
 * rows: 1.6 s; the same rows shuffled: 2.8 s).
 *
 * Bytes, not strings: a batch holds up to 50,000 pairs until it is applied, and that many strings
 * (cons-strings, built by concatenation) would outlive V8's young generation — a million-row
 * import grew to 570 MB RSS and twice the CPU time when the lines were kept in arrays. The bytes
 * live in blocks of 256 KiB from a `BlockPool` that the batches of one write share, and a sink
 * reuses its `KeyOrderedLines` from batch to batch (`clear`): a million-row import allocates what
 * its busiest moment needs and leaves no garbage behind.
 */
export class KeyOrderedLines {
  private readonly rows: Lines
  private readonly audit: Lines
  /** The phone's digits left-aligned to 15 (so numbers compare as their text does), and its length. */
  private keys = new Float64Array(1024)
  private lengths = new Uint8Array(1024)
  count = 0

  constructor(pool: BlockPool) {
    this.rows = new Lines(pool)
    this.audit = new Lines(pool)
  }

  /** Adds a pair; `key` is a canonical key as a number, of `digits` digits (7–15); the lines end with "\n". */
  add(key: number, digits: number, row: string, audit: string): void {
    if (this.count === this.keys.length) {
      this.keys = grow(this.keys, new Float64Array(this.count * 2))
      this.lengths = grow(this.lengths, new Uint8Array(this.count * 2))
    }
    this.keys[this.count] = key * 10 ** (15 - digits)
    this.lengths[this.count] = digits
    this.rows.add(row)
    this.audit.add(audit)
    this.count++
  }

  /** The positions of the pairs in key order: byte order of the phones, a prefix before longer numbers. */
  order(): Uint32Array {
    const order = new Uint32Array(this.count)
    for (let i = 0; i < this.count; i++) order[i] = i
    const keys = this.keys
    const lengths = this.lengths
    return order.sort((a, b) => keys[a]! - keys[b]! || lengths[a]! - lengths[b]!)
  }

  /**
   * Writes the list rows (in `order`, else as added) through `write`, in chunks of up to 256 KiB
   * taken from the pool; the chunks go back to the pool once `write`'s promise has settled
   * (a COPY is done with its chunks when it ends).
   */
  writeRows(write: (chunks: Iterable<Uint8Array>) => Promise<void>, order?: Uint32Array): Promise<void> {
    return this.rows.write(this.count, write, order)
  }

  /** The audit rows, in `order`, as `writeRows`. */
  writeAudit(write: (chunks: Iterable<Uint8Array>) => Promise<void>, order: Uint32Array): Promise<void> {
    return this.audit.write(this.count, write, order)
  }

  /** Empties it for the next batch: the blocks go back to the pool, the index arrays are kept. */
  clear(): void {
    this.rows.clear()
    this.audit.clear()
    this.count = 0
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

/** Lines appended to blocks (a line never spans two); line i is bytes starts[i] … ends[i] of block where[i]. */
class Lines {
  private readonly blocks: Array<Buffer> = []
  private block: Buffer | undefined
  private used = 0
  private where = new Uint16Array(1024)
  private starts = new Int32Array(1024)
  private ends = new Int32Array(1024)
  private count = 0
  private readonly pool: BlockPool

  constructor(pool: BlockPool) {
    this.pool = pool
  }

  add(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (this.block === undefined || this.used + line.length * 3 > this.block.length) {
      this.block = line.length * 3 > BLOCK ? Buffer.allocUnsafe(line.length * 3) : this.pool.take()
      this.blocks.push(this.block)
      this.used = 0
    }
    if (this.count === this.starts.length) {
      this.where = grow(this.where, new Uint16Array(this.count * 2))
      this.starts = grow(this.starts, new Int32Array(this.count * 2))
      this.ends = grow(this.ends, new Int32Array(this.count * 2))
    }
    this.where[this.count] = this.blocks.length - 1
    this.starts[this.count] = this.used
    this.used += this.block.write(line, this.used, "utf8")
    this.ends[this.count] = this.used
    this.count++
  }

  async write(
    count: number,
    write: (chunks: Iterable<Uint8Array>) => Promise<void>,
    order?: Uint32Array
  ): Promise<void> {
    const taken: Array<Buffer> = []
    try {
      await write(this.chunks(count, taken, order))
    } finally {
      this.pool.give(taken)
    }
  }

  clear(): void {
    this.pool.give(this.blocks)
    this.blocks.length = 0
    this.block = undefined
    this.used = 0
    this.count = 0
  }

  private *chunks(count: number, taken: Array<Buffer>, order?: Uint32Array): Generator<Uint8Array> {
    let chunk = this.pool.take()
    taken.push(chunk)
    let filled = 0
    for (let i = 0; i < count; i++) {
      const line = order === undefined ? i : order[i]!
      const start = this.starts[line]!
      const end = this.ends[line]!
      if (filled + end - start > chunk.length) {
        yield chunk.subarray(0, filled)
        chunk = end - start > BLOCK ? Buffer.allocUnsafe(end - start) : this.pool.take()
        taken.push(chunk)
        filled = 0
      }
      filled += this.blocks[this.where[line]!]!.copy(chunk, filled, start, end)
    }
    if (filled > 0) yield chunk.subarray(0, filled)
  }
}

const grow = <A extends Uint8Array | Uint16Array | Int32Array | Float64Array>(from: A, to: A): A => {
  to.set(from)
  return to
}

const BLOCK = 256 * 1024
/** Blocks are kept for reuse, up to 256 (64 MiB: a write never has that many in use at once). */
const MAX_FREE_BLOCKS = 256
