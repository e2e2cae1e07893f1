/**
 * The SQL of the phone lists. Bulk writes never run a query per number: a batch is COPYed into a
 * TEMP staging table on one `pg` connection (`PgBulk`), then ONE statement, in the same
 * transaction, does the whole move:
 *
 *   plan    — the staged numbers LEFT JOINed to the three lists: where each one is now, and
 *             whether it may be touched (sticky entries are left alone unless an admin writes);
 *   gone_*  — DELETE … USING plan on the two other lists, RETURNING the old rows so a move keeps
 *             what the new entry does not say (ip, OS, metrics);
 *   written — INSERT … SELECT … ON CONFLICT (custom_variable_1) DO UPDATE … WHERE <something
 *             changed>, RETURNING only rows really inserted or changed;
 *   audit   — INSERT INTO list_audit … SELECT from `written` joined to `plan` (add / move / update);
 *
 * and returns the counts. A transaction-level advisory lock serialises list writers, so two
 * writers moving one number to two lists cannot both win (the single-list invariant).
 *
 * Table and column names in the SQL come from the constants below, never from input; values are
 * COPY-escaped or bound parameters.
 */
import { Context, Effect, Layer, Option, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
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

/** An entry ready for the database: canonical phone, stickiness and whitelist country decided. */
export interface StagedEntry extends ListEntry {
  readonly sticky: boolean
}

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

/** One key for every list writer: `pg_advisory_xact_lock` serialises them. ("LIST" in ASCII.) */
(globalThis as any).__n = 0
const LIST_WRITE_LOCK = 0x4c495354

const DATA_COLUMNS = ["ip", "os_version", "browser_version", ...LIST_METRIC_COLUMNS] as const
const TEXT_DATA = new Set<string>(["ip", "os_version", "browser_version", "cost_sources"])

/** Columns a list has beyond the shared ones. */
const hasReason = (list: ListName) => list !== "whitelist"
const hasSticky = (list: ListName) => list !== "whitelist"
const hasCountry = (list: ListName) => list === "whitelist"

const STAGE_COLUMNS = [
  "phone",
  "reason",
  "source",
  "country_code",
  "timestamp_created",
  "sticky",
  ...DATA_COLUMNS
] as const

const STAGE_DDL = `CREATE TEMP TABLE lists_stage (
  phone text NOT NULL,
  reason text,
  source text,
  country_code text,
  timestamp_created timestamptz,
  sticky boolean NOT NULL,
  ${DATA_COLUMNS.map((c) => `${c} ${TEXT_DATA.has(c) ? "text" : "double precision"}`).join(",\n  ")}
) ON COMMIT DROP`

const STAGE_COPY = `COPY lists_stage (${STAGE_COLUMNS.join(", ")}) FROM STDIN`

// ---------------------------------------------------------------------------------------------
// COPY text format

/** COPY text escaping: backslash, tab, newline and carriage return are the only special characters. */
const escapeCopy = (value: string): string =>
  /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"))
    : value

const textField = (value: string | null | undefined): string =>
  value === null || value === undefined ? "\\N" : escapeCopy(value)

const numberField = (value: number | string | null | undefined): string =>
  typeof value === "number" && Number.isFinite(value) ? String(value) : "\\N"

const stageLine = (e: StagedEntry): string => {
  const m = e.metrics
  let line =
    escapeCopy(e.phone) +
    "\t" +
    textField(e.reason) +
    "\t" +
    textField(e.source) +
    "\t" +
    textField(e.countryCode) +
    "\t" +
    (e.timestampCreated instanceof Date && !Number.isNaN(e.timestampCreated.getTime())
      ? e.timestampCreated.toISOString()
      : "\\N") +
    "\t" +
    (e.sticky ? "t" : "f") +
    "\t" +
    textField(e.ip) +
    "\t" +
    textField(e.osVersion) +
    "\t" +
    textField(e.browserVersion)
  if (m === undefined) {
    line += "\t\\N".repeat(LIST_METRIC_COLUMNS.length)
  } else {
    for (const column of LIST_METRIC_COLUMNS) {
      line += "\t" + (column === "cost_sources" ? textField(m.cost_sources) : numberField(m[column]))
    }
  }
  return line + "\n"
}

/** Streams lines into a `COPY … FROM STDIN`, ~256 KiB per write, honouring backpressure. */
const copyLines = async <A>(
  client: pg.PoolClient,
  statement: string,
  items: ReadonlyArray<A>,
  line: (a: A) => string
): Promise<void> => {
  const stream = client.query(copyFrom(statement))
  const done = new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve)
    stream.on("error", reject)
  })
  let buffer = ""
  for (const item of items) {
    buffer += line(item)
    if (buffer.length >= 256 * 1024) {
      const more = stream.write(buffer)
      buffer = ""
      if (!more) await new Promise<void>((resolve) => stream.once("drain", resolve))
    }
  }
  stream.end(buffer)
  await done
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
 * NULL = not on that list, else its sticky flag (the whitelist has none).
 */
