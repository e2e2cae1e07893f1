/**
 * API keys with roles (docs/security.md).
 *
 * A key is `opt_<8-char prefix>_<43-char secret>` (256 random bits). Only its SHA-256 is stored: a
 * random key of that length needs no slow password hash (nothing to brute-force), and a fast hash
 * lets every request be authenticated without a bcrypt-class cost. The prefix is stored in clear so
 * operators can tell keys apart in `keys list` and revoke by prefix.
 *
 * Roles are ordered: viewer (read) < operator (uploads, processing, syncs, jobs) < admin (list
 * imports, exports, decryption, keys).
 *
 * Authentication results are cached in memory for `CACHE_TTL_MS`, so a busy endpoint does not pay a
 * database round trip per request; a revoked key therefore stops working within that time on other
 * processes (at once on the process that revoked it). Known keys and unknown ones are cached apart:
 * the known are bounded by the keys table, the unknown by `UNKNOWN_CACHE_MAX` (oldest dropped first),
 * so a flood of made-up keys never pushes the real ones out.
 */
import { hash, randomBytes } from "node:crypto"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { decodeRows } from "../platform/Database.ts"
import { NotFound, ValidationError, type DatabaseError } from "../platform/Errors.ts"

export const Role = Schema.Literals(["viewer", "operator", "admin"])
export type Role = typeof Role.Type

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 }

/** Does a key of role `have` satisfy an endpoint that needs `need`? */
export const roleAllows = (have: Role, need: Role): boolean => RANK[have] >= RANK[need]

export interface ApiKeyInfo {
  readonly id: string
  readonly name: string
  readonly role: Role
  readonly prefix: string
  readonly createdAt: Date
  readonly lastUsedAt: Date | null
  readonly revokedAt: Date | null
}

export interface CreatedApiKey extends ApiKeyInfo {
  /** The key itself: shown once, never stored. */
  readonly key: string
}

export interface Principal {
  readonly keyId: string
  readonly name: string
  readonly role: Role
}

const CACHE_TTL_MS = 10_000
/** Unknown keys remembered (each ~100 bytes): enough to absorb a client retrying a few bad keys. */
const UNKNOWN_CACHE_MAX = 10_000
const LAST_USED_RESOLUTION_MS = 60_000

/** SHA-256 hex of a key. The one-shot `hash` is half the cost of `createHash` (it runs on every request). */
export const hashApiKey = (key: string): string => hash("sha256", key, "hex")

const KEY_SHAPE = /^opt_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}$/

const newKey = (): { key: string; prefix: string } => {
  const prefix = randomBytes(6).toString("base64url").replace(/[-_]/g, "x").slice(0, 8)
  return { key: `opt_${prefix}_${randomBytes(32).toString("base64url")}`, prefix }
}

const KeyRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  role: Role,
  key_prefix: Schema.String,
  created_at: Schema.Date,
  last_used_at: Schema.NullOr(Schema.Date),
  revoked_at: Schema.NullOr(Schema.Date)
})
type KeyRow = typeof KeyRow.Type
const RevokedRow = Schema.Struct({ ...KeyRow.fields, key_hash: Schema.String })
const PrincipalRow = Schema.Struct({ id: Schema.String, name: Schema.String, role: Role })
const CountRow = Schema.Struct({ n: Schema.Number })

const toInfo = (r: KeyRow): ApiKeyInfo => ({
  id: r.id,
  name: r.name,
  role: r.role,
  prefix: r.key_prefix,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at
})

export class ApiKeys extends Context.Service<
  ApiKeys,
  {
    readonly create: (input: {
      name: string
      role: Role
    }) => Effect.Effect<CreatedApiKey, DatabaseError | ValidationError>
    readonly list: (options?: { includeRevoked?: boolean }) => Effect.Effect<ReadonlyArray<ApiKeyInfo>, DatabaseError>
    /** Revokes by id or by prefix. */
    readonly revoke: (idOrPrefix: string) => Effect.Effect<ApiKeyInfo, DatabaseError | NotFound>
    /** The principal of a presented key, or none when it is unknown or revoked. */
    readonly authenticate: (key: string) => Effect.Effect<Option.Option<Principal>, DatabaseError>
    /**
     * `authenticate`'s answer when it needs no database: a malformed key, or a key verified in the
     * last 10 s (the same cache). Undefined when `authenticate` must ask the database. Synchronous,
     * so that the HTTP server checks a recently seen key without starting a fiber.
     */
    readonly authenticateCached: (key: string) => Option.Option<Principal> | undefined
    /** Creates an admin key when no active key exists (the quick start prints it once). */
    readonly ensureBootstrapAdmin: Effect.Effect<Option.Option<CreatedApiKey>, DatabaseError>
  }
