/**
 * The cleaning engine against a real PostgreSQL database: what an operator checks in the stats and
 * the files — the original's flags and their order, duplicates and invalid numbers counted on
 * their own, input order kept, national numbers, the optional outputs, and a repeated run (a retry
 * after a crash) that neither double-adds to main_database nor changes the result.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createReadStream } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import pg from "pg"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { runPipeline, type CleaningFlags, type PipelineResult } from "../../src/cleaning/CleaningPipeline.ts"
import { UnreadableFile, ValidationError } from "../../src/platform/Errors.ts"
import type { FileWriter } from "../../src/platform/FileStore.ts"

let db: TestDatabase
let pool: pg.Pool
let dir: string

// Numbers on the lists (GB drama range 07700 900xxx: valid, never allocated).
const BLACKLISTED = "447700900010"
const MONITORED = "447700900011"
const CONVERTED = "447700900012"
const SENT = "447700900013"
/** On the blacklist AND the monitor list: counts under whichever filter comes first. */
const BOTH = "447700900014"

beforeAll(async () => {
  db = await createTestDatabase()
  pool = new pg.Pool({ connectionString: db.url, max: 6 })
  pool.on("error", () => undefined) // idle connections closed when the database is dropped
  dir = mkdtempSync(path.join(tmpdir(), "optimizer-cleaning-"))
  await pool.query(
    `INSERT INTO blacklist (custom_variable_1, reason, source) VALUES ($1, 'OS_VERSION', 'VOLUUM'), ($2, 'OS_VERSION', 'VOLUUM');
     INSERT INTO monitor (custom_variable_1, reason, source) VALUES ($3, 'OS_VERSION', 'VOLUUM'), ($2, 'OS_VERSION', 'VOLUUM');`.replace(
      /\$(\d)/g,
      (_m, n: string) => `'${[BLACKLISTED, BOTH, MONITORED][Number(n) - 1]}'`
    )
  )
  await pool.query(
    `INSERT INTO api_voluum_conversions (click_id, transaction_id, conversion_type, custom_variable_1)
     VALUES ('c1', 't1', 'REG', $1), ('c2', 't2', 'FTD', $1)`,
    [CONVERTED]
  )
  await pool.query(
    `INSERT INTO main_database (custom_variable_1, timestamp_created) VALUES ($1, now() - interval '1 day')`,
    [SENT]
  )
})

// Runs with include_main_database add their kept numbers: each test starts from the seeded main_database.
afterEach(async () => {
  await pool.query("DELETE FROM main_database WHERE custom_variable_1 <> $1", [SENT])
})

afterAll(async () => {
  await pool?.end()
  await db?.drop()
  rmSync(dir, { recursive: true, force: true })
})

const memoryWriter = () => {
  const state = { text: "", closed: false }
  const writer: FileWriter = {
    write: async (chunk) => {
      state.text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8")
    },
    close: async () => {
      state.closed = true
      return { key: "memory", bytes: state.text.length }
    },
    abort: async () => undefined
  }
  return { writer, state }
}

const NO_FLAGS: CleaningFlags = {
  includeBlacklist: false,
  includeMonitor: false,
  includeConversion: false,
  includeMainDatabase: false
}
const ALL_FLAGS: CleaningFlags = {
  includeBlacklist: true,
  includeMonitor: true,
  includeConversion: true,
  includeMainDatabase: true
}

interface Cleaned {
  readonly stats: PipelineResult
  readonly lines: Array<string>
  readonly rejects: string
  readonly annotated: string
}

let fileCounter = 0
const clean = async (
  content: string | Uint8Array,
  options: {
    flags?: Partial<CleaningFlags>
    country?: string
    phoneColumn?: string
    marker?: Date
    partitions?: number
    outputs?: boolean
  } = {}
): Promise<Cleaned> => {
  const file = path.join(dir, `list-${fileCounter++}.csv`)
  writeFileSync(file, content)
  const out = memoryWriter()
  const rejects = memoryWriter()
  const annotated = memoryWriter()
  const stats = await runPipeline({
    open: async () => createReadStream(file, { highWaterMark: 1024 }),
    flags: { ...NO_FLAGS, ...options.flags },
    country: options.country,
    phoneColumn: options.phoneColumn,
    marker: options.marker ?? new Date(),
    outputs: {
      clean: out.writer,
      ...(options.outputs ? { rejects: rejects.writer, annotated: annotated.writer } : {})
    },
    pool,
    ...(options.partitions === undefined ? {} : { partitions: options.partitions })
  })
  return {
    stats,
    lines: out.state.text === "" ? [] : out.state.text.replace(/\n$/, "").split("\n"),
    rejects: rejects.state.text,
    annotated: annotated.state.text
  }
}

