/**
 * The phone lists over HTTP: the original's manual imports (`docs/original-api.md` "Lists") and
 * blacklist CSV import (now into the blacklist), with their response keys; plus, new,
 * explain (where a number is and why), list counts, and removal by an admin.
 */
import { Effect, Schema } from "effect"
import {
  AppConfig,
  ListName,
  Lists,
  ManualImportTarget,
  ManualImports,
  ValidationError,
  type AppServices,
  type Principal
} from "@optimizer/core"
import { csvDownload } from "../download.ts"
import type { Routes } from "../http.ts"
import { uploadedFile } from "../upload.ts"
import { Count, Items, Timestamp } from "../responses.ts"

/** Who made a change, for the lists' audit. */
const actorOf = (principal: Principal | undefined): string =>
  principal === undefined ? "api" : `api_key:${principal.name}`

const TargetQuery = Schema.Struct({ target: Schema.optionalKey(Schema.String) })
const PhoneQuery = Schema.Struct({ phone: Schema.String })
const RemoveBody = Schema.Struct({
  phones: Schema.Array(Schema.String),
  reason: Schema.optionalKey(Schema.String)
})

const ManualImportResult = Schema.Struct({
  id: Schema.String,
  target: ManualImportTarget,
  original_filename: Schema.String,
  uploaded: Count.annotate({ description: "Rows read" }),
  accepted: Count.annotate({ description: "Rows added to the list" }),
  rejected: Count.annotate({ description: "Rows refused, each with its reason in the result CSV" })
}).annotate({ identifier: "ManualImportResult" })

const ManualImportHistoryItem = Schema.Struct({
  id: Schema.String,
  original_filename: Schema.String,
  target: ManualImportTarget,
  uploaded_count: Count,
  accepted_count: Count,
  rejected_count: Count,
  created_at: Timestamp
}).annotate({ identifier: "ManualImportHistoryItem" })

const BlacklistCsvImportResult = Schema.Struct({
  ok: Schema.Literal(true),
  original_filename: Schema.String,
  rows_imported: Count.annotate({ description: "Rows written to the blacklist" }),
  rows_rejected: Count.annotate({
    description: "Rows skipped: not a valid number, or a cell that is not a number / a date"
  })
}).annotate({ identifier: "BlacklistCsvImportResult" })

const ListAuditEntry = Schema.Struct({
  action: Schema.Literals(["add", "move", "update", "remove"]),
  from_list: Schema.NullOr(ListName),
  to_list: Schema.NullOr(ListName),
  reason: Schema.NullOr(Schema.String),
  source: Schema.NullOr(Schema.String),
  actor: Schema.String.annotate({ description: "Who made the change: api_key:<name>, job:<id>, sync:…, cli" }),
  created_at: Timestamp
}).annotate({ identifier: "ListAuditEntry" })

const ListExplanation = Schema.Struct({
  phone: Schema.String.annotate({ description: "The number's canonical key: E.164 digits without +" }),
  list: Schema.NullOr(ListName).annotate({ description: "The list it is on, or null" }),
  reason: Schema.NullOr(Schema.String),
  source: Schema.NullOr(Schema.String),
  sticky: Schema.Boolean.annotate({ description: "Kept by automatic writes (syncs, HLR); only an admin moves it" }),
  since: Schema.NullOr(Timestamp).annotate({ description: "When it was put on its current list" }),
  history: Schema.Array(ListAuditEntry).annotate({ description: "Newest first, at most 100" })
}).annotate({ identifier: "ListExplanation" })

const RemoveResult = Schema.Struct({
  removed: Count.annotate({ description: "Entries taken off a list (one per number and list)" }),
  invalid: Schema.Array(Schema.String).annotate({ description: "Inputs that are not phone numbers, as given" }),
  not_listed: Count.annotate({ description: "Valid numbers that were on none of the lists searched" })
}).annotate({ identifier: "ListRemoveResult" })

const listOf = (raw: string | undefined) =>
  Schema.decodeUnknownEffect(ListName)(raw).pipe(
    Effect.mapError(
      () => new ValidationError({ message: "list must be blacklist, whitelist or monitor", field: "list" })
    )
  )

