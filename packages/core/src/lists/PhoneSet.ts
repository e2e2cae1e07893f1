/**
 * A set of canonical phone keys, for a list write's batch to notice a repeated number
 * (ListWriteSink.ts). Keys are the canonical digits as a number (15 digits fit a double exactly) in
 * an open-addressing table over a Float64Array: a million-row import keeps no object alive per row
 * (a Set of strings kept the young generation growing).
 */
export class PhoneSet {
  private readonly slots: Float64Array
  private readonly mask: number

  constructor(capacity: number) {
    let size = 1024
    while (size < capacity * 2) size *= 2
    this.slots = new Float64Array(size)
    this.mask = size - 1
  }

  /** Adds a canonical key; false when it was already there. */
  add(key: number): boolean {
    let h = Math.imul((key % 2147483629) | 0, 0x9e3779b1)
    h ^= h >>> 15
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const slot = this.slots[i]!
      if (slot === 0) {
        this.slots[i] = key
        return true
      }
      if (slot === key) return false
    }
  }

  /** Calls `f` with each key. */
  forEach(f: (key: number) => void): void {
    for (const slot of this.slots) if (slot !== 0) f(slot)
  }
}
