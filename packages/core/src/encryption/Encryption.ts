/**
 * Phone-number tokens, byte for byte the original's (`docs/encryption.md` "Tokens", `docs/original-api.md` "Encryption tokens"): AES-GCM with
 * the key of `AES_KEY` (16, 24 or 32 bytes → AES-128/192/256), a random 12-byte nonce, no
 * associated data; token = URL-safe base64 WITHOUT padding of nonce ‖ ciphertext ‖ 16-byte tag
 * (a 12-digit phone gives 54 characters). `test/encryption/aes-gcm-tokens.json` holds vectors made
 * with the Python library the original used.
 *
 * Reading is lenient where the original's was (Python re-pads, and its decoder takes either
 * alphabet): keys and tokens may be padded or not, URL-safe or standard base64. Decryption tries
 * `AES_KEY`, then `AES_KEY_PREVIOUS` (key rotation).
 *
 * Errors say what is wrong with a token and never contain key material: `InvalidToken` (not
 * base64, or too short to hold nonce and tag) and `DecryptionFailed` (no key authenticates it).
 * An unusable `AES_KEY` / `AES_KEY_PREVIOUS` stops start-up (`InvalidConfig`); without `AES_KEY`
 * the service still builds and each method fails with `NotConfigured` (HTTP 503).
 *
 * Speed: node:crypto has no re-keyable GCM object (one `createCipheriv` per value costs ~8 µs), so
 * tokens are made and opened by `Gcm.ts`'s bulk AES-GCM: one native AES call per 2,048 values,
 * XOR and a constant-time GHASH in JavaScript, the same bytes as node:crypto (tests compare them).
 * The batch methods (`encryptMany`, `decryptMany`) run inside ONE Effect, draw every nonce of a
 * chunk with one `randomFillSync`, so a million values do not pay a million Effects or calls.
 */
import { createSecretKey, randomFillSync } from "node:crypto"
import { Context, Effect, Layer, Redacted, Result, Schema } from "effect"
import { AppConfig, requireIntegration, type EncryptionSettings } from "../platform/Config.ts"
import { InvalidConfig, ValidationError, type NotConfigured } from "../platform/Errors.ts"
import { BULK_CHUNK_VALUES, makeBulkGcm, NONCE_BYTES, TAG_BYTES, type GcmKey } from "./Gcm.ts"

/** The value is not a token: not base64, or too short to hold a nonce and a tag. */
export class InvalidToken extends Schema.TaggedError<InvalidToken>()("InvalidToken", {
  message: Schema.String
}) {}

/** The value is shaped like a token but no configured key authenticates it (wrong key, or altered). */
export class DecryptionFailed extends Schema.TaggedError<DecryptionFailed>()("DecryptionFailed", {
  message: Schema.String
}) {}

export type TokenError = InvalidToken | DecryptionFailed

/** The original's rule (`docs/original-api.md` "Encryption tokens"): shorter values are plain phone numbers. */
const MIN_TOKEN_LENGTH = 25

/** Is this Voluum value an encryption token rather than a plain phone? (length ≥ 25, as the original decided) */
export const isEncryptedToken = (value: string): boolean => value.length >= MIN_TOKEN_LENGTH

// ---------------------------------------------------------------------------------------------
// Base64, either alphabet, padded or not.

const BASE64_BODY = /^[A-Za-z0-9+/_-]*$/

/** Bytes of base64 text in either alphabet, with or without `=` padding; undefined when it is not base64. */
export const decodeBase64Lenient = (text: string): Buffer | undefined => {
  let end = text.length
  while (end > 0 && text.charCodeAt(end - 1) === 61 /* = */ && text.length - end < 2) end--
  const body = end === text.length ? text : text.slice(0, end)
  // Padding, when present, must complete the last group; a lone trailing character never encodes a byte.
  if (body.length % 4 === 1 || (end !== text.length && text.length % 4 !== 0)) return undefined
  if (!BASE64_BODY.test(body)) return undefined
  return Buffer.from(body, "base64") // Node's decoder reads both alphabets and needs no padding.
}

