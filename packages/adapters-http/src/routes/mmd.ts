/**
 * MessageWhiz (`docs/mmd.md`, `docs/original-api.md` "MessageWhiz") with the original's paths, query
 * parameters and response keys: the daily cost push to Voluum.
 */
import { Schema } from "effect"
import { Mmd, type AppServices } from "@optimizer/core"
import { QueryBoolean, type Routes } from "../http.ts"

const CostsQuery = Schema.Struct({
  /** Not in the original (always yesterday): a day to push again. */
  date: Schema.optionalKey(Schema.String),
  dry_run: Schema.optionalKey(QueryBoolean)
})

/** Pushing a day of many campaigns goes at Voluum's pace; the original's cron waited up to 300 s. */
const COSTS_WAIT_MS = 285_000

export const mmdRoutes = (routes: Routes<AppServices>) =>
  routes.add(
    {
      method: "get",
      path: "/update-costs-for-mmd",
      role: "operator",
      tag: "mmd",
      summary: "Sets yesterday's (UTC) MessageWhiz costs per Voluum campaign (dry_run: only shows them)",
      description:
        "Sums real_price over all of the day's broadcasts per Voluum campaign (from the broadcast's tracked link) and sets it as the campaign's cost for the day; a second run sets the same totals. Broadcasts without a known link are listed in `skipped`.",
      query: CostsQuery,
      returns:
        '{"total_rows", "updates": [{"index", "rows", "campaign_id", "total_cost", "chunk", "response", "error"?, "request"}], "date", "dry_run", "currency", "broadcasts", "skipped", "failed"}',
      waitsMs: () => COSTS_WAIT_MS
    },
    ({ query }) => Mmd.use((m) => m.pushCosts(query.date, { dryRun: query.dry_run === true }))
  )
