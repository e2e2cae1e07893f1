/**
 * The SQL of the phone lists. Bulk writes never run a query per number. Rows stream into a
 * `COPY … FROM STDIN` on a TEMP staging table (`pg` + `pg-copy-streams` through `PgBulk`); every
 * `LIST_BATCH_ROWS` rows ONE statement, in the same transaction, applies the batch:
 *
 *   plan     — each staged number with where it is now: one primary-key probe per list (scalar
 *              subqueries, so the cost does not grow with the lists), and whether it may be
 *              touched (sticky entries are left alone unless an admin writes);
 *   gone_*   — DELETE from the two other lists (`= ANY(ARRAY(…))`: index probes), RETURNING the
 *              old rows so a move keeps what the new entry does not say (ip, OS, metrics);
 *   inserted — a plain INSERT … SELECT of the numbers not on the target (no ON CONFLICT: it
 *              doubles the cost of an insert, and the advisory lock makes it unnecessary);
 *   updated  — UPDATE … FROM plan for numbers already there, only where something changes;
 *   audit    — INSERT INTO list_audit … SELECT: add / move straight from the plan, update from
 *              the rows `updated` returned;
 *
 * then commits and returns the counts. A large write also skips most of that for numbers that are
 * certainly on no list (a filter of the lists read into memory, trusted per batch — see `makeSink`):
 * they are not probed, and in the blacklist and the monitor list they are copied straight into the
 * list and the audit (`directCopy`), in key order, beside the plan.
 *
 * A transaction-level advisory lock serialises list writers,
 * so two writers moving one number to two lists cannot both win (the single-list invariant).
 * While one batch is applied, the next is already being copied on a second connection.
 *
 * Table and column names in the SQL come from the constants below, never from input; values are
 * COPY-escaped or bound parameters.
 */