// ---------------------------------------------------------------------------------------------
// Keys.

const ALGORITHMS: Readonly<Record<number, "aes-128-gcm" | "aes-192-gcm" | "aes-256-gcm">> = {
  16: "aes-128-gcm",
  24: "aes-192-gcm",
  32: "aes-256-gcm"
}

/** The algorithm for the key's length and the key as a `KeyObject` (made once: a raw Buffer is ~10× slower per call). */
export type AesKey = GcmKey

/** An AES key from its base64 text, or what is wrong with it (never the key itself). */
export const parseAesKey = (base64: string): Result.Result<AesKey, string> => {
  const bytes = decodeBase64Lenient(base64.trim())
  if (bytes === undefined) return Result.fail("is not base64 (URL-safe or standard)")
  const algorithm = ALGORITHMS[bytes.length]
  if (algorithm === undefined) {
    return Result.fail(`must be the base64 of a 16, 24 or 32-byte key, but decodes to ${bytes.length} bytes`)
  }
  return Result.succeed({ algorithm, key: createSecretKey(bytes) })
}

// ---------------------------------------------------------------------------------------------
// The cipher: plain synchronous functions, for loops over many values.

export interface Cipher {
  /** A token for `plaintext` with a fresh random nonce. */
  readonly encrypt: (plaintext: string) => string
  /** Tokens for `plaintexts`, in order, each with its own fresh random nonce. */
  readonly encryptMany: (plaintexts: ReadonlyArray<string>) => Array<string>
  /** A token for `plaintext` with the given 12-byte nonce (tests and vectors only: never reuse a nonce). */
  readonly encryptWithNonce: (plaintext: string, nonce: Uint8Array) => string
  /** The plaintext of a token, trying the current key then the previous one. */
  readonly decrypt: (token: string) => Result.Result<string, TokenError>
  /** `decrypt` of each token, in order: a token that does not decrypt is a failure in its slot. */
  readonly decryptMany: (tokens: ReadonlyArray<string>) => Array<Result.Result<string, TokenError>>
}

const NONCE_POOL_BYTES = NONCE_BYTES * 4096