>()("@optimizer/core/auth/ApiKeys") {
  /** `cacheTtlMs`: how long an answer is reused (10 s; tests that must not depend on speed lengthen it). */
  static readonly layerWith = (options: { readonly cacheTtlMs?: number } = {}) =>
    Layer.effect(ApiKeys, ApiKeys.make(options.cacheTtlMs ?? CACHE_TTL_MS))

  static readonly make = (cacheTtlMs: number) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      /** Keys found in the table (hash → principal until): as many as there are keys. */
      const known = new Map<string, { principal: Option.Option<Principal>; until: number }>()
      /** Keys not in the table (hash → until), insertion-ordered: the oldest is dropped at the bound. */
      const unknown = new Map<string, number>()
      const cached = (hash: string, now: number): Option.Option<Principal> | undefined => {
        const hit = known.get(hash)
        if (hit !== undefined && hit.until > now) return hit.principal
        const miss = unknown.get(hash)
        return miss !== undefined && miss > now ? Option.none() : undefined
      }
      const remember = (hash: string, principal: Option.Option<Principal>, now: number) => {
        if (Option.isSome(principal)) {
          known.set(hash, { principal, until: now + cacheTtlMs })
          return
        }
        unknown.delete(hash)
        if (unknown.size >= UNKNOWN_CACHE_MAX) unknown.delete(unknown.keys().next().value!)
        unknown.set(hash, now + cacheTtlMs)
      }
      const lastUsedWritten = new Map<string, number>()

      const create = Effect.fn("ApiKeys.create")(function* (input: { name: string; role: Role }) {
        const name = input.name.trim()
        if (name === "" || name.length > 100) {
          return yield* new ValidationError({ message: "a key name of 1 to 100 characters is required", field: "name" })
        }
        if (!Schema.is(Role)(input.role)) {
          return yield* new ValidationError({ message: "role must be viewer, operator or admin", field: "role" })
        }
        const { key, prefix } = newKey()
        const rows = yield* sql`
          INSERT INTO api_keys (name, role, key_prefix, key_hash)
          VALUES (${name}, ${input.role}, ${prefix}, ${hashApiKey(key)})
          RETURNING id, name, role, key_prefix, created_at, last_used_at, revoked_at`.pipe(decodeRows(KeyRow))
        return { ...toInfo(rows[0]!), key }
      })

      const list = Effect.fn("ApiKeys.list")(function* (options?: { includeRevoked?: boolean }) {
        const rows = yield* sql`
          SELECT id, name, role, key_prefix, created_at, last_used_at, revoked_at FROM api_keys
          WHERE ${options?.includeRevoked ? sql`true` : sql`revoked_at IS NULL`}
          ORDER BY created_at`.pipe(decodeRows(KeyRow))
        return rows.map(toInfo)
      })

      const revoke = Effect.fn("ApiKeys.revoke")(function* (idOrPrefix: string) {
        const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrPrefix)
        const rows = yield* sql`
          UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE ${isUuid ? sql`id = ${idOrPrefix}::uuid` : sql`key_prefix = ${idOrPrefix}`}
          RETURNING id, name, role, key_prefix, key_hash, created_at, last_used_at, revoked_at`.pipe(
          decodeRows(RevokedRow)
        )
        const row = rows[0]
        if (row === undefined) return yield* new NotFound({ message: `no API key with id or prefix "${idOrPrefix}"` })
        known.delete(row.key_hash)
        return toInfo(row)
      })

      const authenticateCached = (key: string): Option.Option<Principal> | undefined => {
        if (!KEY_SHAPE.test(key)) return Option.none()
        return cached(hashApiKey(key), Date.now())
      }

      // Untraced: it runs on every request, and `Effect.fn`'s span and call-site stack capture cost
      // more than the cached lookup itself (~15-25 µs of a ~50 µs authenticated request).
      const authenticate = Effect.fnUntraced(function* (key: string) {
        if (!KEY_SHAPE.test(key)) return Option.none<Principal>()
        const hash = hashApiKey(key)
        const now = Date.now()
        const hit = cached(hash, now)
        if (hit !== undefined) return hit
        const rows = yield* sql`
          SELECT id, name, role FROM api_keys WHERE key_hash = ${hash} AND revoked_at IS NULL`.pipe(
          decodeRows(PrincipalRow)
        )
        const row = rows[0]
        const principal: Option.Option<Principal> =
          row === undefined ? Option.none() : Option.some({ keyId: row.id, name: row.name, role: row.role })
        remember(hash, principal, now)
        if (row !== undefined && (lastUsedWritten.get(row.id) ?? 0) + LAST_USED_RESOLUTION_MS < now) {
          lastUsedWritten.set(row.id, now)
          yield* sql`UPDATE api_keys SET last_used_at = now() WHERE id = ${row.id}`.pipe(Effect.ignore)
        }
        return principal
      })

      const ensureBootstrapAdmin = Effect.gen(function* () {
        const rows = yield* sql`SELECT count(*)::int AS n FROM api_keys WHERE revoked_at IS NULL`.pipe(
          decodeRows(CountRow)
        )
        if ((rows[0]?.n ?? 0) > 0) return Option.none<CreatedApiKey>()
        const created = yield* create({ name: "bootstrap-admin", role: "admin" }).pipe(
          Effect.catchTag("ValidationError", (e) => Effect.die(e))
        )
        return Option.some(created)
      })

      return ApiKeys.of({ create, list, revoke, authenticate, authenticateCached, ensureBootstrapAdmin })
    })

  static readonly layer = ApiKeys.layerWith()
}
