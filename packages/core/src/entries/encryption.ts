/**
 * `@optimizer/core/encryption`: AES-GCM tokens as the original makes them — `makeCipher(key)` for a
 * plain object, `Encryption` as an Effect service configured by `AppConfig`, the bulk primitives.
 * Importing this entry loads no database or AWS module (test/sdk-entries.test.ts checks it).
 */
export * from "../encryption/Encryption.ts"
export {
  BULK_CHUNK_VALUES,
  BULK_MAX_CHARS,
  makeBulkGcm,
  NONCE_BYTES,
  openOne,
  sealOne,
  TAG_BYTES,
  type BulkGcm,
  type GcmKey
} from "../encryption/Gcm.ts"
