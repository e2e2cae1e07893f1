/**
 * Encryption tokens: 1,000,000 twelve-digit phone numbers encrypted through the `Encryption`
 * service's `encryptMany` in batches of 8,192 (what the encryption-file job does), the bulk AES-GCM
 * of `Gcm.ts`. Three rounds; each round also times the per-call node:crypto path the service used
 * before (`createCipheriv` + `update` + `final` + `getAuthTag` per value, `KeyObject` key) on
 * 250,000 values, right after, so every bulk figure has a reference measured under the same load.
 * Then, once: the encryption-file transform of a 1M-row CSV held in memory (first-column parse +
 * `encryptMany` + output text; storage not included), `decryptMany` of the 1M tokens and, as its
 * reference, the former per-call decrypt on 250,000 of them.
 *
 * Target (issue "encryption files"): 1,000,000 numbers encrypted in < 5 s.
 */
import { createDecipheriv, randomBytes, randomFillSync } from "node:crypto"
import { Effect, Layer, Result } from "effect"
import { AppConfig, decodeBase64Lenient, Encryption, parseAesKey, transformTokenCsv } from "@optimizer/core"
import { openOne, sealOne } from "@optimizer/core/encryption"
import { perSecond, type Benchmark } from "./support.ts"

const VALUES = 1_000_000
const REFERENCE_VALUES = 250_000
const BATCH = 8_192
const ROUNDS = 3

const phoneAt = (i: number) => `447${400_000_000 + ((i * 7) % 200_000_000)}`
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const seconds = (ms: number) => Number((ms / 1000).toFixed(2))

export const encryptionBenchmark: Benchmark = {
  name: "encryption",
  description: "encrypt 1M phone numbers (encryptMany, bulk AES-GCM) vs node:crypto per call; CSV transform; decrypt",
  run: async () => {
    const rawKey = randomBytes(32)
    const keyText = rawKey.toString("base64url")
    const key = Result.getOrThrow(parseAesKey(keyText))
    const layer = Encryption.layer.pipe(Layer.provide(AppConfig.layerFrom({ AES_KEY: keyText })))
    const encryption = await Effect.runPromise(
      Effect.gen(function* () {
        return yield* Encryption
      }).pipe(Effect.provide(layer))
    )
    const phones = Array.from({ length: VALUES }, (_, i) => phoneAt(i))

    const encryptAll = async (): Promise<ReadonlyArray<string>> => {
      const tokens: Array<string> = []
      for (let start = 0; start < VALUES; start += BATCH) {
        const batch = phones.slice(start, start + BATCH)
        for (const token of await Effect.runPromise(encryption.encryptMany(batch))) tokens.push(token)
      }
      return tokens
    }
    /** The service's former path: one node:crypto GCM cipher per value, nonces from a pooled buffer. */
    const perCall = (count: number) => {
      const nonces = new Uint8Array(12 * 4096)
      const tokens = new Array<string>(count)
      for (let i = 0; i < count; i++) {
        if (i % 4096 === 0) randomFillSync(nonces)
        const at = 12 * (i % 4096)
        tokens[i] = sealOne(key, phones[i]!, nonces.subarray(at, at + 12))
      }
      return tokens
    }

    const bulkMs: Array<number> = []
    const referenceMs: Array<number> = []
    let tokens: ReadonlyArray<string> = []
    for (let round = 0; round < ROUNDS; round++) {
      let started = performance.now()
      tokens = await encryptAll()
      bulkMs.push(performance.now() - started)
      started = performance.now()
      perCall(REFERENCE_VALUES)
      referenceMs.push(((performance.now() - started) * VALUES) / REFERENCE_VALUES)
    }

    // The tokens are real AES-GCM: a sample opens with node:crypto.
    for (let i = 0; i < VALUES; i += 9_973) {
      const bytes = Buffer.from(tokens[i]!, "base64url")
      const decipher = createDecipheriv("aes-256-gcm", rawKey, bytes.subarray(0, 12))
      decipher.setAuthTag(bytes.subarray(bytes.length - 16))
      const plain = Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()])
      if (plain.toString() !== phones[i]) throw new Error(`token ${i} does not decrypt to its phone`)
    }

    // The encryption-file transform on a 1M-row CSV in memory, in 64 KiB chunks as a stream gives them.
    const csv = phones.join("\n") + "\n"
    async function* chunks() {
      for (let at = 0; at < csv.length; at += 65_536) yield csv.slice(at, at + 65_536)
    }
    let outputChars = 0
    let started = performance.now()
    const counts = await Effect.runPromise(
      transformTokenCsv(encryption, "encrypt", chunks(), (text) =>
        Effect.sync(() => {
          outputChars += text.length
        })
      )
    )
    const csvMs = performance.now() - started
    if (counts.records !== VALUES) throw new Error(`the CSV transform read ${counts.records} rows`)

    started = performance.now()
    let failed = 0
    for (let start = 0; start < VALUES; start += BATCH) {
      const results = await Effect.runPromise(encryption.decryptMany(tokens.slice(start, start + BATCH)))
      for (const result of results) if (Result.isFailure(result)) failed++
    }
    const decryptMs = performance.now() - started
    if (failed > 0) throw new Error(`${failed} tokens did not decrypt`)
    // The former decrypt path: decode, then one node:crypto GCM decipher per token.
    started = performance.now()
    for (let i = 0; i < REFERENCE_VALUES; i++) {
      if (openOne(key, decodeBase64Lenient(tokens[i]!)!) === undefined) failed++
    }
    const decryptReferenceMs = ((performance.now() - started) * VALUES) / REFERENCE_VALUES

    return {
      "encrypt 1M (median of 3), s": seconds(median(bulkMs)),
      "encrypt 1M runs, s": bulkMs.map(seconds).join(" / "),
      "encrypt, values/s": perSecond(VALUES, median(bulkMs)),
      "per-call node:crypto 1M-equiv, s": seconds(median(referenceMs)),
      "per-call runs (250k × 4 each), s": referenceMs.map(seconds).join(" / "),
      "speed-up (median of rounds)": Number(median(bulkMs.map((ms, i) => referenceMs[i]! / ms)).toFixed(1)),
      "CSV transform 1M rows, s": seconds(csvMs),
      "CSV output, MB": Math.round(outputChars / 1e6),
      "decryptMany 1M, s": seconds(decryptMs),
      "per-call decrypt 1M-equiv, s": seconds(decryptReferenceMs)
    }
  }
}