import { Context, Effect, Layer, Option, Stream, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
import { PhoneKeyFilter } from "../phone/PhoneKeyFilter.ts"
import { PgBulk, toDatabaseError } from "../platform/Database.ts"
import { DatabaseError } from "../platform/Errors.ts"
import {
  LIST_METRIC_COLUMNS,
  LIST_NAMES,
  type ApplyCounts,
  type ListAuditEntry,
  type ListCounts,
  type ListEntry,
  type ListName
} from "./ListSchemas.ts"
import { BlockPool, KeyOrderedLines } from "./KeyOrderedLines.ts"

/**
 * What happens to an entry already on the target list.
 * - `replace`: every column from the new entry, except `source` and `timestamp_created` (the
 *   original's Voluum upsert);
 * - `merge`: the new entry's values where it has them, the old ones elsewhere; `sticky` from the new entry;
 * - `keep`: left as it is, except that it becomes sticky when the new entry is.
 */
export type ConflictPolicy = "replace" | "merge" | "keep"

/**
 * Which sticky entries a write must not touch (they are counted as `keptSticky`):
 * `all` (a classification), `others` (sticky entries on the other lists; HLR), `none` (an admin).
 */
export type StickyGuard = "all" | "others" | "none"

export interface BatchOptions {
  readonly actor: string
  readonly conflict: ConflictPolicy
  readonly guard: StickyGuard
}

export interface CurrentEntry {
  readonly list: ListName
  readonly reason: string | null
  readonly source: string | null
  readonly sticky: boolean
  readonly since: Date
}

/**
 * List writers serialise on `pg_advisory_xact_lock(LIST_WRITE_LOCK, lane)`. A number always falls
 * in the same lane (`laneOf`), so every write of one number is serialised — the single-list
 * invariant holds — while the lanes write disjoint numbers in parallel on two server cores: the
 * database's work per number (three primary-key probes, the insert, the audit row) is what bounds
 * a bulk write, not the Node process. Each sink opens connections of its own (two per lane: one
 * applying a batch, one receiving the next), never from the shared `PgBulk` pool: writers holding
 * open COPYs while waiting for a pooled connection could deadlock. A removal takes every lane, in
 * order. ("LIST" in ASCII.)
 */
const LIST_WRITE_LOCK = 0x4c495354
export const LIST_WRITE_LANES = 2
const laneOf = (phone: string): number => phone.charCodeAt(phone.length - 1) % LIST_WRITE_LANES

/** Large writes hold `pg_advisory_lock_shared(LIST_READER_LOCK, lane)` while they keep a filter ("LISR"). */
const LIST_READER_LOCK = 0x4c495352

/**
 * Takes a lane's lock and bumps the lane's version (`sql/0003_list_lane_versions.sql`), in the
 * writer's transaction: the version says whether anybody else wrote in the lane since a sink read
 * the lists into its filter. Also says whether a reader other than the writer's own sink
 * (`ownReader`: the backend holding its reader lock) is registered: then the writer logs what it
 * wrote (`logWrites`). One round trip; `lane` and the pid are integers of ours, never input.
 */
const lockLane = (lane: number, ownReader = 0) =>
  `SELECT pg_advisory_xact_lock(${LIST_WRITE_LOCK}, ${lane});
   UPDATE list_lane_versions SET version = version + 1 WHERE lane = ${lane}
   RETURNING version, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = ${LIST_READER_LOCK}
     AND objid = ${lane} AND objsubid = 2 AND granted AND pid <> ${ownReader}
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS readers`

/**
 * Logs what a transaction wrote in a lane for the registered readers (`sql/0004_list_lane_writes.sql`):
 * `phones` is SQL giving the numbers (a sink batch: every staged number), and prunes the lane's log.
 */
const logWrites = (lane: number, version: number, phones: string) =>
  `INSERT INTO list_lane_writes (lane, version, phones) SELECT ${lane}, ${version}, ${phones};
   DELETE FROM list_lane_writes WHERE lane = ${lane} AND version < ${version - 1000}`

interface LaneLock {
  readonly version: number | undefined
  readonly readers: boolean
}

const laneLocked = (results: unknown): LaneLock => {
  const row = (results as Array<pg.QueryResult>)[1]?.rows[0] as { version: string; readers: boolean } | undefined
  return { version: row === undefined ? undefined : Number(row.version), readers: row?.readers ?? false }
}

const DATA_COLUMNS = ["ip", "os_version", "browser_version", ...LIST_METRIC_COLUMNS] as const

/** Columns a list has beyond the shared ones. */
const hasReason = (list: ListName) => list !== "whitelist"
const hasSticky = (list: ListName) => list !== "whitelist"
const hasCountry = (list: ListName) => list === "whitelist"

/** The numeric metric columns; they travel packed in one staging column (see `stageLine`). */
const NUMERIC_METRICS = LIST_METRIC_COLUMNS.filter((c) => c !== "cost_sources")

const STAGE_DDL = `CREATE TEMP TABLE lists_stage (
  -- the row's place in the batch; NULL for a row that was going to be copied straight to the list
  -- (see DIRECT_STAGE_COPY), which always comes before any repeat of its number
  seq integer,
  -- byte-wise like the lists' keys (sql/0002): the batch's sort never calls strcoll()
  phone text COLLATE "C" NOT NULL,
  reason text,
  source text,
  country_code text,
  timestamp_created timestamptz,
  sticky boolean NOT NULL,
  ip text,
  os_version text,
  browser_version text,
  cost_sources text,
  metrics float8[],
  -- certainly on no list (the sink's filter said so): the plan skips its three probes when trusted;
  -- true for the rows of DIRECT_STAGE_COPY, which are all such numbers
  fresh boolean NOT NULL DEFAULT true
) ON COMMIT DROP`

const STAGE_COPY = `COPY lists_stage (seq, phone, reason, source, country_code, timestamp_created, sticky, ip, os_version,
  browser_version, cost_sources, metrics, fresh) FROM STDIN`

/**
 * The staged rows, deduplicated when the batch repeats a number (the last row wins). The metrics
 * arrive as one float8[] that COPY parses once per row (an array built from text in the query
 * was inlined into each of the 23 references by the planner and parsed 23 times per row:
 * 170 µs per row instead of 3); `staged` reads them out of it.
 */
const stagedRows = (dedupe: boolean) => `(
  SELECT s.seq, s.phone, s.reason, s.source, s.country_code, s.timestamp_created, s.sticky, s.ip, s.os_version,
    s.browser_version, s.cost_sources, s.metrics, s.fresh
  FROM ${dedupe ? "(SELECT DISTINCT ON (phone) * FROM lists_stage ORDER BY phone, seq DESC NULLS LAST)" : "lists_stage"} s
)`

/**
 * A staged entry's value for a data column (`p` = the plan row): the numeric metrics stay packed in
 * `metrics` through the plan and are unpacked only where a row is written, so the materialised
 * plan carries one array instead of 22 columns per number.
 */
const staged = (column: (typeof DATA_COLUMNS)[number]): string => {
  const metric = (NUMERIC_METRICS as ReadonlyArray<string>).indexOf(column)
  return metric === -1 ? `p.${column}` : `p.metrics[${metric + 1}]`
}

// ---------------------------------------------------------------------------------------------
// COPY text format

/** COPY text escaping: backslash, tab, newline and carriage return are the only special characters. */
const escapeCopy = (value: string): string =>
  /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"))
    : value

const textField = (value: string | null | undefined): string =>
  value === null || value === undefined ? "\\N" : escapeCopy(value)

const createdAt = (e: Omit<ListEntry, "phone">): string | undefined =>
  e.timestampCreated instanceof Date && !Number.isNaN(e.timestampCreated.getTime())
    ? e.timestampCreated.toISOString()
    : undefined

const stageLine = (
  seq: number,
  phone: string,
  e: Omit<ListEntry, "phone">,
  sticky: boolean,
  country: string | null,
  fresh: boolean
): string => {
  const m = e.metrics
  let line =
    seq +
    "\t" +
    escapeCopy(phone) +
    "\t" +
    textField(e.reason) +
    "\t" +
    textField(e.source) +
    "\t" +
    textField(country) +
    "\t" +
    (createdAt(e) ?? "\\N") +
    "\t" +
    (sticky ? "t" : "f") +
    "\t" +
    textField(e.ip) +
    "\t" +
    textField(e.osVersion) +
    "\t" +
    textField(e.browserVersion)
  if (m === undefined) return line + (fresh ? "\t\\N\t\\N\tt\n" : "\t\\N\t\\N\tf\n")
  // The numeric metrics as one float8[] literal "{1,NULL,2.5,…}": one COPY field instead of 23.
  let packed = "{"
  for (let i = 0; i < NUMERIC_METRICS.length; i++) {
    const value = m[NUMERIC_METRICS[i]!]
    if (i > 0) packed += ","
    packed += typeof value === "number" && Number.isFinite(value) ? String(value) : "NULL"
  }
  return line + "\t" + textField(m.cost_sources) + "\t" + packed + (fresh ? "}\tt\n" : "}\tf\n")
}

/**
 * Straight to the list. A batch's new numbers that are certainly on no list (the sink's filter,
 * trusted) need no decision: in the blacklist and the monitor list, such a number with no metrics
 * and no creation time of its own is copied into the list and its audit row into `list_audit`, by
 * COPY — which writes a page of rows per WAL record where `INSERT … SELECT` writes one per row
 * (500k numbers with their audit rows: 1.5 s instead of 2.1 s, and no staging or plan for them).
 * The whitelist has no reason column and its rows carry a country: its writes are always staged.
 */
const DIRECT_COLUMNS = "custom_variable_1, ip, os_version, browser_version, reason, source, sticky"
const directCopy = (list: ListName) => `COPY ${list} (${DIRECT_COLUMNS}) FROM STDIN`
const DIRECT_AUDIT_COPY = "COPY list_audit (custom_variable_1, action, to_list, reason, source, actor) FROM STDIN"
/** The same lines into the staging table, when the batch cannot trust its filter after all. */
const DIRECT_STAGE_COPY = "COPY lists_stage (phone, ip, os_version, browser_version, reason, source, sticky) FROM STDIN"

/** A row of `directCopy`; its audit row is made from it (`KeyOrderedLines.writeAudit`). */
const directLine = (phone: string, e: Omit<ListEntry, "phone">, sticky: boolean): string =>
  phone +
  "\t" +
  textField(e.ip) +
  "\t" +
  textField(e.osVersion) +
  "\t" +
  textField(e.browserVersion) +
  "\t" +
  textField(e.reason) +
  "\t" +
  textField(e.source) +
  (sticky ? "\tt\n" : "\tf\n")

/** Streams chunks of COPY text into a `COPY … FROM STDIN`, honouring backpressure. */
const copyChunks = async (
  client: pg.Client,
  statement: string,
  chunks: Iterable<string | Uint8Array>
): Promise<void> => {
  const stream = client.query(copyFrom(statement))
  const done = new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve)
    stream.on("error", reject)
  })
  for (const chunk of chunks) {
    if (!stream.write(chunk)) await Promise.race([new Promise((resolve) => stream.once("drain", resolve)), done])
  }
  stream.end()
  await done
}

/** `count` lines as COPY text of ~256 KiB per chunk. */
function* linesInChunks(count: number, line: (index: number) => string): Generator<string> {
  let buffer = ""
  for (let i = 0; i < count; i++) {
    buffer += line(i)
    if (buffer.length >= 256 * 1024) {
      yield buffer
      buffer = ""
    }
  }
  if (buffer.length > 0) yield buffer
}