const removedTotal = (s: PipelineResult) =>
  s.removed_blacklist +
  s.removed_monitor +
  s.removed_conversion +
  s.removed_maindatabase +
  s.removed_duplicates +
  s.removed_invalid

/** A list touching every filter, with duplicates in other formats and invalid rows. */
const MIXED = [
  "phone",
  "+44 7700 900001", // kept
  "07700 900002", // national: kept with GB, invalid without
  "0044 7700 900001", // duplicate of the first, another format
  BLACKLISTED,
  MONITORED,
  CONVERTED,
  SENT,
  BOTH,
  "not a number",
  "12345",
  "+33 6 12 34 56 78", // kept (FR)
  "447700900001", // duplicate again
  "+44 (0)7700 900003" // kept
].join("\n")

describe("flags and counts", () => {
  it("without flags: only duplicates and invalid numbers go, in their own counts", async () => {
    const { stats, lines } = await clean(MIXED, { country: "GB" })
    expect(stats).toMatchObject({
      total_records: 13,
      removed_blacklist: 0,
      removed_monitor: 0,
      removed_conversion: 0,
      removed_maindatabase: 0,
      removed_duplicates: 2,
      removed_invalid: 2,
      final_clean_count: 9
    })
    expect(lines).toEqual([
      "447700900001",
      "447700900002",
      BLACKLISTED,
      MONITORED,
      CONVERTED,
      SENT,
      BOTH,
      "33612345678",
      "447700900003"
    ])
  })

  it.each([
    ["includeBlacklist", { removed_blacklist: 2 }, [BLACKLISTED, BOTH]],
    ["includeMonitor", { removed_monitor: 2 }, [MONITORED, BOTH]],
    ["includeConversion", { removed_conversion: 1 }, [CONVERTED]],
    ["includeMainDatabase", { removed_maindatabase: 1 }, [SENT]]
  ] as const)("%s alone removes its list's numbers", async (flag, counts, removed) => {
    const { stats, lines } = await clean(MIXED, { country: "GB", flags: { [flag]: true } })
    expect(stats).toMatchObject({ ...counts, removed_duplicates: 2, removed_invalid: 2 })
    expect(stats.total_records).toBe(stats.final_clean_count + removedTotal(stats))
    for (const phone of removed) expect(lines).not.toContain(phone)
    expect(lines).toContain("447700900001")
  })

  it("all flags: each number counts under the first list that has it (blacklist → monitor → conversion → main database)", async () => {
    const { stats, lines } = await clean(MIXED, { country: "GB", flags: ALL_FLAGS })
    expect(stats).toMatchObject({
      total_records: 13,
      removed_blacklist: 2, // BLACKLISTED and BOTH
      removed_monitor: 1, // MONITORED only: BOTH went with the blacklist
      removed_conversion: 1,
      removed_maindatabase: 1,
      removed_duplicates: 2,
      removed_invalid: 2,
      final_clean_count: 4
    })
    expect(stats.total_records).toBe(stats.final_clean_count + removedTotal(stats))
    expect(lines).toEqual(["447700900001", "447700900002", "33612345678", "447700900003"])
    // include_main_database adds the kept numbers.
    const added = await pool.query<{ custom_variable_1: string }>(
      "SELECT custom_variable_1 FROM main_database WHERE custom_variable_1 = ANY($1)",
      [lines]
    )
    expect(added.rows.map((r) => r.custom_variable_1).sort()).toEqual([...lines].sort())
    expect(stats.added_to_main_database).toBe(4)
  })

  it("national numbers need a country: without one they are invalid", async () => {
    const { stats, lines } = await clean(MIXED)
    expect(stats.removed_invalid).toBe(3)
    expect(lines).not.toContain("447700900002")
  })

  it("a country column gives each row's country; the parameter fills the gaps", async () => {
    const text = "phone,country\n06 12 34 56 78,FR\n07700 900005,gb\n030 1234567,Germany\n07700 900006,\n"
    const withDefault = await clean(text, { country: "GB" })
    expect(withDefault.lines).toEqual(["33612345678", "447700900005", "49301234567", "447700900006"])
    const withoutDefault = await clean(text)
    expect(withoutDefault.lines).toEqual(["33612345678", "447700900005", "49301234567"])
    expect(withoutDefault.stats.removed_invalid).toBe(1)
  })

  it("a 0-row result: every number filtered, an empty output, counts that add up", async () => {
    const { stats, lines } = await clean([BLACKLISTED, MONITORED, BLACKLISTED].join("\n"), {
      flags: { includeBlacklist: true, includeMonitor: true }
    })
    expect(lines).toEqual([])
    expect(stats).toMatchObject({ total_records: 3, final_clean_count: 0, removed_duplicates: 1 })
    expect(stats.total_records).toBe(stats.final_clean_count + removedTotal(stats))
  })

  it("a header-only file has no records", async () => {
    const { stats, lines } = await clean("phone\n")
    expect(lines).toEqual([])
    expect(stats.total_records).toBe(0)
  })
})

