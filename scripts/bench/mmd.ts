/**
 * MessageWhiz: a day of 2,000 broadcasts over 200 campaigns (10 chunks each, over 2 hours; 1 in 10
 * unsent) against the fake MessageWhiz and the fake Voluum on loopback, through `Mmd` in this process:
 * the day snapshot (Voluum totals once per (campaign, window), file, stats) and the cost push (one
 * Voluum call per campaign). Twice: at Voluum's documented 15 requests/s (VOLUUM_REQUESTS_PER_SECOND's
 * default, the figure that matters in production), and unthrottled (what the code itself costs).
 *
 * Target (issue "MessageWhiz"): at most one Voluum call per (campaign, window).
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Result } from "effect"
import { makeRuntime, Mmd, parseSettings } from "@optimizer/core"
import { seedBusyDay, startFakeMessageWhiz } from "../../test/fakes/messagewhiz.ts"
import { startFakeVoluum } from "../../test/fakes/voluum.ts"
import type { Benchmark, BenchServer } from "./support.ts"

const DAY = "2025-06-01"

const round = async (server: BenchServer, voluumPerSecond: number) => {
  const voluum = await startFakeVoluum()
  const mw = await startFakeMessageWhiz()
  const storage = await mkdtemp(join(tmpdir(), "optimizer-bench-mmd-"))
  const expected = seedBusyDay(mw.state, { day: DAY, campaigns: 200, perCampaign: 10, hoursPerCampaign: 2 })
  const parsed = parseSettings({
    LOG_LEVEL: "Error",
    DATABASE_URL: await server.freshDatabase(),
    STORAGE_DIR: storage,
    VOLUUM_ACCESS_ID: voluum.state.credentials.accessId,
    VOLUUM_ACCESS_KEY: voluum.state.credentials.accessKey,
    VOLUUM_API_URL: voluum.url,
    VOLUUM_REQUESTS_PER_SECOND: String(voluumPerSecond),
    MMD_API_KEY: mw.state.apiKey,
    MMD_API_URL: mw.url,
    MMD_REQUESTS_PER_SECOND: "1000"
  })
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  const runtime = makeRuntime(parsed.success)
  try {
    let started = performance.now()
    const snapshot = await runtime.runPromise(Mmd.use((m) => m.snapshot(DAY)))
    const snapshotMs = performance.now() - started
    const totalsCalls = voluum.state.requests.filter(
      (r) => r.path === "/report" && r.query.get("filter1") === "campaign"
    ).length
    if (snapshot.broadcast_count !== expected.sent || totalsCalls !== expected.windows) {
      throw new Error(
        `snapshot: ${snapshot.broadcast_count} rows / ${totalsCalls} Voluum calls, expected ${expected.sent} / ${expected.windows}`
      )
    }
    started = performance.now()
    const costs = await runtime.runPromise(Mmd.use((m) => m.pushCosts(DAY)))
    const costsMs = performance.now() - started
    if (costs.total_rows !== 200 || voluum.state.count("/report/cost") !== 200)
      throw new Error("cost push: not 200 calls")
    return { rows: snapshot.broadcast_count, totalsCalls, snapshotMs, costsMs }
  } finally {
    await runtime.dispose()
    await mw.close()
    await voluum.close()
    await rm(storage, { recursive: true, force: true })
  }
}

export const mmdBenchmark: Benchmark = {
  name: "mmd",
  description: "MessageWhiz day of 2,000 broadcasts / 200 campaigns: snapshot and cost push against the fakes",
  run: async (server) => {
    const fast = await round(server, 1000)
    const documented = await round(server, 15)
    const s = (ms: number) => Number((ms / 1000).toFixed(2))
    return {
      broadcasts_sent: fast.rows,
      voluum_totals_calls: fast.totalsCalls,
      snapshot_s_unthrottled: s(fast.snapshotMs),
      cost_push_s_unthrottled: s(fast.costsMs),
      snapshot_s_at_15_per_s: s(documented.snapshotMs),
      cost_push_s_at_15_per_s: s(documented.costsMs)
    }
  }
}