/** Runs `work` inside BEGIN … COMMIT on `client`, rolling back when it throws. */
const inTransaction = async <A>(client: pg.PoolClient, work: () => Promise<A>): Promise<A> => {
  await client.query("BEGIN")
  try {
    const result = await work()
    await client.query("COMMIT")
    return result
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined)
    throw error
  }
}

// ---------------------------------------------------------------------------------------------
// The apply statement

const otherLists = (list: ListName): readonly [ListName, ListName] => {
  const others = LIST_NAMES.filter((l) => l !== list)
  return [others[0]!, others[1]!]
}

/**
 * Where a staged number is now: a scalar subquery per list, so each is one primary-key probe per
 * number whatever the list's size (a hash join would read the whole list for every batch).
 * NULL = not on that list, else its sticky flag (the whitelist has none). `$2` (the batch may trust
 * its `fresh` marks, see `makeSink`): a fresh number is on no list, so it is not probed — unless it
 * is in `$3`, the numbers other writers listed since the batch's marks were made.
 */
const presence = (list: ListName) =>
  `CASE WHEN $2::boolean AND s.fresh AND NOT (s.phone = ANY($3::text[])) THEN NULL
     ELSE (SELECT ${hasSticky(list) ? "x.sticky" : "false"} FROM ${list} x WHERE x.custom_variable_1 = s.phone) END`

const applyStatement = (list: ListName, conflict: ConflictPolicy, guard: StickyGuard, dedupe: boolean): string => {
  const [otherA, otherB] = otherLists(list)
  const protectedIf =
    guard === "none"
      ? "false"
      : guard === "others"
        ? "coalesce(q.in_a, false) OR coalesce(q.in_b, false)"
        : "coalesce(q.in_t, false) OR coalesce(q.in_a, false) OR coalesce(q.in_b, false)"
  // The old row of a moved number, in one shape whatever list it comes from.
  const returning = (from: ListName) =>
    ["custom_variable_1", ...DATA_COLUMNS, hasReason(from) ? "reason" : "NULL::text AS reason", "source"].join(", ")
  // = ANY(ARRAY(…)): an index probe per moved number, never a scan of the other list.
  const gone = (from: ListName, flag: string) =>
    `DELETE FROM ${from} WHERE custom_variable_1 = ANY(ARRAY(SELECT phone FROM plan WHERE go AND ${flag} IS NOT NULL))
     RETURNING ${returning(from)}`

  const insertColumns = [
    "custom_variable_1",
    ...DATA_COLUMNS,
    ...(hasReason(list) ? ["reason"] : []),
    "source",
    ...(hasCountry(list) ? ["country_code"] : []),
    ...(hasSticky(list) ? ["sticky"] : []),
    "timestamp_created",
    "updated_at"
  ]
  const insertValues = [
    "p.phone",
    ...DATA_COLUMNS.map((c) => `coalesce(${staged(c)}, o.${c})`),
    ...(hasReason(list) ? ["coalesce(p.reason, o.reason)"] : []),
    "coalesce(p.source, o.source)",
    ...(hasCountry(list) ? ["p.country_code"] : []),
    ...(hasSticky(list) ? ["p.sticky"] : []),
    "coalesce(p.timestamp_created, now())",
    "now()"
  ]

  // What an update of a number already on the target may change, and to what (`p` = the new entry).
  const assignments: Array<readonly [column: string, value: string]> = []
  if (conflict === "replace") {
    for (const c of DATA_COLUMNS) assignments.push([c, staged(c)])
    if (hasReason(list)) assignments.push(["reason", "p.reason"])
    if (hasCountry(list)) assignments.push(["country_code", "p.country_code"])
  } else if (conflict === "merge") {
    for (const c of DATA_COLUMNS) assignments.push([c, `coalesce(${staged(c)}, t.${c})`])
    if (hasReason(list)) assignments.push(["reason", "coalesce(p.reason, t.reason)"])
    assignments.push(["source", "coalesce(p.source, t.source)"])
    if (hasCountry(list)) assignments.push(["country_code", "coalesce(p.country_code, t.country_code)"])
    if (hasSticky(list)) assignments.push(["sticky", "p.sticky"])
  } else if (hasSticky(list)) {
    assignments.push(["sticky", "t.sticky OR p.sticky"])
  }
  // Only rows that really change are written (and returned): the rest count as unchanged.
  const updated =
    assignments.length === 0
      ? ""
      : `updated AS (
  UPDATE ${list} t SET ${assignments.map(([c, v]) => `${c} = ${v}`).join(", ")}, updated_at = now()
  FROM plan p
  WHERE p.go AND p.in_t IS NOT NULL AND t.custom_variable_1 = p.phone
    AND (${assignments.map(([c]) => `t.${c}`).join(", ")}) IS DISTINCT FROM (${assignments.map(([, v]) => v).join(", ")})
  RETURNING t.custom_variable_1
),`
  const updatedAudit =
    assignments.length === 0
      ? ""
      : `UNION ALL
  SELECT p.phone, 'update', '${list}', '${list}', p.reason, p.source, $1
  FROM plan p WHERE p.go AND p.in_t IS NOT NULL AND p.phone IN (SELECT custom_variable_1 FROM updated)`

  // New numbers are a plain INSERT, not an upsert (ON CONFLICT doubles the cost of an insert):
  // list writers hold the advisory lock, so a number the plan did not find on the target cannot
  // appear there before this statement ends. Their audit rows come straight from the plan.
  return `
WITH plan AS MATERIALIZED (
  SELECT q.*,
    CASE WHEN q.in_t IS NOT NULL THEN '${list}'
         WHEN q.in_a IS NOT NULL THEN '${otherA}'
         WHEN q.in_b IS NOT NULL THEN '${otherB}' END AS from_list,
    NOT (${protectedIf}) AS go
  FROM (
    SELECT s.*, ${presence(list)} AS in_t, ${presence(otherA)} AS in_a, ${presence(otherB)} AS in_b
    FROM ${stagedRows(dedupe)} s
    -- Key order: the probes, the inserts and the audit rows then walk each B-tree from left to
    -- right once per batch instead of at random (1M-number import 86k -> 115k rows/s).
    ORDER BY s.phone
    OFFSET 0
  ) q
),
gone_a AS (${gone(otherA, "in_a")}),
gone_b AS (${gone(otherB, "in_b")}),
old AS (
  SELECT DISTINCT ON (custom_variable_1) * FROM (SELECT * FROM gone_a UNION ALL SELECT * FROM gone_b) u
  ORDER BY custom_variable_1
),
inserted AS (
  INSERT INTO ${list} (${insertColumns.join(", ")})
  SELECT ${insertValues.join(", ")}
  FROM plan p LEFT JOIN old o ON o.custom_variable_1 = p.phone
  WHERE p.go AND p.in_t IS NULL
),
${updated}
audit AS (
  INSERT INTO list_audit (custom_variable_1, action, from_list, to_list, reason, source, actor)
  SELECT p.phone, CASE WHEN p.from_list IS NULL THEN 'add' ELSE 'move' END, p.from_list, '${list}', p.reason, p.source, $1
  FROM plan p WHERE p.go AND p.in_t IS NULL
  ${updatedAudit}
)
-- The counts come from the plan (the audit rows say the same; PostgreSQL runs a data-modifying
-- WITH query to completion whether or not it is read, and RETURNING would buffer every row).
SELECT
  count(*) FILTER (WHERE go AND in_t IS NULL AND from_list IS NULL)::int AS added,
  count(*) FILTER (WHERE go AND in_t IS NULL AND from_list IS NOT NULL)::int AS moved,
  ${assignments.length === 0 ? "0" : "(SELECT count(*) FROM updated)"}::int AS updated,
  count(*) FILTER (WHERE NOT go)::int AS kept_sticky,
  count(*)::int AS total
FROM plan`
}