/** A cipher for a key and, optionally, the key before the last rotation (decryption only). */
export const makeCipher = (current: AesKey, previous?: AesKey): Cipher => {
  const bulk = makeBulkGcm(current)
  const previousBulk = previous === undefined ? undefined : makeBulkGcm(previous)
  // Single values take their nonce from a pool filled 4,096 nonces at a time.
  const noncePool = new Uint8Array(NONCE_POOL_BYTES)
  let noncePosition = NONCE_POOL_BYTES
  const one: Array<string> = [""]

  const encrypt = (plaintext: string): string => {
    if (noncePosition === NONCE_POOL_BYTES) {
      randomFillSync(noncePool)
      noncePosition = 0
    }
    const nonce = noncePool.subarray(noncePosition, noncePosition + NONCE_BYTES)
    noncePosition += NONCE_BYTES
    bulk.sealTokens([plaintext], 0, 1, nonce, one)
    return one[0]!
  }

  const encryptMany = (plaintexts: ReadonlyArray<string>): Array<string> => {
    const tokens = new Array<string>(plaintexts.length)
    const nonces = new Uint8Array(NONCE_BYTES * Math.min(plaintexts.length, BULK_CHUNK_VALUES))
    for (let start = 0; start < plaintexts.length; start += BULK_CHUNK_VALUES) {
      const end = Math.min(plaintexts.length, start + BULK_CHUNK_VALUES)
      randomFillSync(nonces, 0, NONCE_BYTES * (end - start)) // a fresh random nonce for every value
      bulk.sealTokens(plaintexts, start, end, nonces, tokens)
    }
    return tokens
  }

  const encryptWithNonce = (plaintext: string, nonce: Uint8Array): string => {
    if (nonce.length !== NONCE_BYTES)
      throw new RangeError(`the nonce must be ${NONCE_BYTES} bytes, got ${nonce.length}`)
    bulk.sealTokens([plaintext], 0, 1, nonce, one)
    return one[0]!
  }

  const notDecrypted = () =>
    new DecryptionFailed({
      message:
        previous === undefined
          ? "the token does not decrypt with AES_KEY (another key, or an altered token)"
          : "the token decrypts with neither AES_KEY nor AES_KEY_PREVIOUS (another key, or an altered token)"
    })

  const decryptMany = (tokens: ReadonlyArray<string>): Array<Result.Result<string, TokenError>> => {
    const results = new Array<Result.Result<string, TokenError>>(tokens.length)
    // Tokens shaped right (base64 of nonce, ciphertext and tag) are opened together; slots[j] is sealed[j]'s token.
    const sealed: Array<Uint8Array> = []
    const slots: Array<number> = []
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!
      const bytes = decodeBase64Lenient(token)
      if (bytes === undefined) {
        results[i] = Result.fail(new InvalidToken({ message: `not a token: not base64 (${token.length} characters)` }))
      } else if (bytes.length < NONCE_BYTES + TAG_BYTES) {
        results[i] = Result.fail(
          new InvalidToken({
            message: `not a token: ${bytes.length} bytes, too short for a ${NONCE_BYTES}-byte nonce and a ${TAG_BYTES}-byte tag`
          })
        )
      } else {
        sealed.push(bytes)
        slots.push(i)
      }
    }
    const plaintexts = new Array<string | undefined>(sealed.length)
    bulk.openMany(sealed, 0, sealed.length, plaintexts)
    if (previousBulk !== undefined) {
      // Key rotation: what AES_KEY does not open gets a second try with AES_KEY_PREVIOUS.
      const retry: Array<number> = []
      for (let j = 0; j < sealed.length; j++) if (plaintexts[j] === undefined) retry.push(j)
      if (retry.length > 0) {
        const retried = new Array<string | undefined>(retry.length)
        previousBulk.openMany(
          retry.map((j) => sealed[j]!),
          0,
          retry.length,
          retried
        )
        for (let r = 0; r < retry.length; r++) plaintexts[retry[r]!] = retried[r]
      }
    }
    for (let j = 0; j < sealed.length; j++) {
      const plaintext = plaintexts[j]
      results[slots[j]!] = plaintext === undefined ? Result.fail(notDecrypted()) : Result.succeed(plaintext)
    }
    return results
  }

  const decrypt = (token: string): Result.Result<string, TokenError> => decryptMany([token])[0]!

  return { encrypt, encryptMany, encryptWithNonce, decrypt, decryptMany }
}

/** The cipher of the encryption settings, or `InvalidConfig` naming the unusable variable. */
export const cipherFromSettings = (settings: EncryptionSettings): Effect.Effect<Cipher, InvalidConfig> =>
  Effect.gen(function* () {
    const parse = (variable: string, value: Redacted.Redacted<string>) => {
      const parsed = parseAesKey(Redacted.value(value))
      return Result.isSuccess(parsed)
        ? Effect.succeed(parsed.success)
        : Effect.fail(new InvalidConfig({ message: `${variable} ${parsed.failure}`, variables: [variable] }))
    }
    const current = yield* parse("AES_KEY", settings.key)
    const previous =
      settings.previousKey === undefined ? undefined : yield* parse("AES_KEY_PREVIOUS", settings.previousKey)
    return makeCipher(current, previous)
  })

// ---------------------------------------------------------------------------------------------
// Service.

