/**
 * The cleaning engine: one pass over the file in Node, set-based SQL in PostgreSQL, memory flat in
 * the file's size. Used by the durable job (stored files) and by `optimizer clean` (local files).
 *
 *   file ─decode─▶ CsvReader ─phone cell─▶ normalizePhone ─▶ COPY (seq, phone, repeat) ─▶ TEMP stage, per partition
 *   per partition, in SQL:
 *     duplicates  rows flagged as possible repeats, checked exactly against the rows before them
 *     verdicts    first occurrences ⟕ blacklist ⟕ monitor ⟕ conversions ⟕ main_database → one verdict each
 *   kept rows of every partition, COPYed out by seq and merged ─▶ output: one canonical number per line, input order
 *   main_database ← the kept numbers, in index order
 *
 * This file is the orchestration: the partitions' connections and transactions (scoped resources:
 * committed together when the run succeeds, cut — which rolls back — when it fails or its `signal`
 * aborts) and the phases in order. The parts: `CleaningInput.ts` (decoding, dialect, records),
 * `CopyStreams.ts` (COPY bytes in and out, the merge by seq), `CleaningSql.ts` (the statements),
 * `Annotations.ts` (the optional annotated and rejects files). How it stays fast: docs/cleaning.md.
 *
 * Partitions. Numbers are split by their last digits over `partitions` connections (default 2, the
 * machine's cores): every occurrence of a number lands in the same partition, so de-duplication and
 * the look-ups are independent per partition and run in parallel backends. The only cross-partition
 * step is the ordered merge of the kept rows, done in Node on sorted streams.
 *
 * De-duplication without a set of all numbers. A Bloom filter of fixed size (`PhoneKeyFilter`) flags
 * every row whose number may have appeared before; rows it does not flag are certainly first
 * occurrences. SQL then checks only the flagged rows (~5 % of a typical list) against the rows before
 * them — instead of grouping every row — and memory stays the same whatever the file's size.
 *
 * Order of the original's filters. A number is counted under the FIRST list that has it, in the
 * original's order blacklist → monitor → conversion → main database, so `removed_monitor` is the
 * drop at the monitor step, as the original computed it. Duplicates (every occurrence after the
 * first) and invalid numbers have their own counts, so `total_records = final_clean_count +
 * removed_*` always holds.
 *
 * Exactly once. The numbers a run adds to `main_database` carry the run's `marker` as
 * `timestamp_created` (the file's `processing_started_at`). A run that is repeated — a retry after a
 * crash, a worker killed after some partitions committed — ignores rows with its own marker when it
 * looks numbers up in `main_database`, so it computes the same result as an uninterrupted run and
 * adds nothing twice. Everything else lives in TEMP tables of the run's own transactions.
 *
 * Memory. Rows travel as bytes (`CopyBatch` in, `CopyOutRows` / `ByteOutput` out): no string per
 * row, so a million rows of garbage never leaves V8's young generation and the heap stays small.
 * The phases' loops are plain async code; Effect only holds the resources and sequences the phases.
 *
 * `OPTIMIZER_TRACE_CLEANING=1` prints the phases' times on stderr (the benchmark uses it).
 */
import { Cause, Effect, Exit, type Scope } from "effect"
import type pg from "pg"
import { PhoneKeyFilter } from "../phone/PhoneKeyFilter.ts"
import { normalizePhone, PHONE_METADATA_VERSION } from "../phone/PhoneNumber.ts"
import { committedTransaction, databaseErrorOf, pooledConnection, toDatabaseError } from "../platform/Database.ts"
import { DatabaseError, StorageError, UnreadableFile, ValidationError } from "../platform/Errors.ts"
import type { FileWriter } from "../platform/FileStore.ts"
import { writeAnnotations } from "./Annotations.ts"
import type { PipelineInput } from "./PipelineInput.ts"
import { Aborted, decodedText, forEachDataRecord, sniffFile, type SniffedFile } from "./CleaningInput.ts"
import {
  ANALYZE_STAGE_SQL,
  COPY_KEPT_SQL,
  COPY_STAGE_SQL,
  CREATE_STAGE_SQL,
  DUPLICATES_SQL,
  KEPT,
  MAIN_DATABASE_INSERT_IF_ABSENT_SQL,
  MAIN_DATABASE_INSERT_SQL,
  MAIN_DATABASE_SAVEPOINT,
  NO_HASH_JOINS_SQL,
  SESSION_SETTINGS_SQL,
  VERDICT_COUNTS_SQL,
  verdictSql
} from "./CleaningSql.ts"
import { CopyIn } from "../platform/CopyText.ts"
import { ByteOutput, COPY_BATCH_BYTES, CopyBatch, CopyOutRows, mergeBySeq } from "./CopyStreams.ts"
import { countryHintOf, describeDialect } from "./CsvDialect.ts"