const statementCache = new Map<string, string>()
const applyStatementFor = (list: ListName, conflict: ConflictPolicy, guard: StickyGuard, dedupe: boolean): string => {
  const key = `${list}/${conflict}/${guard}/${dedupe}`
  let statement = statementCache.get(key)
  if (statement === undefined) {
    statement = applyStatement(list, conflict, guard, dedupe)
    statementCache.set(key, statement)
  }
  return statement
}

const REMOVE_STATEMENT = (lists: ReadonlyArray<ListName>) => `
WITH ${lists
  .map(
    (l) =>
      `gone_${l} AS (DELETE FROM ${l} WHERE custom_variable_1 = ANY($1::text[]) RETURNING custom_variable_1, '${l}'::text AS list)`
  )
  .join(",\n")},
audit AS (
  INSERT INTO list_audit (custom_variable_1, action, from_list, to_list, reason, source, actor)
  SELECT custom_variable_1, 'remove', list, NULL, $2, NULL, $3
  FROM (${lists.map((l) => `SELECT * FROM gone_${l}`).join(" UNION ALL ")}) g
  RETURNING custom_variable_1, from_list
)
SELECT custom_variable_1 AS phone, from_list AS list FROM audit`

// ---------------------------------------------------------------------------------------------
// The batch sink

/** Rows per COPY + transaction: big enough to amortise the statement, small enough to keep memory flat. */
export const LIST_BATCH_ROWS = 50_000

/** COPY text is handed to the socket in pieces of about this many characters. */
const WRITE_CHARS = 64 * 1024

/**
 * Receives a list write row by row and streams each row straight into a `COPY` on a staging
 * table, so no batch is ever held in memory. Every `LIST_BATCH_ROWS` rows the batch's COPY ends
 * and its apply statement runs and commits — while the next batch is already being copied on a
 * second connection, so normalising and staging overlap the database's work.
 */
export interface ListSink {
  /**
   * Adds a row (`phone` a canonical key). Returns a Promise only when the caller must wait (the
   * socket is full, or a batch boundary waits for the previous batch): hot loops stay synchronous.
   */
  readonly write: (
    phone: string,
    entry: Omit<ListEntry, "phone">,
    sticky: boolean,
    countryCode: string | null
  ) => Promise<void> | undefined
  /**
   * Writes the last batch and returns the counts of all of them, with `repeats`: rows whose number
   * came earlier in the same batch (written once, the last row winning).
   */
  readonly finish: () => Promise<ApplyCounts & { readonly repeats: number }>
}

/**
 * The phones of a batch, to notice a repeated one. Keys are the canonical digits as a number (15
 * digits fit a double exactly) in an open-addressing table over a Float64Array: a million-row
 * import keeps no object alive per row (a Set of strings kept the young generation growing).
 */
class PhoneSet {
  private readonly slots: Float64Array
  private readonly mask: number

  constructor(capacity: number) {
    let size = 1024
    while (size < capacity * 2) size *= 2
    this.slots = new Float64Array(size)
    this.mask = size - 1
  }

  /** Adds a canonical key; false when it was already there. */
  add(key: number): boolean {
    let h = Math.imul((key % 2147483629) | 0, 0x9e3779b1)
    h ^= h >>> 15
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const slot = this.slots[i]!
      if (slot === 0) {
        this.slots[i] = key
        return true
      }
      if (slot === key) return false
    }
  }

  /** Calls `f` with each key. */
  forEach(f: (key: number) => void): void {
    for (const slot of this.slots) if (slot !== 0) f(slot)
  }
}

interface OpenBatch {
  readonly client: pg.Client
  readonly copy: ReturnType<typeof copyFrom>
  readonly done: Promise<void>
  readonly seen: PhoneSet
  /** Rows for `directCopy` with their audit rows (not in the staging COPY). */
  readonly direct: KeyOrderedLines
  /** The lane version up to which other writers' numbers were in the filter when the batch began. */
  readonly from: number | undefined
  rows: number
  duplicates: boolean
  buffer: string
}

const applyResult = (row: {
  added: number
  moved: number
  updated: number
  kept_sticky: number
  total: number
}): ApplyCounts => ({
  added: row.added,
  moved: row.moved,
  updated: row.updated,
  unchanged: row.total - row.kept_sticky - row.added - row.moved - row.updated,
  keptSticky: row.kept_sticky
})

// ---------------------------------------------------------------------------------------------
// The filter of listed numbers

/**
 * When the filter pays. Reading a key into it costs ~0.33 µs of Node CPU (1M keys in ~330 ms, the
 * scan beside it on the database's core); a number it finds on no list saves its three probes and,
 * in `directCopy`, its staging and row-by-row insert — several times the read. So a sink reads the
 * lists once it has written an eighth of their size, and at least `FILTER_MIN_ROWS` rows (checked
 * every that many rows): a write that stops right after the read has paid at most a few times what
 * the probes would have cost, a long one gains, a small one never reads the lists. Measured
 * (`npm run bench -- lists`, docs/performance.md): 1M numbers into lists holding 2.1M others,
 * 132–138k rows/s never reading them, 143–152k reading them at once, 138–150k with this rule.
 */
const FILTER_PAYS_AFTER = 8
const FILTER_MIN_ROWS = 16_384
/** Other writers' versions a batch reads from their log at most (the log keeps 1,000 per lane). */
const MAX_LOGGED_VERSIONS = 1_000

