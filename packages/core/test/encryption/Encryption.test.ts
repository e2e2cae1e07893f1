/**
 * AES-GCM tokens exactly as the original made them: the Python-made vectors (aes-gcm-tokens.json,
 * a copy of shared/vectors), every accepted spelling, typed failures, key rotation, and the
 * service's configuration states; and the bulk AES-GCM of Gcm.ts checked against node:crypto's GCM
 * byte for byte on thousands of random values.
 */
import { createCipheriv, createDecipheriv, type CipherGCMTypes } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Result } from "effect"
import {
  Encryption,
  isEncryptedToken,
  makeCipher,
  parseAesKey,
  type AesKey,
  type TokenError
} from "../../src/encryption/Encryption.ts"
import { BULK_MAX_CHARS, makeBulkGcm } from "../../src/encryption/Gcm.ts"
import { AppConfig, type Env } from "../../src/platform/Config.ts"
import vectors from "./aes-gcm-tokens.json" with { type: "json" }

const layerWith = (env: Env) => Encryption.layer.pipe(Layer.provide(AppConfig.layerFrom(env)))
const withKeys =
  (env: Env) =>
  <A, E>(effect: Effect.Effect<A, E, Encryption>) =>
    effect.pipe(Effect.provide(layerWith(env)))
const withVectorKey = withKeys({ AES_KEY: vectors.aes_key })

const hex = (text: string) => Uint8Array.from(Buffer.from(text, "hex"))

const failureOf = (token: string) =>
  Effect.gen(function* () {
    const encryption = yield* Encryption
    return yield* encryption.decrypt(token).pipe(Effect.flip)
  })

describe("the original's vectors", () => {
  it.effect("encrypting with the vector's nonce reproduces its token", () =>
    withVectorKey(
      Effect.gen(function* () {
        const encryption = yield* Encryption
        for (const vector of vectors.vectors) {
          const token = yield* encryption.encryptWithNonce(vector.plaintext, hex(vector.nonce_hex))
          assert.strictEqual(token, vector.token, vector.plaintext)
        }
        // A 12-digit phone gives 54 characters.
        assert.strictEqual(vectors.vectors[0]!.token.length, 54)
      })
    )
  )

  it.effect("decrypts every spelling: unpadded URL-safe, padded URL-safe, padded standard", () =>
    withVectorKey(
      Effect.gen(function* () {
        const encryption = yield* Encryption
        for (const vector of vectors.vectors) {
          for (const token of [vector.token, vector.token_urlsafe_padded, vector.token_standard_padded]) {
            assert.strictEqual(yield* encryption.decrypt(token), vector.plaintext, token)
          }
          // Standard alphabet without padding too (Python's decoder takes either alphabet).
          const standardUnpadded = vector.token_standard_padded.replace(/=+$/, "")
          assert.strictEqual(yield* encryption.decrypt(standardUnpadded), vector.plaintext)
        }
      })
    )
  )

  it.effect("rejects every must_fail entry with a typed error", () =>
    withVectorKey(
      Effect.gen(function* () {
        const byWhy = new Map(vectors.must_fail.map((entry) => [entry.why, entry.token]))
        assert.strictEqual(byWhy.size, 3)
        const tampered = yield* failureOf(byWhy.get("tag tampered")!)
        assert.strictEqual(tampered._tag, "DecryptionFailed")
        const notBase64 = yield* failureOf(byWhy.get("not base64")!)
        assert.strictEqual(notBase64._tag, "InvalidToken")
        // 40 characters decode to 30 bytes: room for nonce and tag, so it is the tag that fails.
        const short = yield* failureOf(byWhy.get("too short to hold nonce and tag")!)
        assert.oneOf(short._tag, ["InvalidToken", "DecryptionFailed"])
        for (const entry of vectors.must_fail) {
          const error = yield* failureOf(entry.token)
          assert.oneOf(error._tag, ["InvalidToken", "DecryptionFailed"])
          assert.notInclude(error.message, vectors.aes_key)
        }
      })
    )
  )

  it.effect("tokens of the vectors do not decrypt with wrong_key", () =>
    withKeys({ AES_KEY: vectors.wrong_key })(
      Effect.gen(function* () {
        for (const vector of vectors.vectors) {
          const error = yield* failureOf(vector.token)
          assert.strictEqual(error._tag, "DecryptionFailed")
          assert.include(error.message, "AES_KEY")
          assert.notInclude(error.message, vectors.wrong_key)
        }
      })
    )
  )

  it.effect("key rotation: AES_KEY_PREVIOUS still decrypts tokens made with the old key", () =>
    Effect.gen(function* () {
      const oldToken = vectors.vectors[0]!.token
      const rotated = { AES_KEY: vectors.wrong_key, AES_KEY_PREVIOUS: vectors.aes_key }
      const newToken = yield* withKeys(rotated)(
        Effect.gen(function* () {
          const encryption = yield* Encryption
          assert.strictEqual(yield* encryption.decrypt(oldToken), vectors.vectors[0]!.plaintext)
          return yield* encryption.encrypt("447700900123")
        })
      )
      // New tokens are made with the new key only.
      assert.strictEqual(
        yield* withKeys({ AES_KEY: vectors.wrong_key })(Encryption.use((encryption) => encryption.decrypt(newToken))),
        "447700900123"
      )
      const withOldOnly = yield* withVectorKey(failureOf(newToken))
      assert.strictEqual(withOldOnly._tag, "DecryptionFailed")
      // Both keys failing says so.
      const neither = yield* withKeys(rotated)(failureOf(vectors.must_fail[0]!.token))
      assert.include(neither.message, "AES_KEY_PREVIOUS")
    })
  )
})

