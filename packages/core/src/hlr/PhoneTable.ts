/**
 * A set of canonical phone keys with a few flag bits each, flat in memory: open addressing over a
 * `Float64Array` (a canonical key has at most 15 digits, so it is exact as a double) and a
 * `Uint8Array` of flags — 18 bytes a number at most, against ~60 for a `Set` of strings, and no
 * garbage. The HLR results pass uses it to keep the first row per phone (`HlrResultsPass.ts`).
 */
export class PhoneTable {
  private keys: Float64Array
  private bits: Uint8Array
  private mask: number
  private count = 0

  constructor(expected = 1 << 16) {
    let capacity = 1 << 16
    while (capacity < expected * 2) capacity *= 2
    this.keys = new Float64Array(capacity)
    this.bits = new Uint8Array(capacity)
    this.mask = capacity - 1
  }

  get size(): number {
    return this.count
  }

  private static hash(key: number): number {
    const low = (key % 4294967296) | 0
    const high = (key / 4294967296) | 0
    let h = Math.imul(low ^ Math.imul(high, 0x9e3779b1), 0x85ebca6b)
    h ^= h >>> 15
    return Math.imul(h, 0xc2b2ae35) ^ (h >>> 13)
  }

  /** The slot of `key`: where it is, or the empty slot it would take. */
  private slot(key: number): number {
    let at = PhoneTable.hash(key) & this.mask
    for (;;) {
      const k = this.keys[at]!
      if (k === key || k === 0) return at
      at = (at + 1) & this.mask
    }
  }

  private grow(): void {
    const keys = this.keys
    const bits = this.bits
    this.keys = new Float64Array(keys.length * 2)
    this.bits = new Uint8Array(keys.length * 2)
    this.mask = this.keys.length - 1
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!
      if (k === 0) continue
      const at = this.slot(k)
      this.keys[at] = k
      this.bits[at] = bits[i]!
    }
  }

  /** The flags of `key` (0 when absent). `key` is a canonical phone key as a number (never 0). */
  flags(key: number): number {
    return this.bits[this.slot(key)]!
  }

  /** Sets `flags` on `key`, adding it; the flags it had before (0 when it was absent). */
  mark(key: number, flags: number): number {
    let at = this.slot(key)
    if (this.keys[at] === 0) {
      if ((this.count + 1) * 2 > this.keys.length) {
        this.grow()
        at = this.slot(key)
      }
      this.keys[at] = key
      this.count++
    }
    const had = this.bits[at]!
    this.bits[at] = had | flags
    return had
  }
}
