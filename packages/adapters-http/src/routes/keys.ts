/** API keys over HTTP (admin only): list, create (the key is in the response, once), revoke. */
import { Schema } from "effect"
import { ApiKeys, Role, type AppServices } from "@optimizer/core"
import type { Routes } from "../http.ts"

export const keyRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "get",
        path: "/api-keys",
        role: "admin",
        tag: "api keys",
        summary: "List API keys (never the keys themselves)"
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
        body: Schema.Struct({ name: Schema.String, role: Role })
      },
      ({ body }) => ApiKeys.use((k) => k.create(body))
    )
    .add(
      {
        method: "post",
        path: "/api-keys/:key_id/revoke",
        role: "admin",
        tag: "api keys",
        summary: "Revoke an API key by id or prefix"
      },
      ({ params }) => ApiKeys.use((k) => k.revoke(params.key_id!))
    )