const presence = (list: ListName) =>
  `(SELECT ${hasSticky(list) ? "x.sticky" : "false"} FROM ${list} x WHERE x.custom_variable_1 = s.phone)`

const applyStatement = (list: ListName, conflict: ConflictPolicy, guard: StickyGuard): string => {
  const [otherA, otherB] = otherLists(list)
  const protectedIf =
    guard === "none"
      ? "false"
      : guard === "others"
        ? "coalesce(q.in_a, false) OR coalesce(q.in_b, false)"
        : "coalesce(q.in_t, false) OR coalesce(q.in_a, false) OR coalesce(q.in_b, false)"
  // The old row of a moved number, in one shape whatever list it comes from.
  const returning = (from: ListName) =>
    [
      "custom_variable_1",
      ...DATA_COLUMNS,
      hasReason(from) ? "reason" : "NULL::text AS reason",
      "source"
    ].join(", ")
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
    ...DATA_COLUMNS.map((c) => `coalesce(p.${c}, o.${c})`),
    ...(hasReason(list) ? ["coalesce(p.reason, o.reason)"] : []),
    "coalesce(p.source, o.source)",
    ...(hasCountry(list) ? ["p.country_code"] : []),
    ...(hasSticky(list) ? ["p.sticky"] : []),
    "coalesce(p.timestamp_created, now())",
    "now()"
  ]

  // What an upsert may change, and to what.
  const assignments: Array<readonly [column: string, value: string]> = []
  if (conflict === "replace") {
    for (const c of DATA_COLUMNS) assignments.push([c, `EXCLUDED.${c}`])
    if (hasReason(list)) assignments.push(["reason", "EXCLUDED.reason"])
    if (hasCountry(list)) assignments.push(["country_code", "EXCLUDED.country_code"])
  } else if (conflict === "merge") {
    for (const c of DATA_COLUMNS) assignments.push([c, `coalesce(EXCLUDED.${c}, t.${c})`])
    if (hasReason(list)) assignments.push(["reason", "coalesce(EXCLUDED.reason, t.reason)"])
    assignments.push(["source", "coalesce(EXCLUDED.source, t.source)"])
    if (hasCountry(list)) assignments.push(["country_code", "coalesce(EXCLUDED.country_code, t.country_code)"])
    if (hasSticky(list)) assignments.push(["sticky", "EXCLUDED.sticky"])
  } else if (hasSticky(list)) {
    assignments.push(["sticky", "t.sticky OR EXCLUDED.sticky"])
  }
  // Only rows that really change are written (and returned): the rest count as unchanged.
  const onConflict =
    assignments.length === 0
      ? "ON CONFLICT (custom_variable_1) DO NOTHING"
      : `ON CONFLICT (custom_variable_1) DO UPDATE SET ${assignments.map(([c, v]) => `${c} = ${v}`).join(", ")}, updated_at = now()
         WHERE (${assignments.map(([c]) => `t.${c}`).join(", ")}) IS DISTINCT FROM (${assignments.map(([, v]) => v).join(", ")})`

  // Numbers not on the target are inserted for sure (list writers hold the advisory lock), so
  // their audit rows come straight from the plan; only numbers already there need `written` to
  // tell an update from an unchanged row.
  return `
WITH plan AS MATERIALIZED (
  SELECT q.*,
    CASE WHEN q.in_t IS NOT NULL THEN '${list}'
         WHEN q.in_a IS NOT NULL THEN '${otherA}'
         WHEN q.in_b IS NOT NULL THEN '${otherB}' END AS from_list,
    NOT (${protectedIf}) AS go
  FROM (
    SELECT s.*, ${presence(list)} AS in_t, ${presence(otherA)} AS in_a, ${presence(otherB)} AS in_b
    FROM lists_stage s
    OFFSET 0
  ) q
),
gone_a AS (${gone(otherA, "in_a")}),
gone_b AS (${gone(otherB, "in_b")}),
old AS (
  SELECT DISTINCT ON (custom_variable_1) * FROM (SELECT * FROM gone_a UNION ALL SELECT * FROM gone_b) u
  ORDER BY custom_variable_1
),
written AS (
  INSERT INTO ${list} AS t (${insertColumns.join(", ")})
  SELECT ${insertValues.join(", ")}
  FROM plan p LEFT JOIN old o ON o.custom_variable_1 = p.phone
  WHERE p.go
  ${onConflict}
  RETURNING t.custom_variable_1
),
audit AS (
  INSERT INTO list_audit (custom_variable_1, action, from_list, to_list, reason, source, actor)
  SELECT p.phone, CASE WHEN p.from_list IS NULL THEN 'add' ELSE 'move' END, p.from_list, '${list}', p.reason, p.source, $1
  FROM plan p WHERE p.go AND p.in_t IS NULL
  UNION ALL
  SELECT p.phone, 'update', '${list}', '${list}', p.reason, p.source, $1
  FROM plan p WHERE p.go AND p.in_t IS NOT NULL AND p.phone IN (SELECT custom_variable_1 FROM written)
  RETURNING action
)
SELECT
  count(*) FILTER (WHERE action = 'add')::int AS added,
  count(*) FILTER (WHERE action = 'move')::int AS moved,
  count(*) FILTER (WHERE action = 'update')::int AS updated,
  (SELECT count(*) FROM plan WHERE NOT go)::int AS kept_sticky,
  (SELECT count(*) FROM plan)::int AS total
FROM audit`
}

