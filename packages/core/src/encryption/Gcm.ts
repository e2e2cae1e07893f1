/**
 * AES-GCM (NIST SP 800-38D: 96-bit nonce, no associated data, 16-byte tag) for many short values
 * at once, byte for byte what node:crypto's `aes-*-gcm` produces (docs/encryption.md, "How tokens
 * are made").
 *
 * Why: node:crypto has no re-keyable GCM object, so a token made with `createCipheriv` costs ~8 µs
 * whatever the value's length, ~9 s per million phones. Here a batch costs ONE native AES call:
 * every counter block of every value (J0 = nonce ‖ 00000001 masks the tag, nonce ‖ 00000002, … are
 * the data's keystream) goes through OpenSSL's `aes-*-ecb` (AES-NI) in one `update`; the keystream
 * is XORed in JavaScript and GHASH (one multiplication by H = E_K(0¹²⁸) in GF(2¹²⁸) per 16-byte
 * block) is computed in JavaScript.
 *
 * GHASH is constant-time by construction: X·H is the XOR of the 128 precomputed H·xⁱ, each taken
 * or dropped by a mask made from bit i of X; all 128 are read in the same order whatever X is, and
 * no branch or memory address depends on secret data. (A 4-bit table GHASH is ~3× faster per block,
 * but its lookups are indexed by secret-dependent data, the classic cache-timing leak; the
 * constant-time form already meets the target. The JIT and GC give no hard guarantee either way.)
 *
 * Values longer than `BULK_MAX_CHARS` take node:crypto's per-call path (`sealOne` / `openOne`),
 * which is faster than JavaScript GHASH beyond a few hundred bytes. Tests check both paths against
 * node:crypto byte for byte (packages/core/test/encryption/Encryption.test.ts).
 */
import { createCipheriv, createDecipheriv, type KeyObject } from "node:crypto"

export const NONCE_BYTES = 12
export const TAG_BYTES = 16
const BLOCK = 16

/** Longer values (UTF-16 units) go through node:crypto one by one: bounds JS GHASH time and batch memory. */
export const BULK_MAX_CHARS = 256
/** Values per native AES call: a chunk's buffers stay in cache (~250 KB for phones). */
export const BULK_CHUNK_VALUES = 2048

export interface GcmKey {
  readonly algorithm: "aes-128-gcm" | "aes-192-gcm" | "aes-256-gcm"
  readonly key: KeyObject
}

// ---------------------------------------------------------------------------------------------
// node:crypto, one value per call.

let oneScratch: Buffer = Buffer.allocUnsafe(256)

/** nonce ‖ ciphertext ‖ tag of one value, base64url without padding, by node:crypto's GCM. */
export const sealOne = (key: GcmKey, plaintext: string, nonce: Uint8Array): string => {
  const cipher = createCipheriv(key.algorithm, key.key, nonce)
  const maxLength = NONCE_BYTES + Buffer.byteLength(plaintext, "utf8") + TAG_BYTES
  if (oneScratch.length < maxLength) oneScratch = Buffer.allocUnsafe(Math.max(maxLength, oneScratch.length * 2))
  oneScratch.set(nonce, 0)
  let length = NONCE_BYTES + cipher.update(plaintext, "utf8").copy(oneScratch, NONCE_BYTES)
  length += cipher.final().copy(oneScratch, length)
  length += cipher.getAuthTag().copy(oneScratch, length)
  return oneScratch.toString("base64url", 0, length)
}