describe("file formats", () => {
  it("reads a BOM, CRLF line ends, ';' and quoted fields, and finds the phone column by name", async () => {
    const text = '\ufeffName;Mobile;Note\r\n"Smith; John";+44 7700 900001;"said ""call me"""\r\nDoe;07700 900002;x\r\n'
    const { stats, lines } = await clean(text, { country: "GB" })
    expect(stats.dialect).toEqual({ delimiter: ";", has_header: true, phone_column: "Mobile", country_column: null })
    expect(lines).toEqual(["447700900001", "447700900002"])
  })

  it("reads tab-separated files without a header, finding the phone column by content", async () => {
    const { stats, lines } = await clean("Ann\t+44 7700 900001\tx\nBob\t+44 7700 900002\ty\n")
    expect(stats.dialect).toMatchObject({ delimiter: "\t", has_header: false, phone_column: "column_2" })
    expect(lines).toEqual(["447700900001", "447700900002"])
  })

  it("uses the phone column it is given", async () => {
    const text = "home,work\n+44 7700 900001,+44 7700 900002\n"
    expect((await clean(text, { phoneColumn: "work" })).lines).toEqual(["447700900002"])
    await expect(clean(text, { phoneColumn: "fax" })).rejects.toBeInstanceOf(ValidationError)
  })

  it("refuses binary and UTF-16 files", async () => {
    await expect(clean(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08]))).rejects.toBeInstanceOf(
      UnreadableFile
    )
    await expect(clean(Buffer.from("\ufeffphone\n447700900001\n", "utf16le"))).rejects.toBeInstanceOf(UnreadableFile)
  })
})

