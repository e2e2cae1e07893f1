/**
 * The cleaning engine's SQL, run on each partition's connection inside its transaction: the TEMP
 * stage the numbers are COPYed into, the duplicate check, the verdict of every first occurrence, the
 * ordered COPYs out and the `main_database` insert. Also the verdict codes the optional outputs
 * translate into reasons.
 */
import type { CleaningFlags } from "./PipelineInput.ts"

/** Verdict codes stored per distinct number (SQL) and their reasons in the optional outputs. */
export const KEPT = 0
export const DUPLICATE = 5
export const REASONS: ReadonlyArray<string> = ["", "BLACKLIST", "MONITOR", "CONVERSION", "MAIN_DATABASE", "DUPLICATE"]
export const INVALID_REASON = "INVALID_PHONE_NUMBER"

/** Hash tables of a million rows; no JIT compile for a statement that runs once. */
export const SESSION_SETTINGS_SQL = "SET LOCAL work_mem = '128MB'; SET LOCAL jit = off"

export const CREATE_STAGE_SQL =
  "CREATE TEMP TABLE cleaning_stage (seq integer NOT NULL, phone text NOT NULL, repeat boolean NOT NULL) ON COMMIT DROP"

export const COPY_STAGE_SQL = "COPY cleaning_stage (seq, phone, repeat) FROM STDIN"

/** A small sample is enough for the planner to see a million mostly distinct numbers. */
export const ANALYZE_STAGE_SQL = "SET LOCAL default_statistics_target = 10; ANALYZE cleaning_stage"

/**
 * The rows that repeat a number seen earlier in the file. Only rows the filter flagged as possible
 * repeats are candidates: the first position of each flagged number is found in one scan of the stage
 * (probing a hash of the few flagged numbers), and a flagged row after it is a repeat. Linear in the
 * rows whatever the repeats: a join of each flagged row with every earlier row of its number was
 * quadratic in a number's repeat count (a 2M-row file of 1,000 numbers ran for minutes).
 */
export const DUPLICATES_SQL = `CREATE TEMP TABLE cleaning_duplicate ON COMMIT DROP AS
  SELECT r.seq FROM cleaning_stage r
  JOIN (
    SELECT phone, min(seq) AS first_seq FROM cleaning_stage
    WHERE phone IN (SELECT phone FROM cleaning_stage WHERE repeat)
    GROUP BY phone
  ) f ON f.phone = r.phone
  WHERE r.repeat AND r.seq > f.first_seq`

/** Set before `verdictSql` runs (see there). */
export const NO_HASH_JOINS_SQL = "SET LOCAL enable_hashjoin = off"

const literalTimestamp = (marker: Date): string => {
  const iso = marker.toISOString()
  // Built from a Date, so it has this exact shape; checked anyway because it is inlined in SQL.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(iso)) throw new Error(`bad marker ${iso}`)
  return `'${iso}'::timestamptz`
}

/**
 * One CTAS: first occurrences and the first list that has each, in the original's order. Run with
 * hash joins off: the planner then sorts the file's numbers once and merges them with each list's
 * primary-key index in order (or probes the index, for a list far larger than the file), which
 * measured 25-35 % faster than hashing a million-row blacklist per partition.
 */
export const verdictSql = (flags: CleaningFlags, marker: Date): string => {
  const joins: Array<string> = []
  const cases: Array<string> = []
  if (flags.includeBlacklist) {
    joins.push("LEFT JOIN blacklist b ON b.custom_variable_1 = u.phone")
    cases.push("WHEN b.custom_variable_1 IS NOT NULL THEN 1")
  }
  if (flags.includeMonitor) {
    joins.push("LEFT JOIN monitor m ON m.custom_variable_1 = u.phone")
    cases.push("WHEN m.custom_variable_1 IS NOT NULL THEN 2")
  }
  if (flags.includeConversion) {
    joins.push(
      "LEFT JOIN (SELECT DISTINCT custom_variable_1 FROM api_voluum_conversions) c ON c.custom_variable_1 = u.phone"
    )
    cases.push("WHEN c.custom_variable_1 IS NOT NULL THEN 3")
  }
  if (flags.includeMainDatabase) {
    // Rows carrying this run's marker were added by an earlier attempt of this same run.
    joins.push(
      `LEFT JOIN main_database d ON d.custom_variable_1 = u.phone AND d.timestamp_created <> ${literalTimestamp(marker)}`
    )
    cases.push("WHEN d.custom_variable_1 IS NOT NULL THEN 4")
  }
  const verdict = cases.length === 0 ? "0" : `CASE ${cases.join(" ")} ELSE 0 END`
  return `CREATE TEMP TABLE cleaning_verdict ON COMMIT DROP AS
    SELECT u.seq, u.phone, (${verdict})::smallint AS verdict
    FROM cleaning_stage u
    ${joins.join("\n    ")}
    WHERE NOT (u.repeat AND u.seq IN (SELECT seq FROM cleaning_duplicate))`
}

export const VERDICT_COUNTS_SQL = "SELECT verdict, count(*)::int AS n FROM cleaning_verdict GROUP BY verdict"

/** The kept numbers in file order, for the cleaned list (`mergeBySeq` over the partitions). */
export const COPY_KEPT_SQL = `COPY (SELECT seq, phone FROM cleaning_verdict WHERE verdict = ${KEPT} ORDER BY seq) TO STDOUT`

/** Every valid row in file order with its verdict (a repeat has none: `DUPLICATE`) and its number. */
export const COPY_VERDICTS_SQL = `COPY (SELECT s.seq, coalesce(v.verdict, ${DUPLICATE}), s.phone
                 FROM cleaning_stage s LEFT JOIN cleaning_verdict v ON v.seq = s.seq ORDER BY s.seq) TO STDOUT`

/**
 * The kept numbers with this run's marker (`$1`), in index order (about twice as fast as random
 * order). None of them is in main_database (that is what kept means), so a plain INSERT is tried
 * first under `MAIN_DATABASE_SAVEPOINT`: ~30 % cheaper than ON CONFLICT's speculative insertion. A
 * conflict — a concurrent writer, or this run's own rows from an attempt that died after committing —
 * rolls back to the savepoint and `MAIN_DATABASE_INSERT_IF_ABSENT_SQL` finishes the job.
 */
export const MAIN_DATABASE_INSERT_SQL = `INSERT INTO main_database (custom_variable_1, timestamp_created)
        SELECT phone, $1::timestamptz FROM cleaning_verdict WHERE verdict = ${KEPT} ORDER BY phone COLLATE "C"`
export const MAIN_DATABASE_INSERT_IF_ABSENT_SQL = `${MAIN_DATABASE_INSERT_SQL} ON CONFLICT (custom_variable_1) DO NOTHING`
export const MAIN_DATABASE_SAVEPOINT = "main_database_insert"
