/**
 * `/find_records`: a number's Voluum traffic-source rows, by phone in any format or (admins only: the
 * answer reveals the number) by encryption token, with its current list.
 */
import { Schema } from "effect"
import { ListName, Records, type AppServices } from "@optimizer/core"
import type { Routes } from "../http.ts"
import { Num } from "../responses.ts"

/** A row's value: text, a number, a timestamp (ISO string) or null, by its column. */
const Cell = Schema.Union([Schema.String, Num, Schema.Null])

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
        results: Schema.Array(Schema.Array(Cell)).annotate({
          description:
            "One positional row per api_voluum_ts_sources row of the number, in `columns` order, oldest first"
        }),
        columns: Schema.Array(Schema.String).annotate({ description: "The rows' column names, in order" }),
        list: Schema.NullOr(ListName).annotate({ description: "The list the number is on now, or null" }),
        reason: Schema.NullOr(Schema.String)
      }).annotate({ identifier: "FoundRecords" })
    },
    ({ body, principal }) =>
      Records.use((records) => records.find(body.phone_number, { mayDecrypt: principal?.role === "admin" }))
  )