export const listRoutes = (routes: Routes<AppServices>) =>
  routes
    .add(
      {
        method: "post",
        path: "/db-manual-update/import",
        role: "admin",
        tag: "lists",
        summary:
          "Import a CSV (phone, reason, source; optional os_version, user_agent, ip) into the blacklist or the monitor list",
        description:
          "Each row is added, or rejected with a reason in the result CSV (rejected_missing_required, rejected_invalid_phone, rejected_duplicate, rejected_duplicate_in_file). Numbers are normalised; whitelisted numbers are moved.",
        query: TargetQuery,
        upload: true,
        returns: '{"id", "target", "original_filename", "uploaded", "accepted", "rejected"}',
        response: ManualImportResult
      },
      ({ c, query, principal }) =>
        Effect.gen(function* () {
          const target = query.target ?? ""
          if (target !== "blacklist" && target !== "monitor") {
            return yield* new ValidationError({ message: "target must be blacklist or monitor", field: "target" })
          }
          const { uploadMaxBytes } = yield* AppConfig
          const file = yield* uploadedFile(c, { maxBytes: uploadMaxBytes })
          return yield* ManualImports.use((imports) =>
            imports.importFile({ target, filename: file.filename, body: file.stream, actor: actorOf(principal) })
          )
        })
    )
    .add(
      {
        method: "get",
        path: "/db-manual-update/history",
        role: "viewer",
        tag: "lists",
        summary: "The latest 50 manual imports, newest first",
        returns:
          '{"items": [{"id", "original_filename", "target", "uploaded_count", "accepted_count", "rejected_count", "created_at"}]}',
        response: Items(ManualImportHistoryItem)
      },
      () => ManualImports.use((imports) => imports.history).pipe(Effect.map((items) => ({ items })))
    )
    .add(
      {
        method: "get",
        path: "/db-manual-update/:import_id/download",
        role: "viewer",
        tag: "lists",
        summary: "The result CSV of a manual import (phone,result), named result_<original filename>",
        returns: "text/csv",
        produces: "text/csv"
      },
      ({ params }) =>
        ManualImports.use((imports) => imports.resultFile(params.import_id ?? "")).pipe(
          Effect.map((file) => csvDownload(file.body, file.filename))
        )
    )
    .add(
      {
        method: "post",
        path: "/import-blacklist-csv",
        role: "admin",
        tag: "lists",
        summary:
          "Upsert a CSV whose header names blacklist columns (custom_variable_1, reason, clicks, …) into the blacklist",
        description:
          "The original wrote these rows to the monitor list; they go to the blacklist now. Rows with an invalid number or a non-numeric metric are skipped and counted in rows_rejected.",
        upload: true,
        returns: '{"ok": true, "original_filename", "rows_imported", "rows_rejected"}',
        response: BlacklistCsvImportResult
      },
      ({ c, principal }) =>
        Effect.gen(function* () {
          const { uploadMaxBytes } = yield* AppConfig
          const file = yield* uploadedFile(c, { maxBytes: uploadMaxBytes })
          return yield* ManualImports.use((imports) =>
            imports.importBlacklistCsv({ filename: file.filename, body: file.stream, actor: actorOf(principal) })
          )
        })
    )
    .add(
      {
        method: "get",
        path: "/lists/explain",
        role: "viewer",
        tag: "lists",
        summary: "Where a number is (blacklist, whitelist, monitor or none), why, since when, and its history",
        description: "The number may be typed in any format (`+44 7700 900123`, `00447700900123`, `447700900123`).",
        query: PhoneQuery,
        returns:
          '{"phone", "list", "reason", "source", "sticky", "since", "history": [{"action", "from_list", "to_list", "reason", "source", "actor", "created_at"}]}',
        response: ListExplanation
      },
      ({ query }) =>
        Lists.use((lists) => lists.explain(query.phone)).pipe(
          // The HTTP API names keys in snake_case, as the original's endpoints do.
          Effect.map((explained) => ({
            ...explained,
            history: explained.history.map(({ fromList, toList, createdAt, ...entry }) => ({
              ...entry,
              from_list: fromList,
              to_list: toList,
              created_at: createdAt
            }))
          }))
        )
    )
    .add(
      {
        method: "get",
        path: "/lists/counts",
        role: "viewer",
        tag: "lists",
        summary: "How many numbers each list holds",
        returns: '{"blacklist", "whitelist", "monitor"}',
        response: Schema.Struct({ blacklist: Count, whitelist: Count, monitor: Count }).annotate({
          identifier: "ListCounts"
        })
      },
      () => Lists.use((lists) => lists.counts)
    )
    .add(
      {
        method: "post",
        path: "/lists/:list/remove",
        role: "admin",
        tag: "lists",
        summary: "Take numbers off a list (sticky entries too); each removal is audited",
        body: RemoveBody,
        returns: '{"removed", "not_listed", "invalid": [...]}',
        response: RemoveResult
      },
      ({ params, body, principal }) =>
        Effect.gen(function* () {
          const list = yield* listOf(params.list)
          const { notListed, ...removed } = yield* Lists.use((lists) =>
            lists.remove(body.phones, {
              actor: actorOf(principal),
              list,
              ...(body.reason === undefined ? {} : { reason: body.reason })
            })
          )
          return { ...removed, not_listed: notListed }
        })
    )