/** How many keys the three lists hold (the planner's estimate; a never-analysed table by its size). */
const LIST_KEYS_ESTIMATE = `SELECT coalesce(sum(CASE WHEN c.reltuples >= 0 THEN c.reltuples
    ELSE pg_relation_size(c.oid) / 64 END), 0)::float8 AS keys
  FROM pg_class c WHERE c.oid IN (${LIST_NAMES.map((l) => `'${l}'::regclass`).join(", ")})`

const LIST_KEYS = `COPY (${LIST_NAMES.map((l) => `SELECT custom_variable_1 FROM ${l}`).join(" UNION ALL ")}) TO STDOUT`

/** Reads `COPY … TO STDOUT` of one column of canonical keys, each as a number (parsed from the bytes). */
const readKeys = async (client: pg.Client, statement: string, key: (key: number) => void): Promise<void> => {
  let value = 0
  for await (const chunk of client.query(copyTo(statement)) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!
      if (byte === 10) {
        key(value)
        value = 0
      } else {
        value = value * 10 + (byte - 48)
      }
    }
  }
}

/**
 * Writes a list through staging batches (see `ListSink`).
 *
 * The filter of listed numbers. For each number the apply statement probes the three lists' primary
 * keys; in a large import most numbers are on none, and those probes are a quarter of the
 * database's work. So once a sink has written enough rows (`FILTER_PAYS_AFTER`), it reads every
 * key of the three lists into a Bloom filter (`PhoneKeyFilter`), and from then on stages each
 * number with `fresh` = the filter has never seen it (every number the sink stages is added to
 * the filter too) — or, in the blacklist and the monitor list, keeps a fresh number aside for
 * `directCopy`. A fresh number is certainly on no list — unless another writer put it there
 * after the lists were read. Hence the lane versions and the log: every list-writing transaction
 * bumps the version of its lane under the lane's lock (`lockLane`), and while a large write is
 * registered as a reader (`LIST_READER_LOCK`) it also logs the numbers it wrote with that version
 * (`logWrites`). The sink registers, reads the versions while none of its own batches is being
 * applied, then reads the keys. Each of its batches, holding its lane's lock, looks at the versions
 * since its marks began (`othersSince`): its own are known, the others' numbers come from the log —
 * those rows are probed after all and the numbers join the filter — and a version that is neither
 * makes the lane untrusted for the rest of the write (every number probed, as before). Nobody waits
 * for the filter: other writers keep writing, and the sink's batches keep being applied while the
 * keys are read.
 */