const statementCache = new Map<string, string>()
const applyStatementFor = (list: ListName, conflict: ConflictPolicy, guard: StickyGuard): string => {
  const key = `${list}/${conflict}/${guard}`
  let statement = statementCache.get(key)
  if (statement === undefined) {
    statement = applyStatement(list, conflict, guard)
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

export class ListsRepository extends Context.Service<
  ListsRepository,
  {
    /** Writes one batch (phones unique) in one transaction. */
    readonly applyBatch: (
      list: ListName,
      entries: ReadonlyArray<StagedEntry>,
      options: BatchOptions
    ) => Effect.Effect<ApplyCounts, DatabaseError>
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

      const applyBatch = Effect.fn("ListsRepository.applyBatch")(function* (
        list: ListName,
        entries: ReadonlyArray<StagedEntry>,
        options: BatchOptions
      ) {
        if (entries.length === 0) return { added: 0, moved: 0, updated: 0, unchanged: 0, keptSticky: 0 }
        yield* Effect.annotateCurrentSpan({ list, rows: entries.length })
        const statement = applyStatementFor(list, options.conflict, options.guard)
        const row = yield* bulk.withClient((client) =>
          inTransaction(client, async () => {
            const T0 = performance.now()
            await client.query(STAGE_DDL)
            await copyLines(client, STAGE_COPY, entries, stageLine)
            const T1 = performance.now()
            const T2 = performance.now()
            await client.query("SELECT pg_advisory_xact_lock($1)", [LIST_WRITE_LOCK])
            await client.query("SET LOCAL work_mem = '256MB'; SET LOCAL jit = off")
            if (process.env.DEBUG_LISTS && ++(globalThis as any).__n === Number(process.env.DEBUG_LISTS)) { const e = await client.query("EXPLAIN (ANALYZE, BUFFERS) " + statement, [options.actor]); console.log(e.rows.map((r) => r["QUERY PLAN"]).join("\n")); throw new Error("explained") }
            const result = await client.query<{
              added: number
              moved: number
              updated: number
              kept_sticky: number
              total: number
            }>(statement, [options.actor])
            const T3 = performance.now()
            console.log("copy", Math.round(T1 - T0), "analyze", Math.round(T2 - T1), "apply", Math.round(T3 - T2), "mem", JSON.stringify(Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1e6)]))))
            return result.rows[0]!
          })
        )
        return {
          added: row.added,
          moved: row.moved,
          updated: row.updated,
          unchanged: row.total - row.kept_sticky - row.added - row.moved - row.updated,
          keptSticky: row.kept_sticky
        }
      })

      const remove = Effect.fn("ListsRepository.remove")(function* (
        phones: ReadonlyArray<string>,
        lists: ReadonlyArray<ListName>,
        options: { readonly actor: string; readonly reason: string | null }
      ) {
        if (phones.length === 0 || lists.length === 0) return []
        const statement = REMOVE_STATEMENT(lists)
        return yield* bulk.withClient((client) =>
          inTransaction(client, async () => {
            await client.query("SELECT pg_advisory_xact_lock($1)", [LIST_WRITE_LOCK])
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
            await copyLines(client, "COPY main_database_stage (phone) FROM STDIN", phones, (p) => escapeCopy(p) + "\n")
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
        applyBatch,
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
