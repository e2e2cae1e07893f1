/**
 * Manual list imports as an operator runs them (`docs/original-api.md` "Lists"), against a real database and a
 * local file store: per-row results in the result CSV, normalised numbers, the BOM fixed, repeats
 * in the file counted, whitelist numbers moved, the history, and bad files refused by name.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Layer, ManagedRuntime } from "effect"
import pg from "pg"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { Lists } from "../../src/lists/Lists.ts"
import { ManualImports } from "../../src/lists/ManualImports.ts"
import { AppConfig } from "../../src/platform/Config.ts"
import { DatabaseLayer } from "../../src/platform/Database.ts"
import { FileStore } from "../../src/platform/FileStore.ts"

let db: TestDatabase
let dir: string
let client: pg.Client
let runtime: ManagedRuntime.ManagedRuntime<ManualImports | Lists | FileStore, unknown>

beforeAll(async () => {
  db = await createTestDatabase()
  dir = await mkdtemp(join(tmpdir(), "manual-imports-"))
  const platform = Layer.mergeAll(DatabaseLayer, FileStore.layerLocal(dir)).pipe(
    Layer.provideMerge(AppConfig.layerFrom({ DATABASE_URL: db.url, UPLOAD_MAX_BYTES: "6000000" }))
  )
  runtime = ManagedRuntime.make(
    Layer.mergeAll(ManualImports.layer, Lists.layer).pipe(Layer.provideMerge(platform))
  ) as ManagedRuntime.ManagedRuntime<ManualImports | Lists | FileStore, unknown>
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
})

afterAll(async () => {
  await runtime?.dispose()
  await client?.end()
  await db?.drop()
  await rm(dir, { recursive: true, force: true })
})

beforeEach(async () => {
  await client.query("TRUNCATE blacklist, whitelist, monitor, list_audit, manual_update_imports")
})

const run = <A, E>(effect: Effect.Effect<A, E, ManualImports | Lists | FileStore>) => runtime.runPromise(effect)
const importFile = (target: string, body: string | Uint8Array, filename = "numbers.csv") =>
  run(ManualImports.use((m) => m.importFile({ target, filename, body, actor: "api_key:ops" })))
const importFailure = async (target: string, body: string | Uint8Array) => {
  const exit = await runtime.runPromiseExit(
    ManualImports.use((m) => m.importFile({ target, filename: "bad.csv", body, actor: "api_key:ops" }))
  )
  if (Exit.isSuccess(exit)) throw new Error("expected the import to fail")
  const error = JSON.parse(JSON.stringify(exit.cause)) as unknown
  return JSON.stringify(error)
}
const resultCsv = async (id: string) => {
  const file = await run(ManualImports.use((m) => m.resultFile(id)))
  return { filename: file.filename, text: await new Response(file.body).text() }
}

describe("/db-manual-update/import", () => {
  it("writes valid rows to the target and reports every other row with its reason", async () => {
    await run(
      Lists.use((l) =>
        Effect.gen(function* () {
          yield* l.applyEntries("monitor", [{ phone: "447700900200" }], { actor: "test", mode: "classification" })
          yield* l.applyEntries("whitelist", [{ phone: "447700900300" }], { actor: "test", mode: "classification" })
        })
      )
    )
    const csv = [
      "\uFEFFPhone, Reason ,Source,OS Version,User_Agent,IP",
      "+44 7700 900100,FRAUD,ops,Android 7,UA/1,10.0.0.1",
      "447700900101,FRAUD,ops,,,",
      ",FRAUD,ops,,,",
      "447700900102,,ops,,,",
      "not-a-number,FRAUD,ops,,,",
      "+447700900200,FRAUD,ops,,,",
      "0044 7700 900100,FRAUD,ops,,,",
      "447700900300,FRAUD,ops,,,"
    ].join("\n")
    const result = await importFile("blacklist", csv)
    expect(result).toMatchObject({
      target: "blacklist",
      original_filename: "numbers.csv",
      uploaded: 8,
      accepted: 3,
      rejected: 5
    })
    expect(Object.keys(result).sort()).toEqual([
      "accepted",
      "id",
      "original_filename",
      "rejected",
      "target",
      "uploaded"
    ])

    const blacklist = await client.query(
      "SELECT custom_variable_1, reason, source, os_version, browser_version, ip, sticky FROM blacklist ORDER BY 1"
    )
    expect(blacklist.rows).toEqual([
      {
        custom_variable_1: "447700900100",
        reason: "FRAUD",
        source: "ops",
        os_version: "Android 7",
        browser_version: "UA/1",
        ip: "10.0.0.1",
        sticky: true
      },
      {
        custom_variable_1: "447700900101",
        reason: "FRAUD",
        source: "ops",
        os_version: null,
        browser_version: null,
        ip: null,
        sticky: true
      },
      {
        custom_variable_1: "447700900300",
        reason: "FRAUD",
        source: "ops",
        os_version: null,
        browser_version: null,
        ip: null,
        sticky: true
      }
    ])
    // moved off the whitelist (the original left it on both)
    expect((await client.query("SELECT count(*)::int AS n FROM whitelist")).rows[0]).toEqual({ n: 0 })

    const { filename, text } = await resultCsv(result.id)
    expect(filename).toBe("result_numbers.csv")
    expect(text.trim().split("\n")).toEqual([
      "phone,result",
      "+44 7700 900100,added_to_blacklist",
      "447700900101,added_to_blacklist",
      "447700900300,added_to_blacklist",
      ",rejected_missing_required",
      "447700900102,rejected_missing_required",
      "not-a-number,rejected_invalid_phone",
      "+447700900200,rejected_duplicate",
      "0044 7700 900100,rejected_duplicate_in_file"
    ])
  })

  it("keeps a history, newest first, with the original's keys", async () => {
    const first = await importFile("monitor", "phone,reason,source\n447700900400,R,S\n", "first.csv")
    const second = await importFile("blacklist", "phone,reason,source\n447700900401,R,S\nbad,R,S\n", "second.csv")
    const history = await run(ManualImports.use((m) => m.history))
    expect(history.map((h) => h.id)).toEqual([second.id, first.id])
    expect(history[0]).toMatchObject({
      original_filename: "second.csv",
      target: "blacklist",
      uploaded_count: 2,
      accepted_count: 1,
      rejected_count: 1
    })
    expect(Object.keys(history[0]!).sort()).toEqual(
      ["accepted_count", "created_at", "id", "original_filename", "rejected_count", "target", "uploaded_count"].sort()
    )
    const monitor = await client.query("SELECT sticky FROM monitor")
    expect(monitor.rows).toEqual([{ sticky: false }])
  })

  it("refuses a wrong target, a missing column, an empty or binary file, and stores nothing then", async () => {
    const filesBefore = await run(FileStore.use((f) => f.list("manual_update/")))
    expect(await importFailure("whitelist", "phone,reason,source\n")).toContain("target must be blacklist or monitor")
    const missing = await importFailure("blacklist", "phone,source\n447700900500,S\n")
    expect(missing).toContain("ValidationError")
    expect(missing).toContain('\\"reason\\"')
    expect(await importFailure("blacklist", "")).toContain("UnreadableFile")
    expect(await importFailure("blacklist", new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08]))).toContain(
      "UnreadableFile"
    )
    expect(await importFailure("blacklist", "x".repeat(6_000_001))).toContain("PayloadTooLarge")
    expect((await client.query("SELECT count(*)::int AS n FROM manual_update_imports")).rows[0]).toEqual({ n: 0 })
    expect(await run(FileStore.use((f) => f.list("manual_update/")))).toEqual(filesBefore)
  })

  it("writes nothing from a file that stops parsing after its first chunks", async () => {
    // 12,000 good rows (more than one 10,000-row chunk), then an unclosed quote.
    const good = Array.from({ length: 12_000 }, (_, i) => `4477009${String(i).padStart(5, "0")},R,S`)
    const failure = await importFailure("monitor", ["phone,reason,source", ...good, '"447700999999,R,S'].join("\n"))
    expect(failure).toContain("UnreadableFile")
    const counts = await client.query(
      "SELECT (SELECT count(*) FROM monitor)::int AS monitor, (SELECT count(*) FROM list_audit)::int AS audit"
    )
    expect(counts.rows[0]).toEqual({ monitor: 0, audit: 0 })
    expect((await client.query("SELECT count(*)::int AS n FROM manual_update_imports")).rows[0]).toEqual({ n: 0 })
  })

  it("answers 'Import not found' for an unknown id", async () => {
    for (const id of ["0b7c1a52-5f7e-4c1e-9a53-000000000000", "not-a-uuid"]) {
      const exit = await runtime.runPromiseExit(ManualImports.use((m) => m.resultFile(id)))
      expect(JSON.stringify(exit)).toContain("Import not found")
    }
  })
})

describe("/import-blacklist-csv", () => {
  it("upserts rows named by column into the blacklist (the original wrote to monitor)", async () => {
    const csv = [
      "custom_variable_1,reason,source,clicks,cost_sources,timestamp_created",
      '+44 7700 900600,OS_VERSION,VOLUUM,3,"a,b",2026-01-02T03:04:05Z',
      "447700900601,,,,,",
      "447700900601,LATER,,,,",
      "bad,R,S,,,",
      "447700900602,R,S,many,,"
    ].join("\n")
    const result = await run(
      ManualImports.use((m) => m.importBlacklistCsv({ filename: "black.csv", body: csv, actor: "api_key:ops" }))
    )
    // Every valid row counts, a repeated number each time, as the original counted upserted rows.
    expect(result).toEqual({ ok: true, original_filename: "black.csv", rows_imported: 3, rows_rejected: 2 })
    const rows = await client.query(
      "SELECT custom_variable_1, reason, source, clicks, cost_sources, timestamp_created FROM blacklist ORDER BY 1"
    )
    expect(rows.rows).toEqual([
      {
        custom_variable_1: "447700900600",
        reason: "OS_VERSION",
        source: "VOLUUM",
        clicks: 3,
        cost_sources: "a,b",
        timestamp_created: new Date("2026-01-02T03:04:05Z")
      },
      {
        custom_variable_1: "447700900601",
        reason: "LATER",
        source: null,
        clicks: null,
        cost_sources: null,
        timestamp_created: expect.any(Date)
      }
    ])
    expect((await client.query("SELECT count(*)::int AS n FROM monitor")).rows[0]).toEqual({ n: 0 })
  })

  it("names an unknown column, and refuses a file that is not .csv", async () => {
    const unknown = await runtime.runPromiseExit(
      ManualImports.use((m) =>
        m.importBlacklistCsv({ filename: "b.csv", body: "custom_variable_1,colour\n447700900700,red\n", actor: "x" })
      )
    )
    expect(JSON.stringify(unknown)).toContain('\\"colour\\"')
    const notCsv = await runtime.runPromiseExit(
      ManualImports.use((m) => m.importBlacklistCsv({ filename: "b.xlsx", body: "x", actor: "x" }))
    )
    expect(JSON.stringify(notCsv)).toContain("only .csv files")
    // 300,000 good rows (several batches in each of the two write lanes), then an unclosed quote.
    const good = Array.from({ length: 300_000 }, (_, i) => `447700${String(i).padStart(6, "0")}`)
    const broken = await runtime.runPromiseExit(
      ManualImports.use((m) =>
        m.importBlacklistCsv({
          filename: "b.csv",
          body: ["custom_variable_1", ...good, '"447700999999'].join("\n"),
          actor: "x"
        })
      )
    )
    expect(JSON.stringify(broken)).toContain("UnreadableFile")
    expect((await client.query("SELECT count(*)::int AS n FROM list_audit")).rows[0]).toEqual({ n: 0 })
    expect((await client.query("SELECT count(*)::int AS n FROM blacklist")).rows[0]).toEqual({ n: 0 })
  })
})