const makeSink = (connectionOptions: pg.ClientConfig, list: ListName, options: BatchOptions) => {
  let counts: ApplyCounts = { added: 0, moved: 0, updated: 0, unchanged: 0, keptSticky: 0 }
  let repeats = 0
  let failure: unknown
  /** Whether new numbers may be copied straight to the list (`directCopy`). */
  const directAllowed = list !== "whitelist"
  /** What a `directLine`'s audit row has around its phone and its reason and source (`DIRECT_AUDIT_COPY`). */
  const auditBetween = Buffer.from(`\tadd\t${list}\t`)
  const auditAfter = Buffer.from(`\t${escapeCopy(options.actor)}\n`)
  const blocks = new BlockPool()
  const spareLines: Array<KeyOrderedLines> = []
  /** Connections of this sink: busy ones, and idle ones kept for the next batch. */
  const inUse = new Set<pg.Client>()
  const idle: Array<pg.Client> = []

  /** Rows written so far, and how many keys the lists hold (read once, when the sink is large). */
  let written = 0
  let listKeys: number | undefined
  /** The filter of listed numbers, once every key is in it; the read in progress. */
  let filter: PhoneKeyFilter | undefined
  let reading: Promise<void> | undefined
  /**
   * Per lane: the version up to which every other writer's numbers are in the filter (undefined:
   * the versions were never read, or one of them was not logged — the lane is not trusted again),
   * and the versions this sink's own batches bumped. Set when the versions are read, then by each
   * batch. `readerPid`: the backend holding this sink's reader locks (`LIST_READER_LOCK`).
   */
  let accounted: Array<number | undefined> | undefined
  const ownVersions: Array<Set<number>> = Array.from({ length: LIST_WRITE_LANES }, () => new Set<number>())
  let readerPid = 0
  /** The versions at which the keys were read: where a batch that began before then corrects from. */
  let keysReadAt: ReadonlyArray<number | undefined> | undefined
  /**
   * Per lane, whether its last batch trusted its marks. Only then are fresh numbers set aside for
   * `directCopy`: a batch that turns out not to trust them must stage them late, in its apply (the
   * first batches of a write, or a lane that met a version without a log row, set none aside).
   */
  const lastTrusted: Array<boolean> = Array.from({ length: LIST_WRITE_LANES }, () => false)
  /** Batches not committed yet, and while the keys are read the ones whose numbers the filter still needs. */
  const uncommitted = new Set<OpenBatch>()
  let unfiltered: Set<OpenBatch> | undefined

  /** Batches being applied, and a hold that keeps new ones from starting. */
  let applies = 0
  let hold: Promise<void> | undefined
  let onNoApplies: (() => void) | undefined

  const connect = async (): Promise<pg.Client> => {
    const reused = idle.pop()
    if (reused !== undefined) return reused
    const client = new pg.Client(connectionOptions)
    // A connection that dies while idle emits "error"; without a listener it kills the process.
    client.on("error", () => undefined)
    await client.connect()
    return client
  }

  const release = (client: pg.Client, broken: boolean) => {
    if (!inUse.delete(client)) return
    if (broken) void client.end().catch(() => undefined)
    else idle.push(client)
  }

  /** Runs `work` on a connection of the sink's own. */
  const withClient = async <A>(work: (client: pg.Client) => Promise<A>): Promise<A> => {
    const client = await connect()
    inUse.add(client)
    try {
      const result = await work(client)
      release(client, false)
      return result
    } catch (error) {
      release(client, true)
      throw error
    }
  }

  /** Runs `work` while none of the sink's batches is being applied. */
  const holdApplies = async <A>(work: () => Promise<A>): Promise<A> => {
    let lift!: () => void
    hold = new Promise<void>((resolve) => {
      lift = resolve
    })
    try {
      if (applies > 0) {
        await new Promise<void>((resolve) => {
          onNoApplies = resolve
        })
      }
      return await work()
    } finally {
      hold = undefined
      onNoApplies = undefined
      lift()
    }
  }

  /** Reads the lane versions, then every listed key, into a new filter (see `makeSink`). */
  const readFilter = async (client: pg.Client, expectedKeys: number) => {
    // Registered before the versions are read: every writer that commits a later version logs its
    // numbers (or one that looked just before leaves a version unlogged: the lane is then distrusted).
    const registered = await client.query<{ pid: number }>(
      `SELECT ${Array.from({ length: LIST_WRITE_LANES }, (_, lane) => `pg_advisory_lock_shared(${LIST_READER_LOCK}, ${lane}), `).join("")}pg_backend_pid() AS pid`
    )
    readerPid = registered.rows[0]!.pid
    await holdApplies(async () => {
      const result = await client.query<{ lane: number; version: string }>(
        "SELECT lane, version FROM list_lane_versions"
      )
      const versions: Array<number | undefined> = Array.from({ length: LIST_WRITE_LANES }, () => undefined)
      for (const row of result.rows) if (row.lane < LIST_WRITE_LANES) versions[row.lane] = Number(row.version)
      accounted = versions
      keysReadAt = [...versions]
      // Batches that commit from now on may commit after the keys are read: their numbers are added
      // from their own sets once the keys are in.
      unfiltered = new Set(uncommitted)
    })
    {
      // ~12 bits per key for the lists and a million more numbers: 0.3-1 % false alarms (a
      // false alarm only means that number is probed); 2 MiB for lists of up to ~400k numbers.
      const keys = new PhoneKeyFilter(Math.ceil(Math.log2((expectedKeys + 1_000_000) * 12)))
      await readKeys(client, LIST_KEYS, (key) => keys.markAndTestKey(key))
      for (const batch of unfiltered!) batch.seen.forEach((key) => keys.markAndTestKey(key))
      unfiltered = undefined
      filter = keys
    }
  }

  /** Every `FILTER_MIN_ROWS` rows: reads the filter once the sink has written enough rows for it to pay. */
  const considerFilter = () => {
    const pays = (keys: number) => written >= Math.max(FILTER_MIN_ROWS, keys / FILTER_PAYS_AFTER)
    if (filter !== undefined || reading !== undefined || !pays(listKeys ?? 0)) return
    reading = withClient(async (client) => {
      if (listKeys === undefined) {
        const estimate = await client.query<{ keys: number }>(LIST_KEYS_ESTIMATE)
        listKeys = estimate.rows[0]?.keys ?? 0
        if (!pays(listKeys)) return
      }
      await readFilter(client, listKeys)
    })
      .catch((error: unknown) => {
        failure ??= error
      })
      .finally(() => {
        if (filter === undefined) reading = undefined
      })
  }

  const startBatch = async (lane: number): Promise<OpenBatch> => {
    const client = await connect()
    inUse.add(client)
    // JIT compilation of the apply statement costs seconds and saves nothing on a batch.
    await client.query(`BEGIN; SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; ${STAGE_DDL}`)
    const copy = client.query(copyFrom(STAGE_COPY))
    const done = new Promise<void>((resolve, reject) => {
      copy.on("finish", resolve)
      copy.on("error", reject)
    })
    // A failed COPY is noticed at the next write or at the end of the batch.
    done.catch((error: unknown) => {
      failure ??= error
    })
    const batch: OpenBatch = {
      client,
      copy,
      done,
      seen: new PhoneSet(LIST_BATCH_ROWS),
      direct: spareLines.pop() ?? new KeyOrderedLines(blocks),
      from: accounted?.[lane],
      rows: 0,
      duplicates: false,
      buffer: ""
    }
    uncommitted.add(batch)
    unfiltered?.add(batch)
    return batch
  }

  /**
   * Whether `batch` may trust its marks, holding its lane's lock after bumping it to `version`:
   * undefined if not; else the numbers other writers listed in the lane since the batch's marks
   * began (read from their log rows; those rows are probed after all). Not if a version since is
   * neither the sink's own nor logged.
   */
  const othersSince = async (
    batch: OpenBatch,
    lane: number,
    version: number | undefined
  ): Promise<ReadonlyArray<string> | undefined> => {
    const from = batch.from ?? keysReadAt?.[lane]
    if (version === undefined || accounted?.[lane] === undefined || from === undefined) return undefined
    const others: Array<number> = []
    for (let v = from + 1; v < version && others.length <= MAX_LOGGED_VERSIONS; v++) {
      if (!ownVersions[lane]!.has(v)) others.push(v)
    }
    if (others.length === 0) return []
    if (others.length > MAX_LOGGED_VERSIONS) return undefined
    const logged = await batch.client.query<{ phones: Array<string> }>(
      "SELECT phones FROM list_lane_writes WHERE lane = $1 AND version = ANY($2::bigint[])",
      [lane, others]
    )
    if (logged.rows.length !== others.length) return undefined
    return logged.rows.flatMap((row) => row.phones)
  }

  const applyBatch = async (lane: number, batch: OpenBatch): Promise<void> => {
    while (hold !== undefined) await hold
    applies++
    try {
      const statement = applyStatementFor(list, options.conflict, options.guard, batch.duplicates)
      const { version, readers } = laneLocked(await batch.client.query(lockLane(lane, readerPid)))
      const correction = await othersSince(batch, lane, version)
      const trusted = correction !== undefined
      if (!trusted && accounted !== undefined) accounted[lane] = undefined
      // From now on the filter knows what the others wrote (until the keys are in, the lane's
      // batches keep correcting from the version the keys were read at).
      const corrected = trusted && filter !== undefined
      if (corrected) for (const phone of correction) filter!.markAndTest(phone)
      lastTrusted[lane] = trusted
      const direct = batch.direct
      // A repeated number may have its first row here and a later one staged; another writer may
      // have listed one of the batch's numbers; a registered reader needs every number of the batch
      // in the log: then all of them go through the staging table and the plan.
      const straight = trusted && !batch.duplicates && !readers && !direct.containsAny(correction) ? direct.count : 0
      if (straight > 0) {
        // In key order: each B-tree is walked left to right once.
        const order = direct.order()
        await direct.writeRows((chunks) => copyChunks(batch.client, directCopy(list), chunks), order)
        await direct.writeAudit(
          (chunks) => copyChunks(batch.client, DIRECT_AUDIT_COPY, chunks),
          order,
          auditBetween,
          auditAfter
        )
      } else if (direct.count > 0) {
        await direct.writeRows((chunks) => copyChunks(batch.client, DIRECT_STAGE_COPY, chunks))
      }
      direct.clear()
      spareLines.push(direct)
      let c: ApplyCounts = { added: straight, moved: 0, updated: 0, unchanged: 0, keptSticky: 0 }
      if (batch.rows > straight) {
        const result = await batch.client.query<{
          added: number
          moved: number
          updated: number
          kept_sticky: number
          total: number
        }>(statement, [options.actor, trusted, correction ?? []])
        const planned = applyResult(result.rows[0]!)
        c = { ...planned, added: planned.added + straight }
      }
      if (readers && version !== undefined) {
        await batch.client.query(
          logWrites(lane, version, "coalesce((SELECT array_agg(phone) FROM lists_stage), '{}'::text[])")
        )
      }
      await batch.client.query("COMMIT")
      uncommitted.delete(batch)
      // Only a committed version is the sink's own (a rolled-back one is taken by the next writer).
      if (accounted !== undefined && version !== undefined) {
        ownVersions[lane]!.add(version)
        if (corrected && accounted[lane] !== undefined) accounted[lane] = version
      }
      counts = {
        added: counts.added + c.added,
        moved: counts.moved + c.moved,
        updated: counts.updated + c.updated,
        unchanged: counts.unchanged + c.unchanged,
        keptSticky: counts.keptSticky + c.keptSticky
      }
      release(batch.client, false)
    } catch (error) {
      release(batch.client, true)
      throw error
    } finally {
      applies--
      if (applies === 0) onNoApplies?.()
    }
  }

  const waitForDrain = (batch: OpenBatch) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        batch.copy.off("drain", wake)
        batch.copy.off("error", wake)
        resolve()
      }
      batch.copy.on("drain", wake)
      batch.copy.on("error", wake)
    })

  /** One lane: its own batches, applied one at a time in order, under its own advisory lock. */
  const makeLane = (lane: number) => {
    let open: OpenBatch | undefined
    let opening: Promise<OpenBatch> | undefined
    /** The previous batch's apply + commit. */
    let applying: Promise<void> = Promise.resolve()

    const endBatch = async (batch: OpenBatch): Promise<void> => {
      open = undefined
      batch.copy.end(batch.buffer)
      batch.buffer = ""
      await batch.done
      // The previous batch of this lane commits first: applies stay in order, one at a time.
      await applying
      applying = applyBatch(lane, batch)
      applying.catch((error: unknown) => {
        failure ??= error
      })
    }

    /** Counts a row of `batch` (`line`: its staging line, or none when it goes `direct`). */
    const addTo = (batch: OpenBatch, key: number, line: string | undefined): Promise<void> | undefined => {
      if (!batch.seen.add(key)) {
        batch.duplicates = true
        repeats++
      }
      if (++written % FILTER_MIN_ROWS === 0) considerFilter()
      if (line !== undefined) batch.buffer += line
      batch.rows++
      if (batch.rows >= LIST_BATCH_ROWS) return endBatch(batch)
      // A caller that never has to wait would keep the filter's queries from running until the
      // next batch boundary: let the event loop turn now and then while the lists are read.
      if (reading !== undefined && filter === undefined && written % 1024 === 0) {
        return new Promise<void>((resolve) => setImmediate(resolve))
      }
      if (batch.buffer.length >= WRITE_CHARS) {
        const more = batch.copy.write(batch.buffer)
        batch.buffer = ""
        if (!more) return waitForDrain(batch)
      }
      return undefined
    }

    const stage = (
      batch: OpenBatch,
      phone: string,
      entry: Omit<ListEntry, "phone">,
      sticky: boolean,
      countryCode: string | null
    ) => {
      const key = Number(phone)
      // Once another writer has written in this lane the marks are never trusted again there:
      // its numbers are staged as before (a straight copy would only be staged late, in the apply).
      const fresh = filter !== undefined && accounted?.[lane] !== undefined && !filter.markAndTestKey(key)
      if (
        fresh &&
        directAllowed &&
        lastTrusted[lane] &&
        entry.metrics === undefined &&
        createdAt(entry) === undefined
      ) {
        batch.direct.add(key, phone.length, directLine(phone, entry, sticky))
        return addTo(batch, key, undefined)
      }
      return addTo(batch, key, stageLine(batch.rows, phone, entry, sticky, countryCode, fresh))
    }

    const write: ListSink["write"] = (phone, entry, sticky, countryCode) => {
      if (open !== undefined) return stage(open, phone, entry, sticky, countryCode)
      opening ??= startBatch(lane)
      return opening.then((batch) => {
        opening = undefined
        open = batch
        return stage(batch, phone, entry, sticky, countryCode)
      })
    }

    const finish = async (): Promise<void> => {
      if (open !== undefined) await endBatch(open)
      await applying
    }

    return { write, finish }
  }

  const lanes = Array.from({ length: LIST_WRITE_LANES }, (_, lane) => makeLane(lane))

  const write: ListSink["write"] = (phone, entry, sticky, countryCode) => {
    if (failure !== undefined) return Promise.reject(failure)
    return lanes[laneOf(phone)]!.write(phone, entry, sticky, countryCode)
  }

  const finish = async (): Promise<ApplyCounts & { readonly repeats: number }> => {
    if (failure !== undefined) throw failure
    await Promise.all(lanes.map((lane) => lane.finish()))
    // A filter still being read is of no more use; its connection is closed with the sink.
    if (failure !== undefined) throw failure
    return { ...counts, repeats }
  }

  /**
   * Closes the sink's connections when its scope closes. What is not committed (the scope closed
   * early, or a write failed) is dropped: busy connections are closed, not reused — one may be in
   * the middle of a COPY — and the server rolls them back.
   */
  const close = () => {
    for (const client of [...inUse]) release(client, true)
    closeIdle()
  }

  const closeIdle = () => {
    for (const client of idle.splice(0)) void client.end().catch(() => undefined)
  }

  return { sink: { write, finish } satisfies ListSink, close }
}

