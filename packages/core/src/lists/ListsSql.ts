/**
 * The SQL of a list write. Bulk writes never run a query per number: rows stream into a
 * `COPY … FROM STDIN` on a TEMP staging table (`STAGE_DDL`, lines from `StageLines.ts`), and every
 * `LIST_BATCH_ROWS` rows ONE statement, in the same transaction, applies the batch
 * (`applyStatementFor`):
 *
 *   plan     — each staged number with where it is now: one primary-key probe per list (scalar
 *              subqueries, so the cost does not grow with the lists), and whether it may be
 *              touched (sticky entries are left alone unless an admin writes);
 *   gone_*   — DELETE from the two other lists (`= ANY(ARRAY(…))`: index probes), RETURNING the
 *              old rows so a move keeps what the new entry does not say (ip, OS, metrics);
 *   inserted — a plain INSERT … SELECT of the numbers not on the target (no ON CONFLICT: it
 *              doubles the cost of an insert, and the lane's advisory lock makes it unnecessary);
 *   updated  — UPDATE … FROM plan for numbers already there, only where something changes;
 *   audit    — INSERT INTO list_audit … SELECT: add / move straight from the plan, update from
 *              the rows `updated` returned;
 *
 * then the batch commits. A large write also skips most of that for numbers that are certainly on
 * no list (a filter of the lists read into memory, `ListedFilter.ts`, trusted per batch): they are
 * not probed, and in the blacklist and the monitor list they are copied straight into the list and
 * the audit (`directCopy`), in key order, beside the plan. Also here: the removal, and the reads of
 * the lists' keys for that filter.
 *
 * Table and column names in the SQL come from the constants below, never from input; values are
 * COPY-escaped or bound parameters.
 */
import { LIST_METRIC_COLUMNS, LIST_NAMES, type ApplyCounts, type ListName } from "./ListSchemas.ts"

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

export const DATA_COLUMNS = ["ip", "os_version", "browser_version", ...LIST_METRIC_COLUMNS] as const

/** Columns a list has beyond the shared ones. */
const hasReason = (list: ListName) => list !== "whitelist"
const hasSticky = (list: ListName) => list !== "whitelist"
const hasCountry = (list: ListName) => list === "whitelist"

/** The numeric metric columns; they travel packed in one staging column (see `stageLine` in StageLines.ts). */
export const NUMERIC_METRICS = LIST_METRIC_COLUMNS.filter((c) => c !== "cost_sources")

export const STAGE_DDL = `CREATE TEMP TABLE lists_stage (
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

export const STAGE_COPY = `COPY lists_stage (seq, phone, reason, source, country_code, timestamp_created, sticky, ip, os_version,
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
// The straight copy

/**
 * Straight to the list. A batch's new numbers that are certainly on no list (the sink's filter,
 * trusted) need no decision: in the blacklist and the monitor list, such a number with no metrics
 * and no creation time of its own is copied into the list and its audit row into `list_audit`, by
 * COPY — which writes a page of rows per WAL record where `INSERT … SELECT` writes one per row
 * (500k numbers with their audit rows: 1.5 s instead of 2.1 s, and no staging or plan for them).
 * The whitelist has no reason column and its rows carry a country: its writes are always staged.
 */
const DIRECT_COLUMNS = "custom_variable_1, ip, os_version, browser_version, reason, source, sticky"
export const directCopy = (list: ListName) => `COPY ${list} (${DIRECT_COLUMNS}) FROM STDIN`
export const DIRECT_AUDIT_COPY =
  "COPY list_audit (custom_variable_1, action, to_list, reason, source, actor) FROM STDIN"
/** The same lines into the staging table, when the batch cannot trust its filter after all. */
export const DIRECT_STAGE_COPY =
  "COPY lists_stage (phone, ip, os_version, browser_version, reason, source, sticky) FROM STDIN"

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
 * its `fresh` marks, see ListWriteSink.ts): a fresh number is on no list, so it is not probed — unless it
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
export const applyStatementFor = (
  list: ListName,
  conflict: ConflictPolicy,
  guard: StickyGuard,
  dedupe: boolean
): string => {
  const key = `${list}/${conflict}/${guard}/${dedupe}`
  let statement = statementCache.get(key)
  if (statement === undefined) {
    statement = applyStatement(list, conflict, guard, dedupe)
    statementCache.set(key, statement)
  }
  return statement
}

export const REMOVE_STATEMENT = (lists: ReadonlyArray<ListName>) => `
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
// The keys of the lists, for a large write's filter

/** How many keys the three lists hold (the planner's estimate; a never-analysed table by its size). */
export const LIST_KEYS_ESTIMATE = `SELECT coalesce(sum(CASE WHEN c.reltuples >= 0 THEN c.reltuples
    ELSE pg_relation_size(c.oid) / 64 END), 0)::float8 AS keys
  FROM pg_class c WHERE c.oid IN (${LIST_NAMES.map((l) => `'${l}'::regclass`).join(", ")})`

export const LIST_KEYS = `COPY (${LIST_NAMES.map((l) => `SELECT custom_variable_1 FROM ${l}`).join(" UNION ALL ")}) TO STDOUT`

/** What an apply statement returns. */
export interface ApplyRow {
  readonly added: number
  readonly moved: number
  readonly updated: number
  readonly kept_sticky: number
  readonly total: number
}

/** The counts of a batch from its apply statement's row. */
export const applyResult = (row: ApplyRow): ApplyCounts => ({
  added: row.added,
  moved: row.moved,
  updated: row.updated,
  unchanged: row.total - row.kept_sticky - row.added - row.moved - row.updated,
  keptSticky: row.kept_sticky
})