export class Encryption extends Context.Service<
  Encryption,
  {
    readonly encrypt: (plaintext: string) => Effect.Effect<string, NotConfigured>
    /** Tests and vectors only: never reuse a nonce with the same key. */
    readonly encryptWithNonce: (
      plaintext: string,
      nonce: Uint8Array
    ) => Effect.Effect<string, NotConfigured | ValidationError>
    /** One Effect for the whole batch; tokens in the order of the values. */
    readonly encryptMany: (values: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, NotConfigured>
    readonly decrypt: (token: string) => Effect.Effect<string, NotConfigured | TokenError>
    /** One Effect for the whole batch; a token that does not decrypt is a failure in its slot, not of the batch. */
    readonly decryptMany: (
      tokens: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<Result.Result<string, TokenError>>, NotConfigured>
  }
>()("@optimizer/core/encryption/Encryption") {
  /** From `AppConfig.encryption`: `InvalidConfig` for an unusable key; `NotConfigured` per call without AES_KEY. */
  static readonly layer: Layer.Layer<Encryption, InvalidConfig, AppConfig> = Layer.effect(
    Encryption,
    Effect.gen(function* () {
      const { encryption } = yield* AppConfig
      // Built once: the configured cipher, or the NotConfigured failure every method returns.
      const cipher: Effect.Effect<Cipher, NotConfigured> = yield* requireIntegration("encryption", encryption).pipe(
        Effect.flatMap(cipherFromSettings),
        Effect.map((configured) => Effect.succeed(configured)),
        Effect.catchTag("NotConfigured", (notConfigured) => Effect.succeed(Effect.fail(notConfigured)))
      )
      return Encryption.of({
        encrypt: Effect.fn("Encryption.encrypt")(function* (plaintext: string) {
          return (yield* cipher).encrypt(plaintext)
        }),
        encryptWithNonce: Effect.fn("Encryption.encryptWithNonce")(function* (plaintext: string, nonce: Uint8Array) {
          const configured = yield* cipher
          if (nonce.length !== NONCE_BYTES) {
            return yield* new ValidationError({
              message: `the nonce must be ${NONCE_BYTES} bytes, got ${nonce.length}`,
              field: "nonce"
            })
          }
          return configured.encryptWithNonce(plaintext, nonce)
        }),
        encryptMany: Effect.fn("Encryption.encryptMany")(function* (values: ReadonlyArray<string>) {
          return (yield* cipher).encryptMany(values)
        }),
        decrypt: Effect.fn("Encryption.decrypt")(function* (token: string) {
          const decrypted = (yield* cipher).decrypt(token)
          return Result.isSuccess(decrypted) ? decrypted.success : yield* Effect.fail(decrypted.failure)
        }),
        decryptMany: Effect.fn("Encryption.decryptMany")(function* (tokens: ReadonlyArray<string>) {
          return (yield* cipher).decryptMany(tokens)
        })
      })
    })
  )
}

/**
 * Values that may be tokens (a tracker's custom variable holds a number or its token): the tokens
 * among them decrypted in one call, trimmed, in place of a copy; `undecrypted` holds the positions
 * of tokens no key opens (left as received).
 */
export const decryptTokensAmong = (
  encryption: Encryption["Service"],
  values: ReadonlyArray<string>
): Effect.Effect<{ readonly values: Array<string>; readonly undecrypted: ReadonlySet<number> }, NotConfigured> =>
  Effect.gen(function* () {
    const plain = [...values]
    const tokenSlots: Array<number> = []
    plain.forEach((v, i) => {
      if (isEncryptedToken(v)) tokenSlots.push(i)
    })
    const decrypted: ReadonlyArray<Result.Result<string, TokenError>> =
      tokenSlots.length === 0 ? [] : yield* encryption.decryptMany(tokenSlots.map((i) => plain[i]!))
    const undecrypted = new Set<number>()
    tokenSlots.forEach((slot, k) => {
      const outcome = decrypted[k]!
      if (Result.isSuccess(outcome)) plain[slot] = outcome.success.trim()
      else undecrypted.add(slot)
    })
    return { values: plain, undecrypted }
  })