// ignoreBOM: a value that starts with U+FEFF keeps it (TextDecoder strips a leading one by default;
// node:crypto + Buffer#toString and the original's Python `.decode("utf-8")` keep it).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** The plaintext of nonce ‖ ciphertext ‖ tag by node:crypto's GCM; undefined unless it authenticates as UTF-8 text. */
export const openOne = (key: GcmKey, sealed: Uint8Array): string | undefined => {
  const decipher = createDecipheriv(key.algorithm, key.key, sealed.subarray(0, NONCE_BYTES), {
    authTagLength: TAG_BYTES
  })
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
  const head = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES))
  try {
    const tail = decipher.final() // throws when the tag does not authenticate
    return utf8.decode(tail.length === 0 ? head : Buffer.concat([head, tail]))
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// GHASH, constant-time, on 32-bit words.

/**
 * H·xⁱ for i = 0…127 as big-endian 32-bit words, word w of H·xⁱ at [128·w + i]. GCM numbers bits
 * from the most significant bit of byte 0 (x⁰), so multiplying by x is a right shift of the
 * 128-bit string, reduced by R = 11100001 ‖ 0¹²⁰ when x¹²⁷'s bit falls off.
 */
const powersOfH = (h: Uint8Array): Int32Array => {
  const powers = new Int32Array(4 * 128)
  let v0 = readWord(h, 0)
  let v1 = readWord(h, 4)
  let v2 = readWord(h, 8)
  let v3 = readWord(h, 12)
  for (let i = 0; i < 128; i++) {
    powers[i] = v0
    powers[128 + i] = v1
    powers[256 + i] = v2
    powers[384 + i] = v3
    const reduce = -(v3 & 1) // all ones when a bit falls off
    v3 = (v3 >>> 1) | (v2 << 31)
    v2 = (v2 >>> 1) | (v1 << 31)
    v1 = (v1 >>> 1) | (v0 << 31)
    v0 = (v0 >>> 1) ^ (0xe1000000 & reduce)
  }
  return powers
}

const readWord = (bytes: Uint8Array, at: number): number =>
  (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!

/**
 * y ← y·H: the XOR of H·xⁱ over the set bits i of y. Every H·xⁱ is read, in order, and kept or
 * dropped by an all-ones/all-zeros mask (bit i shifted to the sign, then `>> 31`), so time and
 * memory addresses do not depend on y or H.
 */
const multiplyByH = (powers: Int32Array, y: Int32Array): void => {
  let z0 = 0
  let z1 = 0
  let z2 = 0
  let z3 = 0
  for (let i = 0; i < 128;) {
    let x = y[i >> 5]!
    for (let bit = 0; bit < 32; bit++, i++) {
      const mask = x >> 31
      x <<= 1
      z0 ^= powers[i]! & mask
      z1 ^= powers[128 + i]! & mask
      z2 ^= powers[256 + i]! & mask
      z3 ^= powers[384 + i]! & mask
    }
  }
  y[0] = z0
  y[1] = z1
  y[2] = z2
  y[3] = z3
}

// ---------------------------------------------------------------------------------------------
// The bulk path.

export interface BulkGcm {
  /**
   * Tokens (base64url without padding of nonce ‖ ciphertext ‖ tag) of `values[from, to)`, value
   * `from + i` sealed with the 12-byte nonce at `nonces[12·i]`, written to `tokens[from + i]`.
   * Nonces are the caller's: random and never reused.
   */
  readonly sealTokens: (
    values: ReadonlyArray<string>,
    from: number,
    to: number,
    nonces: Uint8Array,
    tokens: Array<string>
  ) => void
  /**
   * The plaintexts of `sealed[from, to)` (each nonce ‖ ciphertext ‖ tag, ≥ 28 bytes) into
   * `plaintexts`: undefined where the tag does not authenticate or the plaintext is not UTF-8. No
   * plaintext is computed before its tag is verified (constant-time comparison).
   */
  readonly openMany: (
    sealed: ReadonlyArray<Uint8Array>,
    from: number,
    to: number,
    plaintexts: Array<string | undefined>
  ) => void
}

/** Grows `buffer` (contents not kept) to at least `bytes`. */
const atLeast = (buffer: Buffer, bytes: number): Buffer =>
  buffer.length >= bytes ? buffer : Buffer.allocUnsafe(Math.max(bytes, buffer.length * 2))

export const makeBulkGcm = (key: GcmKey): BulkGcm => {
  // ECB over counter blocks is CTR mode, GCM's keystream; one cipher object serves every batch
  // (ECB keeps no state between blocks, and without padding `update` returns every block it gets).
  const ecb = createCipheriv(key.algorithm.replace("-gcm", "-ecb"), key.key, null).setAutoPadding(false)
  const powers = powersOfH(ecb.update(Buffer.alloc(BLOCK)))
  const y = new Int32Array(4)
  const pad = new Uint8Array(BLOCK)

  // Scratch, reused by every call (all synchronous): plaintexts, counter blocks, sealed tokens.
  let plain: Buffer = Buffer.allocUnsafe(64 * 1024)
  let counters: Buffer = Buffer.allocUnsafe(64 * 1024)
  let out: Buffer = Buffer.allocUnsafe(64 * 1024)
  let starts = new Int32Array(BULK_CHUNK_VALUES)
  let lengths = new Int32Array(BULK_CHUNK_VALUES)
  let ends = new Int32Array(BULK_CHUNK_VALUES)
  let text: Buffer = Buffer.allocUnsafe(64 * 1024)

  /** y ← GHASH state after `bytes[at, at + length)` zero-padded to whole blocks, then the length block. */
  const ghash = (bytes: Uint8Array, at: number, length: number): void => {
    y[0] = y[1] = y[2] = y[3] = 0
    const full = at + (length & ~(BLOCK - 1))
    let i = at
    for (; i < full; i += BLOCK) {
      y[0] ^= readWord(bytes, i)
      y[1] ^= readWord(bytes, i + 4)
      y[2] ^= readWord(bytes, i + 8)
      y[3] ^= readWord(bytes, i + 12)
      multiplyByH(powers, y)
    }
    const rest = at + length - i
    if (rest > 0) {
      pad.fill(0)
      for (let j = 0; j < rest; j++) pad[j] = bytes[i + j]!
      y[0] ^= readWord(pad, 0)
      y[1] ^= readWord(pad, 4)
      y[2] ^= readWord(pad, 8)
      y[3] ^= readWord(pad, 12)
      multiplyByH(powers, y)
    }
    // len(A) = 0 ‖ len(C) in bits, 64 bits each.
    const bits = length * 8
    y[2] ^= Math.floor(bits / 0x100000000)
    y[3] ^= bits
    multiplyByH(powers, y)
  }

  /** Counter blocks nonce ‖ 1 … nonce ‖ (1 + ⌈length/16⌉) at `counters[at]`; returns the end. */
  const writeCounters = (nonce: Uint8Array, nonceAt: number, length: number, at: number): number => {
    const blocks = 1 + Math.ceil(length / BLOCK)
    for (let b = 1; b <= blocks; b++) {
      for (let j = 0; j < NONCE_BYTES; j++) counters[at + j] = nonce[nonceAt + j]!
      counters[at + 12] = b >>> 24
      counters[at + 13] = (b >>> 16) & 0xff
      counters[at + 14] = (b >>> 8) & 0xff
      counters[at + 15] = b & 0xff
      at += BLOCK
    }
    return at
  }

  const ensureSlots = (n: number) => {
    if (starts.length < n) {
      starts = new Int32Array(n)
      lengths = new Int32Array(n)
      ends = new Int32Array(n)
    }
  }

  const sealChunk = (
    values: ReadonlyArray<string>,
    from: number,
    to: number,
    nonces: Uint8Array,
    nonceBase: number,
    tokens: Array<string>
  ): void => {
    const n = to - from
    ensureSlots(n)
    // 1. UTF-8 of every value, back to back (ASCII, the common case, without a native call).
    let plainEnd = 0
    let counterBytes = 0
    for (let i = 0; i < n; i++) {
      const value = values[from + i]!
      if (value.length > BULK_MAX_CHARS) {
        lengths[i] = -1
        continue
      }
      plain = growKeeping(plain, plainEnd, plainEnd + 3 * value.length) // ≤ 3 UTF-8 bytes per UTF-16 unit
      let length = 0
      while (length < value.length) {
        const c = value.charCodeAt(length)
        if (c > 0x7f) break
        plain[plainEnd + length++] = c
      }
      if (length < value.length) length = plain.write(value, plainEnd, "utf8")
      starts[i] = plainEnd
      lengths[i] = length
      plainEnd += length
      counterBytes += BLOCK * (1 + Math.ceil(length / BLOCK))
    }
    // 2. Every counter block, one native AES call.
    counters = atLeast(counters, counterBytes)
    let at = 0
    for (let i = 0; i < n; i++) {
      if (lengths[i]! >= 0) at = writeCounters(nonces, nonceBase + NONCE_BYTES * i, lengths[i]!, at)
    }
    const keystream = at === 0 ? counters : ecb.update(counters.subarray(0, at))
    // 3. nonce ‖ plaintext ⊕ keystream ‖ GHASH ⊕ E(J0), and its base64url.
    out = atLeast(out, NONCE_BYTES + 3 * BULK_MAX_CHARS + TAG_BYTES)
    text = atLeast(text, Math.ceil(((NONCE_BYTES + TAG_BYTES) * n + plainEnd) / 3) * 4 + 4 * n)
    let textEnd = 0
    let k = 0
    for (let i = 0; i < n; i++) {
      const length = lengths[i]!
      const nonceAt = nonceBase + NONCE_BYTES * i
      if (length < 0) {
        tokens[from + i] = sealOne(key, values[from + i]!, nonces.subarray(nonceAt, nonceAt + NONCE_BYTES))
        continue
      }
      for (let j = 0; j < NONCE_BYTES; j++) out[j] = nonces[nonceAt + j]!
      const p = starts[i]!
      const d = k + BLOCK // the data's keystream follows J0's block
      for (let j = 0; j < length; j++) out[NONCE_BYTES + j] = plain[p + j]! ^ keystream[d + j]!
      ghash(out, NONCE_BYTES, length)
      const t = NONCE_BYTES + length
      for (let w = 0; w < 4; w++) {
        const word = y[w]!
        out[t + 4 * w] = (word >>> 24) ^ keystream[k + 4 * w]!
        out[t + 4 * w + 1] = ((word >>> 16) & 0xff) ^ keystream[k + 4 * w + 1]!
        out[t + 4 * w + 2] = ((word >>> 8) & 0xff) ^ keystream[k + 4 * w + 2]!
        out[t + 4 * w + 3] = (word & 0xff) ^ keystream[k + 4 * w + 3]!
      }
      ends[i] = textEnd = base64url(out, t + TAG_BYTES, text, textEnd)
      k += BLOCK * (1 + Math.ceil(length / BLOCK))
    }
    // 4. One string for the chunk's tokens, cut into slices: cheaper than a native base64 call per
    //    token (V8 may keep the chunk's string alive while one of its tokens lives: ~110 KB).
    const all = text.toString("latin1", 0, textEnd)
    let a = 0
    for (let i = 0; i < n; i++) {
      if (lengths[i]! < 0) continue
      tokens[from + i] = all.slice(a, ends[i]!)
      a = ends[i]!
    }
  }

  const openChunk = (
    sealed: ReadonlyArray<Uint8Array>,
    from: number,
    to: number,
    plaintexts: Array<string | undefined>
  ): void => {
    const n = to - from
    ensureSlots(n)
    let counterBytes = 0
    for (let i = 0; i < n; i++) {
      const length = sealed[from + i]!.length - NONCE_BYTES - TAG_BYTES
      lengths[i] = length > 3 * BULK_MAX_CHARS ? -1 : length
      if (lengths[i]! >= 0) counterBytes += BLOCK * (1 + Math.ceil(length / BLOCK))
    }
    counters = atLeast(counters, counterBytes)
    let at = 0
    for (let i = 0; i < n; i++) {
      if (lengths[i]! >= 0) at = writeCounters(sealed[from + i]!, 0, lengths[i]!, at)
    }
    const keystream = at === 0 ? counters : ecb.update(counters.subarray(0, at))
    plain = atLeast(plain, 3 * BULK_MAX_CHARS)
    let k = 0
    for (let i = 0; i < n; i++) {
      const bytes = sealed[from + i]!
      const length = lengths[i]!
      if (length < 0) {
        plaintexts[from + i] = openOne(key, bytes)
        continue
      }
      const blocks = 1 + Math.ceil(length / BLOCK)
      ghash(bytes, NONCE_BYTES, length)
      // Tag check without an early exit: OR of the differences of all 16 bytes.
      const t = NONCE_BYTES + length
      let difference = 0
      for (let w = 0; w < 4; w++) {
        const word = y[w]!
        difference |= (word >>> 24) ^ keystream[k + 4 * w]! ^ bytes[t + 4 * w]!
        difference |= ((word >>> 16) & 0xff) ^ keystream[k + 4 * w + 1]! ^ bytes[t + 4 * w + 1]!
        difference |= ((word >>> 8) & 0xff) ^ keystream[k + 4 * w + 2]! ^ bytes[t + 4 * w + 2]!
        difference |= (word & 0xff) ^ keystream[k + 4 * w + 3]! ^ bytes[t + 4 * w + 3]!
      }
      if (difference !== 0) {
        plaintexts[from + i] = undefined
        k += BLOCK * blocks
        continue
      }
      const d = k + BLOCK
      let high = 0
      for (let j = 0; j < length; j++) {
        const byte = bytes[NONCE_BYTES + j]! ^ keystream[d + j]!
        plain[j] = byte
        high |= byte
      }
      // ASCII is its own UTF-8; anything else must be valid UTF-8, as node:crypto's path required.
      if (high < 0x80) plaintexts[from + i] = plain.toString("latin1", 0, length)
      else {
        try {
          plaintexts[from + i] = utf8.decode(plain.subarray(0, length))
        } catch {
          plaintexts[from + i] = undefined
        }
      }
      k += BLOCK * blocks
    }
  }

  return {
    sealTokens: (values, from, to, nonces, tokens) => {
      for (let start = from; start < to; start += BULK_CHUNK_VALUES) {
        const end = Math.min(to, start + BULK_CHUNK_VALUES)
        sealChunk(values, start, end, nonces, NONCE_BYTES * (start - from), tokens)
      }
    },
    openMany: (sealed, from, to, plaintexts) => {
      for (let start = from; start < to; start += BULK_CHUNK_VALUES) {
        openChunk(sealed, start, Math.min(to, start + BULK_CHUNK_VALUES), plaintexts)
      }
    }
  }
}

const BASE64URL = Buffer.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", "latin1")

/** base64url without padding of `bytes[0, length)` at `text[at]`; returns the end. */
const base64url = (bytes: Uint8Array, length: number, text: Uint8Array, at: number): number => {
  let i = 0
  for (; i + 3 <= length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    text[at] = BASE64URL[v >>> 18]!
    text[at + 1] = BASE64URL[(v >>> 12) & 63]!
    text[at + 2] = BASE64URL[(v >>> 6) & 63]!
    text[at + 3] = BASE64URL[v & 63]!
    at += 4
  }
  if (length - i === 1) {
    const v = bytes[i]!
    text[at] = BASE64URL[v >>> 2]!
    text[at + 1] = BASE64URL[(v & 3) << 4]!
    at += 2
  } else if (length - i === 2) {
    const v = (bytes[i]! << 8) | bytes[i + 1]!
    text[at] = BASE64URL[v >>> 10]!
    text[at + 1] = BASE64URL[(v >>> 4) & 63]!
    text[at + 2] = BASE64URL[(v & 15) << 2]!
    at += 3
  }
  return at
}

/** `buffer` with at least `bytes` of room, its first `used` bytes kept. */
const growKeeping = (buffer: Buffer, used: number, bytes: number): Buffer => {
  if (buffer.length >= bytes) return buffer
  const grown = Buffer.allocUnsafe(Math.max(bytes, buffer.length * 2))
  buffer.copy(grown, 0, 0, used)
  return grown
}
