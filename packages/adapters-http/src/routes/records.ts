/**
 * `/find_records`: a number's Voluum traffic-source rows, by phone in any format or (admins only: the
 * answer reveals the number) by encryption token, with its current list.
 */
import { Schema } from "effect"
import { ListName, Records, type AppServices } from "@optimizer/core"
import type { Routes } from "../http.ts"

export const recordRoutes = (routes: Routes<AppServices>) =>
  routes.add(
    {
      method: "post",
      path: "/find_records",
      role: "viewer",
      tag: "voluum",
      summary: "A number's rows of api_voluum_ts_sources (positional, see columns) and its current list",
      description:
        "phone_number: a phone in any international format (+44 7700 900123, 447700900123) or, with an admin key, an encryption token (other roles get 403: the answer reveals the number). A value that is neither matches nothing. At most 256 characters.",
      body: Schema.Struct({ phone_number: Schema.String }),
      returns: '{"results": [[…], …], "columns": […], "list": "blacklist" | "whitelist" | "monitor" | null, "reason"}',
      response: Schema.Struct({
        results: Schema.Array(Schema.Array(Schema.Unknown)),
        columns: Schema.Array(Schema.String),
        list: Schema.NullOr(ListName),
        reason: Schema.NullOr(Schema.String)
      })
    },
    ({ body, principal }) =>
      Records.use((records) => records.find(body.phone_number, { mayDecrypt: principal?.role === "admin" }))
  )