describe("Encryption", () => {
  it.effect("encrypt: random nonce, URL-safe base64 without padding, round trip", () =>
    withVectorKey(
      Effect.gen(function* () {
        const encryption = yield* Encryption
        const first = yield* encryption.encrypt("447700900123")
        const second = yield* encryption.encrypt("447700900123")
        assert.notStrictEqual(first, second)
        for (const token of [first, second]) {
          assert.match(token, /^[A-Za-z0-9_-]{54}$/)
          assert.strictEqual(yield* encryption.decrypt(token), "447700900123")
        }
        const unicode = yield* encryption.encrypt("☎ +44 7700 900123")
        assert.strictEqual(yield* encryption.decrypt(unicode), "☎ +44 7700 900123")
      })
    )
  )

  it.effect("encryptMany and decryptMany keep order; a bad token fails in its slot only", () =>
    withVectorKey(
      Effect.gen(function* () {
        const encryption = yield* Encryption
        const phones = Array.from({ length: 5_000 }, (_, i) => `4477009${String(i).padStart(5, "0")}`)
        const tokens = yield* encryption.encryptMany(phones)
        assert.strictEqual(tokens.length, phones.length)
        assert.strictEqual(new Set(tokens).size, tokens.length)
        const results = yield* encryption.decryptMany([...tokens, "not a token at all, no, not at all", tokens[0]!])
        assert.deepStrictEqual(results.slice(0, phones.length).map(Result.getOrThrow), phones)
        const bad = results[phones.length]!
        assert.isTrue(Result.isFailure(bad))
        if (Result.isFailure(bad)) assert.strictEqual((bad.failure as TokenError)._tag, "InvalidToken")
        assert.strictEqual(Result.getOrThrow(results[phones.length + 1]!), phones[0])
        assert.deepStrictEqual(yield* encryption.encryptMany([]), [])
      })
    )
  )

  it.effect("encryptWithNonce rejects a nonce that is not 12 bytes", () =>
    withVectorKey(
      Effect.gen(function* () {
        const encryption = yield* Encryption
        const error = yield* encryption.encryptWithNonce("447700900123", new Uint8Array(11)).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ValidationError")
      })
    )
  )

  it.effect("accepts the key unpadded and in the standard alphabet, and 16/24-byte keys", () =>
    Effect.gen(function* () {
      const vector = vectors.vectors[1]!
      for (const key of [
        vectors.aes_key.replace(/=+$/, ""),
        Buffer.from(vectors.aes_key, "base64").toString("base64")
      ]) {
        const token = yield* withKeys({ AES_KEY: key })(
          Encryption.use((encryption) => encryption.encryptWithNonce(vector.plaintext, hex(vector.nonce_hex)))
        )
        assert.strictEqual(token, vector.token)
      }
      for (const bytes of [16, 24]) {
        const key = Buffer.alloc(bytes, 7).toString("base64url")
        assert.strictEqual(
          yield* withKeys({ AES_KEY: key })(
            Effect.gen(function* () {
              const encryption = yield* Encryption
              return yield* encryption.decrypt(yield* encryption.encrypt("447700900123"))
            })
          ),
          "447700900123"
        )
      }
    })
  )

  it.effect("without AES_KEY the service builds and every method fails with NotConfigured", () =>
    withKeys({})(
      Effect.gen(function* () {
        const encryption = yield* Encryption
        const failures = [
          yield* encryption.encrypt("447700900123").pipe(Effect.flip),
          yield* encryption.encryptWithNonce("447700900123", new Uint8Array(12)).pipe(Effect.flip),
          yield* encryption.encryptMany(["447700900123"]).pipe(Effect.flip),
          yield* encryption.decrypt(vectors.vectors[0]!.token).pipe(Effect.flip),
          yield* encryption.decryptMany([vectors.vectors[0]!.token]).pipe(Effect.flip)
        ]
        for (const error of failures) {
          assert.strictEqual(error._tag, "NotConfigured")
          if (error._tag === "NotConfigured") assert.deepStrictEqual(error.missing, ["AES_KEY"])
        }
      })
    )
  )

  it.effect("an unusable AES_KEY or AES_KEY_PREVIOUS stops start-up with InvalidConfig naming it", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Env, string, string]> = [
        [{ AES_KEY: "not*base64!" }, "AES_KEY", "not base64"],
        [{ AES_KEY: Buffer.alloc(20, 1).toString("base64url") }, "AES_KEY", "decodes to 20 bytes"],
        [{ AES_KEY: "QUJD" }, "AES_KEY", "decodes to 3 bytes"],
        [{ AES_KEY: vectors.aes_key, AES_KEY_PREVIOUS: "%%%%" }, "AES_KEY_PREVIOUS", "not base64"]
      ]
      for (const [env, variable, problem] of cases) {
        const error = yield* Layer.build(layerWith(env)).pipe(Effect.scoped, Effect.flip)
        assert.strictEqual(error._tag, "InvalidConfig")
        assert.deepStrictEqual(error.variables, [variable])
        assert.include(error.message, variable)
        assert.include(error.message, problem)
        for (const secret of [env.AES_KEY, env.AES_KEY_PREVIOUS]) {
          if (secret !== undefined && secret.length > 4) assert.notInclude(error.message, secret)
        }
      }
    })
  )
})

