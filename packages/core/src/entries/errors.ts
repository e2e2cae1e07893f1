/** `@optimizer/core/errors`: every typed error class of the SDK (`_tag`, `message`, documented fields). */
export * from "../platform/Errors.ts"
export * from "../CoreError.ts"
export { InvalidToken, DecryptionFailed } from "../encryption/Encryption.ts"
export { SchemaVersionMismatch, MigrationChecksumMismatch } from "../platform/SchemaVersion.ts"
