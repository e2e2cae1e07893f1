import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ApiKeys } from "@optimizer/core"
import { printJson, printLines, printTable } from "../output.ts"
import { withServices } from "../runtime.ts"

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))

const create = Command.make(
  "create",
  {
    role: Flag.Literals("role", ["viewer", "operator", "admin"]).pipe(Flag.withDescription("what the key may do")),
    name: Flag.String("name").pipe(Flag.withDefault("cli"), Flag.withDescription("a label for the key")),
    json
  },
  ({ role, name, json }) =>
    withServices(
      Effect.gen(function* () {
        const created = yield* ApiKeys.use((k) => k.create({ name, role }))
        if (json) return yield* printJson(created)
        yield* printLines(
          `created ${created.role} key "${created.name}" (prefix ${created.prefix}, id ${created.id})`,
          "",
          `  ${created.key}`,
          "",
          "It is shown only now: store it. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
        )
      })
    )
).pipe(Command.withDescription("Create an API key and print it once"))

const list = Command.make(
  "list",
  { json, all: Flag.Boolean("all").pipe(Flag.withDefault(false), Flag.withDescription("include revoked keys")) },
  ({ json, all }) =>
    withServices(
      Effect.gen(function* () {
        const keys = yield* ApiKeys.use((k) => k.list({ includeRevoked: all }))
        if (json) return yield* printJson(keys)
        yield* printTable(keys, ["id", "prefix", "name", "role", "createdAt", "lastUsedAt", "revokedAt"])
      })
    )
).pipe(Command.withDescription("List API keys (never the keys themselves)"))

const revoke = Command.make(
  "revoke",
  {
    key: Argument.String("id-or-prefix").pipe(Argument.withDescription("the key's id or its 8-character prefix")),
    json
  },
  ({ key, json }) =>
    withServices(
      Effect.gen(function* () {
        const revoked = yield* ApiKeys.use((k) => k.revoke(key))
        if (json) return yield* printJson(revoked)
        yield* printLines(`revoked key ${revoked.prefix} ("${revoked.name}", ${revoked.role})`)
      })
    )
).pipe(Command.withDescription("Revoke an API key"))

export const keysCommand = Command.make("keys").pipe(
  Command.withDescription("Manage API keys"),
  Command.withSubcommands([create, list, revoke])
)