/** The original's stats keys plus the new ones (docs/cleaning.md, "Stats"). */
export interface CleaningCounts {
  readonly total_records: number
  readonly removed_blacklist: number
  readonly removed_monitor: number
  readonly removed_conversion: number
  readonly removed_maindatabase: number
  readonly final_clean_count: number
  readonly removed_duplicates: number
  readonly removed_invalid: number
}

export interface PipelineResult extends CleaningCounts {
  readonly phone_metadata_version: string
  readonly dialect: ReturnType<typeof describeDialect>
  /** Numbers this run added to `main_database` (0 without `include_main_database`, or on a repeat). */
  readonly added_to_main_database: number
}

export type { CleaningFlags, PipelineInput } from "./PipelineInput.ts"

export const DEFAULT_PARTITIONS = 2
const PROGRESS_EVERY_ROWS = 50_000
const TRACE = process.env.OPTIMIZER_TRACE_CLEANING === "1"

/** What a run fails with: `Aborted` when its signal aborted it, else one of the domain's errors. */
type PipelineError = Aborted | UnreadableFile | ValidationError | DatabaseError | StorageError

/**
 * Cleans a file (see the module comment). Rejects with `Aborted` when `signal` aborts it, with
 * `UnreadableFile` / `ValidationError` for a file it cannot read, `StorageError` when an output
 * cannot be written, and `DatabaseError` for the rest.
 */
