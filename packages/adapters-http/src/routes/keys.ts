/** API keys over HTTP (admin only): list, create (the key is in the response, once), revoke. */
import { Schema } from "effect"
import { ApiKeys, Role, type AppServices } from "@optimizer/core"
import type { Routes } from "../http.ts"
import { Timestamp } from "../responses.ts"

const ApiKeyFields = {
  id: Schema.String,
  name: Schema.String,
  role: Role,
  prefix: Schema.String.annotate({ description: "The key's first characters: how it is recognised, not the key" }),
  createdAt: Timestamp,
  lastUsedAt: Schema.NullOr(Timestamp),
  revokedAt: Schema.NullOr(Timestamp)
}

const ApiKeyInfo = Schema.Struct(ApiKeyFields).annotate({ identifier: "ApiKeyInfo" })

const CreatedApiKey = Schema.Struct({
  ...ApiKeyFields,
  key: Schema.String.annotate({ description: "The key itself: shown only in this answer" })
}).annotate({ identifier: "CreatedApiKey" })

export const keyRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "get",
        path: "/api-keys",
        role: "admin",
        tag: "api keys",
        summary: "List API keys (never the keys themselves)",
        response: Schema.Array(ApiKeyInfo)
      },
      () => ApiKeys.use((k) => k.list({ includeRevoked: true }))
    )
    .add(
      {
        method: "post",
        path: "/api-keys",
        role: "admin",
        tag: "api keys",
        summary: "Create an API key; the response holds the key, shown only this once",
        body: Schema.Struct({ name: Schema.String, role: Role }),
        response: CreatedApiKey
      },
      ({ body }) => ApiKeys.use((k) => k.create(body))
    )
    .add(
      {
        method: "post",
        path: "/api-keys/:key_id/revoke",
        role: "admin",
        tag: "api keys",
        summary: "Revoke an API key by id or prefix",
        response: ApiKeyInfo
      },
      ({ params }) => ApiKeys.use((k) => k.revoke(params.key_id!))
    )
