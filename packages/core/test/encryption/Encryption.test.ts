/**
 * AES-GCM tokens exactly as the original made them: the Python-made vectors (aes-gcm-tokens.json,
 * a copy of shared/vectors), every accepted spelling, typed failures, key rotation, and the
 * service's configuration states.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Result } from "effect"
import {
  Encryption,
  isEncryptedToken,
  makeCipher,
  parseAesKey,
  type TokenError
} from "../../src/encryption/Encryption.ts"
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