export class ListsRepository extends Context.Service<
  ListsRepository,
  {
    /**
     * A sink for one list write of any size (see `ListSink`). Closing the scope before `finish`
     * resolves drops the batches not yet committed.
     */
    readonly openSink: (list: ListName, options: BatchOptions) => Effect.Effect<ListSink, never, Scope.Scope>
    /** Deletes the numbers from `lists`; one audit row per entry removed. */
    readonly remove: (
      phones: ReadonlyArray<string>,
      lists: ReadonlyArray<ListName>,
      options: { readonly actor: string; readonly reason: string | null }
    ) => Effect.Effect<ReadonlyArray<{ readonly phone: string; readonly list: ListName }>, DatabaseError>
    readonly current: (phone: string) => Effect.Effect<Option.Option<CurrentEntry>, DatabaseError>
    readonly history: (phone: string, limit: number) => Effect.Effect<ReadonlyArray<ListAuditEntry>, DatabaseError>
    readonly counts: Effect.Effect<ListCounts, DatabaseError>
    /** `COPY <list> TO STDOUT WITH CSV HEADER`, as it is produced. */
    readonly exportCsv: (list: ListName) => Stream.Stream<Uint8Array, DatabaseError>
    /** Inserts the numbers that are not there yet; returns how many were new. */
    readonly addToMainDatabase: (phones: ReadonlyArray<string>) => Effect.Effect<number, DatabaseError>
    /** Which of `phones` are on any of `lists`. */
    readonly listedIn: (
      phones: ReadonlyArray<string>,
      lists: ReadonlyArray<ListName>
    ) => Effect.Effect<ReadonlySet<string>, DatabaseError>
  }
