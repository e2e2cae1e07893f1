/**
 * The checks and writes the HLR results pass makes on a line's bytes (`HlrResultLines.ts`), each the
 * byte-wise twin of a regular expression of `HlrResultsPass.ts` (a test holds them to it): a cell's
 * range `[start, end)` of `bytes`.
 */

const isDigit = (b: number | undefined): boolean => b !== undefined && b >= 48 && b <= 57

/**
 * The cell as a canonical phone key (`^[1-9]\d{6,14}$`: at most 15 digits, exact as a double), or -1
 * when it is not one as it stands (it may still be one once cleaned: `resultKey`).
 */
export const canonicalKey = (bytes: Uint8Array, start: number, end: number): number => {
  const length = end - start
  if (length < 7 || length > 15) return -1
  const lead = bytes[start]!
  if (lead < 49 || lead > 57) return -1
  let key = lead - 48
  for (let i = start + 1; i < end; i++) {
    const b = bytes[i]!
    if (b < 48 || b > 57) return -1
    key = key * 10 + (b - 48)
  }
  return key
}

/** The number of digits of a canonical key. */
export const keyLength = (key: number): number => {
  let length = 1
  for (let bound = 10; key >= bound && length < 16; bound *= 10) length++
  return length
}

/** Writes the `length` digits of `key` at `at`. */
export const writeKey = (out: Uint8Array, at: number, key: number, length: number): void => {
  let rest = key
  for (let i = at + length - 1; i >= at; i--) {
    const next = Math.floor(rest / 10)
    out[i] = 48 + (rest - next * 10)
    rest = next
  }
}

/** Digits from `at`; the index after them. */
const digits = (bytes: Uint8Array, at: number, end: number): number => {
  let i = at
  while (i < end && isDigit(bytes[i])) i++
  return i
}

/** `^-?\d{1,9}$` */
export const isInteger = (bytes: Uint8Array, start: number, end: number): boolean => {
  if (start >= end) return false
  const from = bytes[start] === 45 ? start + 1 : start
  const to = digits(bytes, from, end)
  return to === end && to > from && to - from <= 9
}

/** `^-?\d+(\.\d+)?([eE][-+]?\d+)?$` */
export const isNumber = (bytes: Uint8Array, start: number, end: number): boolean => {
  if (start >= end) return false
  const from = bytes[start] === 45 ? start + 1 : start
  let at = digits(bytes, from, end)
  if (at === from) return false
  if (at < end && bytes[at] === 46) {
    const fraction = digits(bytes, at + 1, end)
    if (fraction === at + 1) return false
    at = fraction
  }
  if (at < end && (bytes[at] === 101 || bytes[at] === 69)) {
    let exponent = at + 1
    if (exponent < end && (bytes[exponent] === 43 || bytes[exponent] === 45)) exponent++
    const to = digits(bytes, exponent, end)
    if (to === exponent) return false
    at = to
  }
  return at === end
}

/** Exactly `count` digits at `at`. */
const fixed = (bytes: Uint8Array, at: number, count: number, end: number): boolean => {
  if (at + count > end) return false
  for (let i = at; i < at + count; i++) if (!isDigit(bytes[i])) return false
  return true
}

/** `^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$` */
export const isTimestamp = (bytes: Uint8Array, start: number, end: number): boolean => {
  const s = start
  if (
    !fixed(bytes, s, 4, end) ||
    bytes[s + 4] !== 45 ||
    !fixed(bytes, s + 5, 2, end) ||
    bytes[s + 7] !== 45 ||
    !fixed(bytes, s + 8, 2, end) ||
    (bytes[s + 10] !== 84 && bytes[s + 10] !== 32) ||
    !fixed(bytes, s + 11, 2, end) ||
    bytes[s + 13] !== 58 ||
    !fixed(bytes, s + 14, 2, end)
  )
    return false
  let at = s + 16
  if (at < end && bytes[at] === 58) {
    if (!fixed(bytes, at + 1, 2, end)) return false
    at += 3
    if (at < end && bytes[at] === 46) {
      const fraction = digits(bytes, at + 1, end)
      if (fraction === at + 1) return false
      at = fraction
    }
  }
  if (at === end) return true
  if (bytes[at] === 90) return at + 1 === end
  if (bytes[at] !== 43 && bytes[at] !== 45) return false
  if (!fixed(bytes, at + 1, 2, end)) return false
  at += 3
  if (at === end) return true
  if (bytes[at] === 58) at++
  return fixed(bytes, at, 2, end) && at + 2 === end
}