describe("pure helpers", () => {
  it("isEncryptedToken is the original's length rule (>= 25 characters)", () => {
    assert.isFalse(isEncryptedToken(""))
    assert.isFalse(isEncryptedToken("447700900123"))
    assert.isFalse(isEncryptedToken("x".repeat(24)))
    assert.isTrue(isEncryptedToken("x".repeat(25)))
    assert.isTrue(isEncryptedToken(vectors.vectors[0]!.token))
  })

  it("makeCipher works without the service, for loops over many values", () => {
    const key = parseAesKey(vectors.aes_key)
    assert.isTrue(Result.isSuccess(key))
    if (Result.isFailure(key)) return
    const cipher = makeCipher(key.success)
    for (const vector of vectors.vectors) {
      assert.strictEqual(cipher.encryptWithNonce(vector.plaintext, hex(vector.nonce_hex)), vector.token)
      assert.strictEqual(Result.getOrThrow(cipher.decrypt(vector.token_standard_padded)), vector.plaintext)
    }
    assert.isTrue(Result.isFailure(cipher.decrypt(vectors.must_fail[0]!.token)))
  })
})

describe("bulk AES-GCM (Gcm.ts) against node:crypto's GCM", () => {
  // Values and nonces from a seeded generator, so a failure names a reproducible case.
  const seed = Date.now() % 0x7fffffff
  const generator = (s: number) => () => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const random = generator(seed)
  const below = (n: number) => Math.floor(random() * n)
  const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => below(256))

  /** 0…80 UTF-8 bytes of ASCII, 2-, 3- and 4-byte characters mixed. */
  const randomValue = (): string => {
    const target = below(81)
    let value = ""
    while (Buffer.byteLength(value) < target) {
      const kind = below(8)
      if (kind < 4) value += String.fromCharCode(below(128))
      else if (kind === 4) value += String.fromCharCode(0x80 + below(0x780))
      else if (kind === 5)
        value += String.fromCharCode(0x800 + below(0xd800 - 0x800)) // below the surrogates
      else if (kind === 6) value += String.fromCharCode(0xe000 + below(0x2000))
      else value += String.fromCodePoint(0x10000 + below(0x100000))
    }
    return value
  }

  const keyOf = (bytes: Uint8Array): AesKey => Result.getOrThrow(parseAesKey(Buffer.from(bytes).toString("base64")))

  /** The reference: node:crypto's GCM, one call per value. */
  const nodeToken = (raw: Uint8Array, plaintext: string, nonce: Uint8Array) => {
    const cipher = createCipheriv(`aes-${raw.length * 8}-gcm` as CipherGCMTypes, raw, nonce)
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
    return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64url")
  }
  const nodeOpen = (raw: Uint8Array, token: string) => {
    const bytes = Buffer.from(token, "base64url")
    const decipher = createDecipheriv(`aes-${raw.length * 8}-gcm` as CipherGCMTypes, raw, bytes.subarray(0, 12))
    decipher.setAuthTag(bytes.subarray(bytes.length - 16))
    return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString("utf8")
  }

  it("with fixed nonces, thousands of random values give node:crypto's tokens byte for byte (16/24/32-byte keys)", () => {
    for (const keyBytes of [16, 24, 32]) {
      const raw = randomBytes(keyBytes)
      const bulk = makeBulkGcm(keyOf(raw))
      // Random short values, then lengths around the block size and the bulk/per-call threshold.
      const values = Array.from({ length: 5_000 }, randomValue)
      for (const n of [0, 1, 15, 16, 17, 31, 32, 33, 64, 80]) values.push("7".repeat(n))
      for (const n of [BULK_MAX_CHARS - 1, BULK_MAX_CHARS, BULK_MAX_CHARS + 1, 1_000]) {
        values.push("x".repeat(n), "é".repeat(n), "☎".repeat(n))
      }
      values.push("\ud800 lone surrogate", "\udfff") // written as U+FFFD by both
      const nonces = randomBytes(12 * values.length)
      const tokens = new Array<string>(values.length)
      bulk.sealTokens(values, 0, values.length, nonces, tokens)
      for (let i = 0; i < values.length; i++) {
        const expected = nodeToken(raw, values[i]!, nonces.subarray(12 * i, 12 * i + 12))
        assert.strictEqual(
          tokens[i],
          expected,
          `seed ${seed}, ${keyBytes}-byte key, value ${JSON.stringify(values[i])}`
        )
      }
      // Sub-ranges of a batch use their own nonces (the offset arithmetic of `from`).
      const part = new Array<string>(values.length)
      bulk.sealTokens(values, 100, 200, nonces.subarray(12 * 100), part)
      assert.deepStrictEqual(part.slice(100, 200), tokens.slice(100, 200))
    }
  })

  it("a value that starts with a byte-order mark (U+FEFF) decrypts with it, one by one and in bulk", () => {
    const raw = randomBytes(32)
    const cipher = makeCipher(keyOf(raw))
    const values = ["\uFEFF447700900123", "\uFEFF", "a\uFEFFb"]
    const tokens = cipher.encryptMany(values)
    for (let i = 0; i < values.length; i++) {
      assert.strictEqual(nodeOpen(raw, tokens[i]!), values[i])
      assert.strictEqual(Result.getOrThrow(cipher.decrypt(tokens[i]!)), values[i])
    }
    assert.deepStrictEqual(
      cipher.decryptMany(tokens).map((r) => Result.getOrThrow(r)),
      values
    )
    assert.deepStrictEqual(
      cipher.decryptMany(values.map((v) => nodeToken(raw, v, randomBytes(12)))).map((r) => Result.getOrThrow(r)),
      values
    )
  })

  it("encryptMany's tokens decrypt with node:crypto, and node:crypto's tokens with decryptMany", () => {
    for (const keyBytes of [16, 24, 32]) {
      const raw = randomBytes(keyBytes)
      const cipher = makeCipher(keyOf(raw))
      const values = Array.from({ length: 3_000 }, randomValue)
      values.push("y".repeat(BULK_MAX_CHARS + 10))
      const tokens = cipher.encryptMany(values)
      assert.strictEqual(tokens.length, values.length)
      for (let i = 0; i < values.length; i++) {
        assert.strictEqual(nodeOpen(raw, tokens[i]!), Buffer.from(values[i]!).toString(), `seed ${seed}`)
      }
      const fromNode = values.map((value) => nodeToken(raw, value, randomBytes(12)))
      const opened = cipher.decryptMany(fromNode)
      for (let i = 0; i < values.length; i++) {
        assert.strictEqual(Result.getOrThrow(opened[i]!), Buffer.from(values[i]!).toString(), `seed ${seed}`)
      }
    }
  })

  it("a token altered anywhere, or made with another key, fails in its slot only", () => {
    const raw = randomBytes(32)
    const cipher = makeCipher(keyOf(raw))
    const values = Array.from({ length: 500 }, randomValue)
    const tokens = cipher.encryptMany(values)
    const altered = tokens.map((token) => {
      const bytes = Buffer.from(token, "base64url")
      bytes[below(bytes.length)]! ^= 1 << below(8) // nonce, ciphertext or tag
      return bytes.toString("base64url")
    })
    // And one phone's token with each of its 40 bytes altered in turn.
    const phoneToken = Buffer.from(cipher.encrypt("447700900123"), "base64url")
    for (let at = 0; at < phoneToken.length; at++) {
      const bytes = Buffer.from(phoneToken)
      bytes[at]! ^= 1 << below(8)
      altered.push(bytes.toString("base64url"))
    }
    const otherKey = values.map((value) => nodeToken(randomBytes(32), value, randomBytes(12)))
    const results = cipher.decryptMany([...altered, ...otherKey, ...tokens])
    const bad = altered.length + otherKey.length
    for (let i = 0; i < bad; i++) {
      const result = results[i]!
      assert.isTrue(Result.isFailure(result), `seed ${seed}, slot ${i}`)
      if (Result.isFailure(result)) assert.strictEqual(result.failure._tag, "DecryptionFailed")
    }
    assert.deepStrictEqual(
      results.slice(bad).map(Result.getOrThrow),
      values.map((v) => Buffer.from(v).toString())
    )
  })

  it("an authenticated plaintext that is not UTF-8 does not decrypt (as with node:crypto's path)", () => {
    const raw = randomBytes(16)
    const nonce = randomBytes(12)
    const cipher = createCipheriv("aes-128-gcm", raw, nonce)
    const body = Buffer.concat([cipher.update(Uint8Array.of(0x34, 0xff, 0xfe)), cipher.final()])
    const token = Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64url")
    const result = makeCipher(keyOf(raw)).decrypt(token)
    assert.isTrue(Result.isFailure(result))
  })

  it("key rotation in a batch: tokens of either key decrypt, new ones are made with the current key", () => {
    const oldRaw = randomBytes(32)
    const newRaw = randomBytes(24)
    const rotated = makeCipher(keyOf(newRaw), keyOf(oldRaw))
    const values = Array.from({ length: 200 }, randomValue)
    const mixed = values.map((value, i) =>
      i % 2 === 0 ? nodeToken(oldRaw, value, randomBytes(12)) : nodeToken(newRaw, value, randomBytes(12))
    )
    assert.deepStrictEqual(
      rotated.decryptMany(mixed).map(Result.getOrThrow),
      values.map((v) => Buffer.from(v).toString())
    )
    for (const token of rotated.encryptMany(values.slice(0, 20))) assert.doesNotThrow(() => nodeOpen(newRaw, token))
  })

  it("every token gets its own random nonce: 100,000 values (two batches) share none", () => {
    const cipher = makeCipher(keyOf(randomBytes(32)))
    const phones = Array.from({ length: 50_000 }, () => "447700900123") // same value: only the nonce differs
    const tokens = [...cipher.encryptMany(phones), ...cipher.encryptMany(phones), cipher.encrypt("447700900123")]
    // 12 bytes of nonce are exactly the first 16 base64 characters.
    assert.strictEqual(new Set(tokens.map((token) => token.slice(0, 16))).size, tokens.length)
  })
})
