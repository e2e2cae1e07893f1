/**
 * A set of canonical phone keys with a few flag bits each, flat in memory: open addressing over one
 * `Uint32Array`, two words a slot — the key's low 32 bits, then its high bits (a canonical key has
 * at most 15 digits: under 2^50, so 18 bits) with an occupied bit and the flags above them. 8 bytes
 * a slot at a load of ½ or less, against ~60 a number for a `Set` of strings, and no garbage; a slot
 * is one memory access (the table of a million numbers is 16 MiB: each look-up is a cache miss, so
 * key and flags live side by side). The HLR results pass uses it to keep the first row per phone
 * (`HlrResultsPass.ts`).
 */
const TWO_32 = 4294967296
const HIGH = 0x3ffff // the key's high 18 bits
const OCCUPIED = 0x40000
const FLAGS_SHIFT = 19

export class PhoneTable {
  private words: Uint32Array
  private mask: number
  private count = 0

  constructor(expected = 1 << 16) {
    let capacity = 1 << 16
    while (capacity < expected * 2) capacity *= 2
    this.words = new Uint32Array(capacity * 2)
    this.mask = capacity - 1
  }

  get size(): number {
    return this.count
  }

  private static hash(low: number, high: number): number {
    let h = Math.imul(low ^ Math.imul(high, 0x9e3779b1), 0x85ebca6b)
    h ^= h >>> 15
    return Math.imul(h, 0xc2b2ae35) ^ (h >>> 13)
  }

  /** The slot (word index) of a key's halves: where it is, or the empty slot it would take. */
  private slot(low: number, high: number): number {
    const words = this.words
    let at = PhoneTable.hash(low, high) & this.mask
    for (;;) {
      const i = at * 2
      const top = words[i + 1]!
      if ((top & OCCUPIED) === 0 || (words[i] === low && (top & HIGH) === high)) return i
      at = (at + 1) & this.mask
    }
  }

  private grow(): void {
    const old = this.words
    this.words = new Uint32Array(old.length * 2)
    this.mask = old.length - 1
    for (let i = 0; i < old.length; i += 2) {
      const top = old[i + 1]!
      if ((top & OCCUPIED) === 0) continue
      const at = this.slot(old[i]!, top & HIGH)
      this.words[at] = old[i]!
      this.words[at + 1] = top
    }
  }

  /** The flags of `key` (0 when absent). `key` is a canonical phone key as a number (never 0). */
  flags(key: number): number {
    const at = this.slot(key >>> 0, Math.floor(key / TWO_32))
    return this.words[at + 1]! >>> FLAGS_SHIFT
  }

  /** Sets `flags` on `key`, adding it; the flags it had before (0 when it was absent). */
  mark(key: number, flags: number): number {
    const low = key >>> 0
    const high = Math.floor(key / TWO_32)
    let at = this.slot(low, high)
    let top = this.words[at + 1]!
    if ((top & OCCUPIED) === 0) {
      if ((this.count + 1) * 4 > this.words.length) {
        this.grow()
        at = this.slot(low, high)
      }
      top = high | OCCUPIED
      this.words[at] = low
      this.count++
    }
    const had = top >>> FLAGS_SHIFT
    this.words[at + 1] = top | (flags << FLAGS_SHIFT)
    return had
  }
}
