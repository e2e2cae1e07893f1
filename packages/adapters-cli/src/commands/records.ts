/**
 * `npx optimizer metrics` (GET /get-metrics) and `npx optimizer find-records <phone|token>`
 * (POST /find_records): the same core calls, the same JSON keys with `--json`. The CLI runs with
 * the database's own access, as an admin: a token is decrypted (AES_KEY).
 */
import { Effect } from "effect"
import { Argument, Command } from "effect/cli"
import { Metrics, Records } from "@optimizer/core"
import { switchFlag } from "../fileCommands.ts"
import { printJson, printLines, printTable } from "../output.ts"
import { withServices } from "../runtime.ts"

const json = switchFlag("json", "print the result as JSON")

export const metricsCommand = Command.make("metrics", { json }, ({ json }) =>
  withServices(
    Effect.gen(function* () {
      const metrics = yield* Metrics.use((m) => m.tableCounts)
      if (json) return yield* printJson(metrics)
      yield* printTable(
        Object.entries(metrics).map(([table, [total, day, week]]) => ({
          table,
          total,
          last_24_hours: day,
          last_7_days: week
        })),
        ["table", "total", "last_24_hours", "last_7_days"]
      )
    })
  )
).pipe(Command.withDescription("Row counts of six tables: total, last 24 hours, last 7 days (as GET /get-metrics)"))

export const findRecordsCommand = Command.make(
  "find-records",
  {
    phone: Argument.String("phone-or-token").pipe(
      Argument.withDescription("a phone number in any international format, or an encryption token")
    ),
    json
  },
  ({ phone, json }) =>
    withServices(
      Effect.gen(function* () {
        const found = yield* Records.use((r) => r.find(phone, { mayDecrypt: true }))
        if (json) return yield* printJson(found)
        yield* printLines(
          `list: ${found.list ?? "none"}${found.reason === null ? "" : ` (reason ${found.reason})`}`,
          `${found.results.length} traffic-source rows`
        )
        if (found.results.length > 0) {
          const rows = found.results.map((r) => Object.fromEntries(found.columns.map((c, i) => [c, r[i]])))
          yield* printTable(rows, found.columns as ReadonlyArray<string>)
        }
      })
    )
).pipe(
  Command.withDescription(
    "A number's Voluum traffic-source rows and its current list, by phone or encryption token (as POST /find_records)"
  )
)