describe("outputs", () => {
  it("the annotated file holds every row with its verdict; the rejects file every removed row with its reason", async () => {
    const { annotated, rejects } = await clean(MIXED, {
      country: "GB",
      flags: { includeBlacklist: true },
      outputs: true
    })
    const annotatedLines = annotated.trim().split("\n")
    expect(annotatedLines[0]).toBe("phone,phone_e164,status,reason")
    expect(annotatedLines.slice(1, 5)).toEqual([
      "+44 7700 900001,447700900001,kept,",
      "07700 900002,447700900002,kept,",
      "0044 7700 900001,447700900001,removed,DUPLICATE",
      `${BLACKLISTED},${BLACKLISTED},removed,BLACKLIST`
    ])
    expect(annotatedLines).toHaveLength(14)
    expect(rejects.trim().split("\n")).toEqual([
      "row,phone,phone_e164,reason",
      "3,0044 7700 900001,447700900001,DUPLICATE",
      `4,${BLACKLISTED},${BLACKLISTED},BLACKLIST`,
      `8,${BOTH},${BOTH},BLACKLIST`,
      "9,not a number,,INVALID_PHONE_NUMBER",
      "10,12345,,INVALID_PHONE_NUMBER",
      "12,447700900001,447700900001,DUPLICATE"
    ])
  })

  it("a large file keeps its order across partitions and chunks, whatever the partition count", async () => {
    // 30,000 rows, every 7th a repeat of an earlier one in another format, every 50th invalid.
    const rows: Array<string> = ["msisdn"]
    const expected: Array<string> = []
    const seen = new Set<string>()
    for (let i = 0; i < 30_000; i++) {
      if (i % 50 === 49) {
        rows.push("n/a")
        continue
      }
      const n = i % 7 === 6 ? i - 3 : i
      const key = `447400${String(n).padStart(6, "0")}`
      const national = `0${key.slice(2, 6)} ${key.slice(6)}`
      rows.push(i % 2 === 0 ? `+${key}` : national)
      if (!seen.has(key)) {
        seen.add(key)
        expected.push(key)
      }
    }
    const text = rows.join("\r\n")
    const results = await Promise.all([1, 2, 3].map((partitions) => clean(text, { country: "GB", partitions })))
    for (const r of results) {
      expect(r.lines).toEqual(expected)
      expect(r.stats.total_records).toBe(30_000)
      expect(r.stats.total_records).toBe(r.stats.final_clean_count + removedTotal(r.stats))
    }
  })
  it("a file of few numbers repeated many times: each kept once, the rest counted as duplicates", async () => {
    // 200,000 rows of 50 numbers (4,000 times each): work linear in the rows, not in the square of a
    // number's repeats (a join of each repeat with every earlier row of its number took minutes here).
    const rows: Array<string> = ["phone"]
    for (let i = 0; i < 200_000; i++) rows.push(`+4477009000${String(100 + (i % 50)).slice(1)}`)
    const { lines, stats } = await clean(rows.join("\n"))
    expect(lines).toHaveLength(50)
    expect(lines[0]).toBe("447700900000")
    expect(stats.total_records).toBe(200_000)
    expect(stats.final_clean_count).toBe(50)
    expect(stats.removed_duplicates).toBe(199_950)
    expect(stats.total_records).toBe(stats.final_clean_count + removedTotal(stats))
  })
})

describe("a repeated run (retry after a crash)", () => {
  it("gives the same result and adds nothing twice to main_database", async () => {
    const marker = new Date(Date.now() - 60_000)
    const text = ["+44 7700 900101", "+44 7700 900102", SENT, "+44 7700 900101"].join("\n")
    const first = await clean(text, { flags: ALL_FLAGS, marker })
    const again = await clean(text, { flags: ALL_FLAGS, marker })
    const { added_to_main_database: addedFirst, ...firstStats } = first.stats
    const { added_to_main_database: addedAgain, ...againStats } = again.stats
    expect(againStats).toEqual(firstStats)
    expect(again.lines).toEqual(first.lines)
    expect(first.lines).toEqual(["447700900101", "447700900102"])
    expect([addedFirst, addedAgain]).toEqual([2, 0])
    // Another run (another marker) sees them as already sent to.
    const later = await clean(text, { flags: ALL_FLAGS })
    expect(later.stats).toMatchObject({ removed_maindatabase: 3, final_clean_count: 0 })
  })
})

describe("an interrupted run", () => {
  it("stops part-way, rolls back and adds nothing to main_database", async () => {
    const file = path.join(dir, "interrupted.csv")
    const rows: Array<string> = []
    for (let i = 0; i < 200_000; i++) rows.push(`447400${String(i).padStart(6, "0")}`)
    writeFileSync(file, rows.join("\n"))
    const controller = new AbortController()
    const before = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM main_database")
    await expect(
      runPipeline({
        open: async () => createReadStream(file, { highWaterMark: 16 * 1024 }),
        flags: ALL_FLAGS,
        marker: new Date(),
        outputs: { clean: memoryWriter().writer },
        pool,
        signal: controller.signal,
        onProgress: () => controller.abort()
      })
    ).rejects.toThrow(/interrupted/)
    const after = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM main_database")
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n)
    // The pool is still usable.
    expect((await pool.query("SELECT 1 AS one")).rows[0]).toEqual({ one: 1 })
  })
})
