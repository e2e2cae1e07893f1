/**
 * A Bloom filter of canonical phone keys (E.164 digits): "no" is certain, "maybe" is sometimes
 * wrong. Fixed size, so memory does not grow with the number of keys.
 *
 * Blocked: a key's 4 bits lie in one 64-byte block (one cache line), so a look-up costs one
 * memory access instead of four — in a million-row job beside a busy database the filter is
 * rarely in cache, and that access is most of its cost (measured on the project's machine, 1M
 * keys into 2 MiB: ~60 ms blocked against ~105 ms for four independent bits).
 *
 * Used where a bulk job wants to skip exact work for the rows that certainly do not need it:
 * CSV cleaning flags possible repeats in a file (only those are checked in SQL), and a large list
 * write marks the numbers that are certainly on no list (their three primary-key probes are skipped).
 *
 * False alarms at the default 8 MiB (measured): ~0.02 % at 1M keys, ~0.3 % at 4M, ~0.6 % at 5M,
 * ~4 % at 10M; at 2 MiB ~0.35 % at 1M.
 */
export class PhoneKeyFilter {
  private readonly words: Int32Array
  private readonly blockMask: number

  /** `log2Bits`: the filter's size, 2^log2Bits bits (23 = 1 MiB … 29 = 64 MiB; default 8 MiB). */
  constructor(log2Bits = 26) {
    const bits = Math.max(23, Math.min(29, Math.trunc(log2Bits)))
    this.words = new Int32Array(2 ** (bits - 5))
    // Blocks of 512 bits (16 words); at most 2^20 of them, so the block index uses h1's low 20 bits.
    this.blockMask = 2 ** (bits - 9) - 1
  }

  /** Records `e164` (canonical digits); true when it may have been recorded before. */
  markAndTest(e164: string): boolean {
    return this.markAndTestKey(Number(e164))
  }

  /** `markAndTest` of a canonical key as a number (15 digits fit a double exactly). */
  markAndTestKey(key: number): boolean {
    const lo = key >>> 0
    const hi = (key - lo) / 4294967296
    let h1 = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b)
    h1 ^= h1 >>> 13
    h1 = Math.imul(h1, 0xc2b2ae35)
    h1 ^= h1 >>> 16
    let h2 = Math.imul(h1 ^ hi ^ 0x27d4eb2f, 0x165667b1)
    h2 ^= h2 >>> 15
    h2 = Math.imul(h2, 0x85ebca6b)
    h2 ^= h2 >>> 13
    const block = (h1 & this.blockMask) << 4
    // Four 9-bit positions in the block: three from h2, one from h1's top bits (not in the index).
    const a = this.set(block, h2 & 511)
    const b = this.set(block, (h2 >>> 9) & 511)
    const c = this.set(block, (h2 >>> 18) & 511)
    const d = this.set(block, h1 >>> 23)
    return a && b && c && d
  }

  /** Sets a bit of a block; true when it was already set. */
  private set(block: number, bit: number): boolean {
    const word = block + (bit >>> 5)
    const mask = 1 << (bit & 31)
    const value = this.words[word]!
    if ((value & mask) !== 0) return true
    this.words[word] = value | mask
    return false
  }
}