export const runPipeline = async (input: PipelineInput): Promise<PipelineResult> => {
  const exit = await Effect.runPromiseExit(pipeline(input))
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

/** One partition's connection while the file is read: its COPY stream and the rows not yet sent to it. */
interface Partition {
  readonly client: pg.PoolClient
  readonly copy: CopyIn
  readonly pending: CopyBatch
  /** Valid numbers routed here. */
  valid: number
}

const pipeline = (input: PipelineInput): Effect.Effect<PipelineResult, PipelineError> =>
  Effect.gen(function* () {
    const { flags, signal } = input
    const started = performance.now()
    const trace = (what: string) => {
      if (TRACE) process.stderr.write(`cleaning: ${what} at ${Math.round(performance.now() - started)} ms\n`)
    }
    const checkAborted = Effect.suspend(() => (signal?.aborted === true ? Effect.fail(new Aborted()) : Effect.void))
    const partitionCount = Math.max(1, Math.min(8, Math.trunc(input.partitions ?? DEFAULT_PARTITIONS)))

    // 1. The dialect, from the first characters of the file (closed early if the run fails).
    const texts = yield* Effect.acquireRelease(
      step("the cleaning run failed", async () => decodedText(await input.open(), signal)),
      (texts) => Effect.promise(() => texts.return(undefined).then(ignore, ignore))
    )
    const file = yield* step("the cleaning run failed", () =>
      sniffFile(texts, { phoneColumn: input.phoneColumn, defaultCountry: input.country })
    )

    // 2. One connection and transaction per partition.
    const clients = yield* Effect.forEach(range(partitionCount), () => pooledConnection(input.pool))
    yield* cutOnAbort(clients, signal)
    yield* checkAborted

    const run = Effect.gen(function* () {
      // 3. Each with its TEMP stage table and COPY stream; read, normalise, route each valid number
      //    to its partition's stream.
      const partitions = yield* databaseStep("could not prepare the cleaning tables", () =>
        Promise.all(clients.map(openStage))
      )
      const read = yield* Effect.tryPromise({
        try: () => loadNumbers(input, file, partitions),
        // A COPY stream that failed is the database's fault; anything else (UnreadableFile, Aborted) is passed on.
        catch: (cause) =>
          partitions.some((p) => p.copy.stream.errored !== null)
            ? toDatabaseError(cause, "could not load the numbers")
            : passedOn(cause, "the cleaning run failed")
      })
      input.onProgress?.(read.total)
      trace("file read")

      // 4. Per partition: finish the COPY, then de-duplicate and look every distinct number up once.
      const verdictQuery = verdictSql(flags, input.marker)
      const verdicts = yield* databaseStep("could not clean the numbers", () =>
        Promise.all(partitions.map((p) => judge(p, verdictQuery)))
      )
      trace("duplicates and verdicts")
      yield* checkAborted

      // 5. The cleaned list: kept numbers of every partition, merged back into file order.
      yield* step("the cleaning run failed", () => writeCleanList(clients, input.outputs.clean))
      trace("clean output")
      yield* checkAborted

      // 6. Annotated and rejects files: the file read again, each row next to its verdict.
      if (input.outputs.annotated !== undefined || input.outputs.rejects !== undefined) {
        yield* step("the cleaning run failed", () => writeAnnotations(input, file.dialect, clients))
        yield* checkAborted
      }

      // 7. main_database: the kept numbers, with this run's marker.
      let added = 0
      if (flags.includeMainDatabase) {
        const marker = input.marker.toISOString()
        const inserted = yield* databaseStep("could not add the numbers to main_database", () =>
          Promise.all(clients.map((client) => addToMainDatabase(client, marker)))
        )
        added = inserted.reduce((a, b) => a + b, 0)
        trace("main_database")
      }

      const valid = partitions.reduce((a, p) => a + p.valid, 0)
      const counts = [0, 1, 2, 3, 4].map((i) => verdicts.reduce((a, c) => a + (c[i] ?? 0), 0))
      const distinct = counts.reduce((a, b) => a + b, 0)
      return {
        total_records: read.total,
        removed_blacklist: counts[1]!,
        removed_monitor: counts[2]!,
        removed_conversion: counts[3]!,
        removed_maindatabase: counts[4]!,
        final_clean_count: counts[KEPT]!,
        removed_duplicates: valid - distinct,
        removed_invalid: read.invalid,
        phone_metadata_version: PHONE_METADATA_VERSION,
        dialect: describeDialect(file.dialect),
        added_to_main_database: added
      }
    })
    // 8. Committed when every phase succeeded (only main_database changes; the TEMP tables go away
    //    with the transactions); otherwise cut, which rolls back.
    return yield* inTransactions(clients, run)
  }).pipe(Effect.scoped)

const ignore = (): void => undefined

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

const isPipelineError = (cause: unknown): cause is PipelineError =>
  cause instanceof Aborted ||
  cause instanceof UnreadableFile ||
  cause instanceof ValidationError ||
  cause instanceof DatabaseError ||
  cause instanceof StorageError

/** The run's own errors pass on; anything else is a `DatabaseError` saying what failed. */
const passedOn = (cause: unknown, what: string): PipelineError =>
  isPipelineError(cause) ? cause : toDatabaseError(cause, what)

/** A phase of plain async code. */
const step = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, PipelineError> =>
  Effect.tryPromise({ try: f, catch: (cause) => passedOn(cause, what) })

/** A phase that only talks to the database: whatever fails in it, the database did. */
const databaseStep = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, DatabaseError> =>
  Effect.tryPromise({ try: f, catch: databaseErrorOf(what) })

/**
 * An interrupted run (worker stopping, job cancelled) stops at once: cutting the sockets makes
 * PostgreSQL abort the statements in progress and roll the transactions back, and the run's pending
 * query fails.
 */
const cutOnAbort = (
  clients: ReadonlyArray<pg.PoolClient>,
  signal: AbortSignal | undefined
): Effect.Effect<void, never, Scope.Scope> => {
  if (signal === undefined) return Effect.void
  const cut = () => {
    for (const client of clients) client.connection.stream.destroy()
  }
  return Effect.acquireRelease(
    Effect.sync(() => signal.addEventListener("abort", cut, { once: true })),
    () => Effect.sync(() => signal.removeEventListener("abort", cut))
  )
}

/** `run` inside one transaction per connection, all committed once it has succeeded. */
const inTransactions = <A, E, R>(
  clients: ReadonlyArray<pg.PoolClient>,
  run: Effect.Effect<A, E, R>
): Effect.Effect<A, E | DatabaseError, R> =>
  clients.reduceRight<Effect.Effect<A, E | DatabaseError, R>>(
    (inner, client) => committedTransaction(client, inner, "the cleaning run"),
    run
  )

/** The partition's session settings, its TEMP stage table and the COPY stream into it. */
const openStage = async (client: pg.PoolClient): Promise<Partition> => {
  await client.query(SESSION_SETTINGS_SQL)
  await client.query(CREATE_STAGE_SQL)
  return { client, copy: new CopyIn(client, COPY_STAGE_SQL), pending: new CopyBatch(), valid: 0 }
}

/** The partition of a canonical key: by its last two digits, which are evenly spread. */
const partitionOf = (e164: string, partitions: number): number => {
  if (partitions === 1) return 0
  const n = e164.length
  return ((e164.charCodeAt(n - 2) - 48) * 10 + (e164.charCodeAt(n - 1) - 48)) % partitions
}

/**
 * The first pass: every record's phone cell normalised, each valid number COPYed into its
 * partition's stage (with backpressure), progress reported. The data rows and the invalid ones.
 */
const loadNumbers = async (
  input: PipelineInput,
  file: SniffedFile,
  partitions: ReadonlyArray<Partition>
): Promise<{ total: number; invalid: number }> => {
  const { signal } = input
  const { dialect } = file
  const partitionCount = partitions.length
  const country = input.country
  const countryIndex = dialect.countryIndex
  const phoneIndex = dialect.phoneIndex
  const hintCache = new Map<string, string | undefined>()
  const hintOf = (cell: string | undefined): string | undefined => {
    if (cell === undefined) return country
    let hint = hintCache.get(cell)
    if (hint === undefined && !hintCache.has(cell)) {
      hint = countryHintOf(cell, country)
      if (hintCache.size < 10_000) hintCache.set(cell, hint)
    }
    return hint
  }
  // Which numbers may have been seen before in this file: "no" is certain, "maybe" (every real
  // repeat, plus ~0.02 % false alarms at 1M rows, ~0.6 % at 5M) flags the row for the exact check
  // in SQL (`DUPLICATES_SQL`), which then only looks at flagged rows instead of grouping all of them.
  const seen = new PhoneKeyFilter()
  let invalid = 0
  let rowsRead = 0
  let nextProgress = PROGRESS_EVERY_ROWS
  const onRecord = (cells: Array<string>, seq: number) => {
    const parsed = normalizePhone(cells[phoneIndex] ?? "", countryIndex >= 0 ? hintOf(cells[countryIndex]) : country)
    if (parsed.ok) {
      const p = partitions[partitionOf(parsed.e164, partitionCount)]!
      p.pending.add(seq, parsed.e164, seen.markAndTest(parsed.e164))
      p.valid++
    } else {
      invalid++
    }
    rowsRead = seq + 1
  }
  const afterChunk = (): Promise<void> | undefined => {
    if (signal?.aborted) throw new Aborted()
    if (input.onProgress !== undefined && rowsRead >= nextProgress) {
      nextProgress = rowsRead + PROGRESS_EVERY_ROWS
      input.onProgress(rowsRead)
    }
    let waiting: Array<Promise<void>> | undefined
    for (const p of partitions) {
      if (p.pending.length < COPY_BATCH_BYTES) continue
      const w = p.copy.write(p.pending.take())
      if (w !== undefined) (waiting ??= []).push(w)
    }
    return waiting === undefined ? undefined : Promise.all(waiting).then(() => undefined)
  }
  const total = await forEachDataRecord(file.rest, file.sample, dialect, phoneIndex, onRecord, afterChunk)
  return { total, invalid }
}

/** The partition's COPY finished, its duplicates found and its verdicts made; the count of each verdict. */
const judge = async (p: Partition, verdictQuery: string): Promise<Array<number>> => {
  if (p.pending.length > 0) await p.copy.write(p.pending.take())
  await p.copy.end()
  await p.client.query(ANALYZE_STAGE_SQL)
  await p.client.query(DUPLICATES_SQL)
  await p.client.query(NO_HASH_JOINS_SQL)
  await p.client.query(verdictQuery)
  const counts = await p.client.query<{ verdict: number; n: number }>(VERDICT_COUNTS_SQL)
  const byVerdict = [0, 0, 0, 0, 0]
  for (const row of counts.rows) byVerdict[row.verdict] = row.n
  return byVerdict
}

/** The kept numbers of every partition, merged by seq straight into the output as bytes. */
const writeCleanList = async (clients: ReadonlyArray<pg.PoolClient>, writer: FileWriter): Promise<void> => {
  const clean = new ByteOutput(writer)
  const streams = clients.map((client) => new CopyOutRows(client, COPY_KEPT_SQL))
  await mergeBySeq(streams, (row) => clean.add(row.chunk, row.starts[row.index]!, row.ends[row.index]!))
  await clean.flush()
}

const isUniqueViolation = (cause: unknown): boolean =>
  typeof cause === "object" && cause !== null && "code" in cause && cause.code === "23505"

/** The partition's kept numbers added to main_database (see `MAIN_DATABASE_INSERT_SQL`); how many. */
const addToMainDatabase = async (client: pg.PoolClient, marker: string): Promise<number> => {
  await client.query(`SAVEPOINT ${MAIN_DATABASE_SAVEPOINT}`)
  let result: pg.QueryResult
  try {
    result = await client.query(MAIN_DATABASE_INSERT_SQL, [marker])
  } catch (cause) {
    if (!isUniqueViolation(cause)) throw cause
    await client.query(`ROLLBACK TO SAVEPOINT ${MAIN_DATABASE_SAVEPOINT}`)
    result = await client.query(MAIN_DATABASE_INSERT_IF_ABSENT_SQL, [marker])
  }
  await client.query(`RELEASE SAVEPOINT ${MAIN_DATABASE_SAVEPOINT}`)
  return result.rowCount ?? 0
}
