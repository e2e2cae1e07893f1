/**
 * Encryption: tokens as the original makes them, one or many, and a key rotation (tokens made with
 * the old key made again with the new one). No database.
 *
 *   node examples/encryption.ts
 */
import { randomBytes } from "node:crypto"
import { DecryptionFailed } from "@optimizer/core/errors"
import { createOptimizer } from "@optimizer/core/promise"

const oldKey = randomBytes(32).toString("base64url")
const newKey = randomBytes(32).toString("base64url")

await using before = createOptimizer({ encryption: { key: oldKey } })
const tokens = await before.encryption.encryptMany(["447700900001", "447700900002"])
console.log("decrypted:", await before.encryption.decrypt(tokens[0]!))

// Rotation: the new key first, the old one still opens what it made.
await using after = createOptimizer({ encryption: { key: newKey, previousKey: oldKey } })
const rotated = await after.encryption.reencrypt(tokens)
console.log("re-encrypted with the new key:", rotated.length, "tokens")

// Without the old key, an old token does not open: a typed error, `instanceof` works.
await using newOnly = createOptimizer({ encryption: { key: newKey } })
try {
  await newOnly.encryption.decrypt(tokens[0]!)
} catch (error) {
  console.log("old token with the new key only:", error instanceof DecryptionFailed ? error._tag : error)
}
console.log("rotated tokens open with the new key only:", await newOnly.encryption.decryptMany(rotated))