>()("@optimizer/core/lists/ListsRepository") {
  static readonly layer = Layer.effect(
    ListsRepository,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const bulk = yield* PgBulk

      const openSink = (list: ListName, options: BatchOptions) =>
        Effect.acquireRelease(
          Effect.sync(() => makeSink({ ...bulk.pool.options, application_name: "optimizer-lists" }, list, options)),
          ({ close }) => Effect.sync(close)
        ).pipe(Effect.map(({ sink }) => sink))

      const remove = Effect.fn("ListsRepository.remove")(function* (
        phones: ReadonlyArray<string>,
        lists: ReadonlyArray<ListName>,
        options: { readonly actor: string; readonly reason: string | null }
      ) {
        if (phones.length === 0 || lists.length === 0) return []
        const statement = REMOVE_STATEMENT(lists)
        return yield* bulk.withClient((client) =>
          inTransaction(client, async () => {
            for (let lane = 0; lane < LIST_WRITE_LANES; lane++) {
              const locked = laneLocked(await client.query(lockLane(lane)))
              // A removal lists no number: its log row only tells readers the version was not theirs.
              if (locked.readers && locked.version !== undefined) {
                await client.query(logWrites(lane, locked.version, "'{}'::text[]"))
              }
            }
            const removed: Array<{ phone: string; list: ListName }> = []
            for (let i = 0; i < phones.length; i += 10_000) {
              const result = await client.query<{ phone: string; list: ListName }>(statement, [
                phones.slice(i, i + 10_000),
                options.reason,
                options.actor
              ])
              removed.push(...result.rows)
            }
            return removed
          })
        )
      })

      const current = Effect.fn("ListsRepository.current")(function* (phone: string) {
        const rows = yield* sql<{
          list: ListName
          reason: string | null
          source: string | null
          sticky: boolean
          since: Date
        }>`
          SELECT 'blacklist' AS list, reason, source, sticky, timestamp_created AS since
            FROM blacklist WHERE custom_variable_1 = ${phone}
          UNION ALL
          SELECT 'monitor', reason, source, sticky, timestamp_created FROM monitor WHERE custom_variable_1 = ${phone}
          UNION ALL
          SELECT 'whitelist', NULL, source, false, timestamp_created FROM whitelist WHERE custom_variable_1 = ${phone}`.pipe(
          Effect.mapError(toDatabaseError)
        )
        return Option.fromNullishOr(rows[0])
      })

      const history = Effect.fn("ListsRepository.history")(function* (phone: string, limit: number) {
        const rows = yield* sql<{
          action: ListAuditEntry["action"]
          from_list: ListName | null
          to_list: ListName | null
          reason: string | null
          source: string | null
          actor: string
          created_at: Date
        }>`
          SELECT action, from_list, to_list, reason, source, actor, created_at FROM list_audit
          WHERE custom_variable_1 = ${phone}
          ORDER BY created_at DESC, id DESC
          LIMIT ${limit}`.pipe(Effect.mapError(toDatabaseError))
        return rows.map((r): ListAuditEntry => ({
          action: r.action,
          fromList: r.from_list,
          toList: r.to_list,
          reason: r.reason,
          source: r.source,
          actor: r.actor,
          createdAt: r.created_at
        }))
      })

      const counts = Effect.gen(function* () {
        const rows = yield* sql<{ blacklist: number; whitelist: number; monitor: number }>`
          SELECT (SELECT count(*) FROM blacklist)::int AS blacklist,
                 (SELECT count(*) FROM whitelist)::int AS whitelist,
                 (SELECT count(*) FROM monitor)::int AS monitor`.pipe(Effect.mapError(toDatabaseError))
        const row = rows[0]!
        return { blacklist: row.blacklist, whitelist: row.whitelist, monitor: row.monitor }
      }).pipe(Effect.withSpan("ListsRepository.counts"))

      const exportCsv = (list: ListName): Stream.Stream<Uint8Array, DatabaseError> =>
        Stream.unwrap(
          Effect.gen(function* () {
            let finished = false
            const client = yield* Effect.acquireRelease(
              Effect.tryPromise({
                try: () => bulk.pool.connect(),
                catch: (cause) => new DatabaseError({ message: `database error: ${String(cause)}`, cause })
              }),
              // A COPY stopped half-way leaves the connection mid-protocol: discard it.
              (c) => Effect.sync(() => c.release(finished ? undefined : true))
            )
            const copy = client.query(copyTo(`COPY ${list} TO STDOUT WITH CSV HEADER`))
            copy.on("end", () => {
              finished = true
            })
            return Stream.fromAsyncIterable(
              copy as AsyncIterable<Uint8Array>,
              (cause) =>
                new DatabaseError({ message: `database error: ${(cause as Error)?.message ?? String(cause)}`, cause })
            )
          })
        )

      const addToMainDatabase = Effect.fn("ListsRepository.addToMainDatabase")(function* (
        phones: ReadonlyArray<string>
      ) {
        if (phones.length === 0) return 0
        return yield* bulk.withClient((client) =>
          inTransaction(client, async () => {
            await client.query("CREATE TEMP TABLE main_database_stage (phone text NOT NULL) ON COMMIT DROP")
            await copyChunks(
              client,
              "COPY main_database_stage (phone) FROM STDIN",
              linesInChunks(phones.length, (i) => escapeCopy(phones[i]!) + "\n")
            )
            const result = await client.query(
              `INSERT INTO main_database (custom_variable_1)
               SELECT DISTINCT phone FROM main_database_stage ON CONFLICT (custom_variable_1) DO NOTHING`
            )
            return result.rowCount ?? 0
          })
        )
      })

      const listedIn = Effect.fn("ListsRepository.listedIn")(function* (
        phones: ReadonlyArray<string>,
        lists: ReadonlyArray<ListName>
      ) {
        const found = new Set<string>()
        if (phones.length === 0 || lists.length === 0) return found as ReadonlySet<string>
        const statement = lists
          .map((l) => `SELECT custom_variable_1 FROM ${l} WHERE custom_variable_1 = ANY($1::text[])`)
          .join(" UNION ")
        yield* bulk.withClient(async (client) => {
          for (let i = 0; i < phones.length; i += 10_000) {
            const result = await client.query<{ custom_variable_1: string }>(statement, [phones.slice(i, i + 10_000)])
            for (const r of result.rows) found.add(r.custom_variable_1)
          }
        })
        return found as ReadonlySet<string>
      })

      return ListsRepository.of({
        openSink,
        remove,
        current,
        history,
        counts,
        exportCsv,
        addToMainDatabase,
        listedIn
      })
    })
  )
}
