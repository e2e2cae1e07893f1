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
 * drop at the monitor step, as the original computed it (ORIGINAL.md §3.2). Duplicates (every
 * occurrence after the first) and invalid numbers have their own counts, so
 * `total_records = final_clean_count + removed_*` always holds.
 *
 * Exactly once. The numbers a run adds to `main_database` carry the run's `marker` as
 * `timestamp_created` (the file's `processing_started_at`). A run that is repeated — a retry after a
 * crash, a worker killed after some partitions committed — ignores rows with its own marker when it
 * looks numbers up in `main_database`, so it computes the same result as an uninterrupted run and
 * adds nothing twice. Everything else lives in TEMP tables of the run's own transactions.
 *
 * Memory. Rows travel as bytes (`CopyBatch` in, `CopyOutRows` / `ByteOutput` out): no string per
 * row, so a million rows of garbage never leaves V8's young generation and the heap stays small.
 *
 * Optional outputs (annotated file, rejects file) need every row's verdict next to its original
 * cells: a second read of the file, merged by seq with the verdicts streamed from each partition.
 *
 * `OPTIMIZER_TRACE_CLEANING=1` prints the phases' times on stderr (the benchmark uses it).
 */
import type pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
import type { Readable, Writable } from "node:stream"
import { PhoneKeyFilter } from "../phone/PhoneKeyFilter.ts"
import { normalizePhone, PHONE_METADATA_VERSION } from "../phone/PhoneNumber.ts"
import { DatabaseError, StorageError, UnreadableFile, ValidationError } from "../platform/Errors.ts"
import type { FileWriter } from "../platform/FileStore.ts"
import {
  countryHintOf,
  CsvReader,
  csvLine,
  describeDialect,
  isEmptyRecord,
  sniffDialect,
  type Dialect
} from "./CsvDialect.ts"

export interface CleaningFlags {
  readonly includeBlacklist: boolean
  readonly includeMonitor: boolean
  readonly includeConversion: boolean
  readonly includeMainDatabase: boolean
}

/** The original's stats keys plus the new ones (SPEC.md §4.5). */
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

export interface PipelineInput {
  /** Opens the file's bytes; called once, or twice when an annotated or rejects file is written. */
  readonly open: () => Promise<AsyncIterable<Uint8Array>>
  readonly flags: CleaningFlags
  /** ISO2 default country for national numbers (rows with a country cell use theirs). */
  readonly country?: string | undefined
  /** Header name or 1-based position; found by name or content when absent. */
  readonly phoneColumn?: string | undefined
  /** The run's identity in `main_database` (see the module comment); millisecond precision. */
  readonly marker: Date
  readonly outputs: {
    readonly clean: FileWriter
    readonly rejects?: FileWriter | undefined
    readonly annotated?: FileWriter | undefined
  }
  /** The `pg` pool (PgBulk) the partitions' connections come from. */
  readonly pool: pg.Pool
  readonly partitions?: number
  readonly signal?: AbortSignal | undefined
  /** Rows read so far; called every few tens of thousands of rows. */
  readonly onProgress?: ((rowsRead: number) => void) | undefined
}

export const DEFAULT_PARTITIONS = 2
/** Decoded characters read before the dialect is decided. */
const SAMPLE_CHARS = 64 * 1024
/** COPY data gathered per partition before it is handed to the connection. */
const COPY_BATCH_BYTES = 64 * 1024
const OUTPUT_BATCH_CHARS = 64 * 1024
const OUTPUT_BATCH_BYTES = 64 * 1024
const PROGRESS_EVERY_ROWS = 50_000

/** Verdict codes stored per distinct number (SQL) and their reasons in the optional outputs. */
const KEPT = 0
const DUPLICATE = 5
const REASONS: ReadonlyArray<string> = ["", "BLACKLIST", "MONITOR", "CONVERSION", "MAIN_DATABASE", "DUPLICATE"]
const INVALID_REASON = "INVALID_PHONE_NUMBER"

class Aborted extends Error {
  constructor() {
    super("the cleaning run was interrupted")
  }
}

const databaseError = (what: string, cause: unknown): DatabaseError =>
  cause instanceof DatabaseError
    ? cause
    : new DatabaseError({ message: `${what}: ${(cause as Error)?.message ?? String(cause)}`, cause })

// ---------------------------------------------------------------------------------------------
// Reading the file

/** The file as text: BOM dropped, bytes that are not UTF-8 replaced (as the original decoded); binary files refused. */
async function* decodedText(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: false })
  let first = true
  for await (const chunk of source) {
    if (signal?.aborted) throw new Aborted()
    if (first && chunk.length >= 2) {
      first = false
      if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff)) {
        throw new UnreadableFile({ message: "the file is UTF-16 text: save it as UTF-8 CSV" })
      }
    }
    if (chunk.indexOf(0) !== -1) {
      throw new UnreadableFile({ message: "the file is not a CSV text file (it contains binary data)" })
    }
    const text = decoder.decode(chunk, { stream: true })
    if (text !== "") yield text
  }
  const tail = decoder.decode()
  if (tail !== "") yield tail
}

/**
 * Calls `onRecord(cells, seq)` for each data record (header skipped, empty records skipped), in
 * file order. Both passes go through here, so their seq numbers agree.
 */
const forEachDataRecord = async (
  texts: AsyncIterable<string>,
  prefix: string,
  dialect: Dialect,
  phoneIndex: number,
  onRecord: (cells: Array<string>, seq: number) => void,
  afterChunk: () => Promise<void> | undefined
): Promise<number> => {
  const reader = new CsvReader(dialect)
  let skipHeader = dialect.hasHeader
  let seq = 0
  const handle = (cells: Array<string>) => {
    if (skipHeader) {
      skipHeader = false
      return
    }
    const phone = cells[phoneIndex]
    // Only a record whose phone cell is empty or starts blank can be an empty record (checked cheaply first).
    if ((phone === undefined || phone.length === 0 || phone.charCodeAt(0) <= 32) && isEmptyRecord(cells)) return
    onRecord(cells, seq++)
  }
  if (prefix !== "") {
    reader.feed(prefix, handle)
    const waiting = afterChunk()
    if (waiting !== undefined) await waiting
  }
  for await (const text of texts) {
    reader.feed(text, handle)
    const waiting = afterChunk()
    if (waiting !== undefined) await waiting
  }
  reader.end(handle)
  const waiting = afterChunk()
  if (waiting !== undefined) await waiting
  return seq
}

// ---------------------------------------------------------------------------------------------
// COPY streams

/**
 * COPY rows `seq \t phone \t repeat` written straight into bytes: no string per row, so the
 * garbage of a million rows stays in the young generation and the heap does not grow with the file.
 */
class CopyBatch {
  private full: Array<Buffer> = []
  private buffer = Buffer.allocUnsafe(COPY_BATCH_BYTES)
  private position = 0
  /** Bytes gathered (all buffers). */
  length = 0

  add(seq: number, e164: string, repeat: boolean): void {
    // A row is at most 10 + 1 + 64 + 3 bytes; start a new buffer when it might not fit.
    if (this.position + 96 > this.buffer.length) {
      this.full.push(this.buffer.subarray(0, this.position))
      this.buffer = Buffer.allocUnsafe(COPY_BATCH_BYTES)
      this.position = 0
    }
    const b = this.buffer
    let p = this.position
    let digits = 1
    for (let n = seq; n >= 10; n = (n / 10) | 0) digits++
    let n = seq
    for (let i = p + digits - 1; i >= p; i--) {
      b[i] = 48 + (n % 10)
      n = (n / 10) | 0
    }
    p += digits
    b[p++] = 9
    for (let i = 0; i < e164.length; i++) b[p++] = e164.charCodeAt(i)
    b[p++] = 9
    b[p++] = repeat ? 116 : 102 // t / f
    b[p++] = 10
    this.length += p - this.position
    this.position = p
  }

  /** The rows gathered so far, as one buffer that now belongs to the caller; the batch starts over. */
  take(): Buffer {
    const last = this.buffer.subarray(0, this.position)
    const taken = this.full.length === 0 ? last : Buffer.concat([...this.full, last])
    this.full = []
    this.buffer = Buffer.allocUnsafe(COPY_BATCH_BYTES)
    this.position = 0
    this.length = 0
    return taken
  }
}

/** A COPY … FROM STDIN stream fed with bytes, with backpressure and its error kept. */
class CopyIn {
  private failure: unknown
  private readonly done: Promise<void>
  readonly stream: Writable

  constructor(client: pg.PoolClient, sql: string) {
    this.stream = client.query(copyFrom(sql))
    this.done = new Promise<void>((resolve, reject) => {
      this.stream.on("finish", () => resolve())
      this.stream.on("error", (error) => {
        this.failure ??= error
        reject(error)
      })
    })
    this.done.catch(() => undefined)
  }

  /** Undefined when the data was accepted at once; a promise to await when the connection is behind. */
  write(data: Uint8Array): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    if (this.stream.write(data)) return undefined
    return new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.stream.off("error", onError)
        resolve()
      }
      const onError = (error: unknown) => {
        this.stream.off("drain", onDrain)
        reject(error)
      }
      this.stream.once("drain", onDrain)
      this.stream.once("error", onError)
    })
  }

  end(): Promise<void> {
    this.stream.end()
    return this.done
  }
}

/**
 * Rows of a `COPY (SELECT seq, …) TO STDOUT` in order, a chunk at a time, as positions in the
 * chunk's bytes (no string per row): `seq` parsed, the rest of the line — after the first tab,
 * newline included — between `starts[i]` and `ends[i]`.
 */
class CopyOutRows {
  private readonly iterator: AsyncIterator<Buffer>
  private rest: Buffer | undefined
  private ended = false
  chunk: Buffer = Buffer.alloc(0)
  seqs: Array<number> = []
  starts: Array<number> = []
  ends: Array<number> = []
  index = 0

  constructor(client: pg.PoolClient, sql: string) {
    const stream: Readable = client.query(copyTo(sql))
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  }

  /** Loads the next rows; false when the stream is exhausted. */
  async fill(): Promise<boolean> {
    this.seqs = []
    this.starts = []
    this.ends = []
    this.index = 0
    while (this.seqs.length === 0) {
      if (this.ended) return false
      const next = await this.iterator.next()
      let chunk: Buffer
      if (next.done === true) {
        this.ended = true
        if (this.rest === undefined || this.rest.length === 0) return false
        chunk = Buffer.concat([this.rest, Buffer.from("\n")])
        this.rest = undefined
      } else {
        chunk = this.rest === undefined ? next.value : Buffer.concat([this.rest, next.value])
      }
      let position = 0
      for (;;) {
        const lineEnd = chunk.indexOf(10, position)
        if (lineEnd === -1) break
        let seq = 0
        let i = position
        for (; chunk[i] !== 9; i++) seq = seq * 10 + (chunk[i]! - 48)
        this.seqs.push(seq)
        this.starts.push(i + 1)
        this.ends.push(lineEnd + 1)
        position = lineEnd + 1
      }
      this.chunk = chunk
      this.rest = next.done === true || position === chunk.length ? undefined : chunk.subarray(position)
    }
    return true
  }

  /** The current row's value as text (without the newline). */
  text(): string {
    return this.chunk.toString("latin1", this.starts[this.index]!, this.ends[this.index]! - 1)
  }

  async close(): Promise<void> {
    // Reads what is left, so the connection is ready for its next statement.
    while (!this.ended) {
      const next = await this.iterator.next()
      if (next.done === true) this.ended = true
    }
  }
}

/** The rows of several seq-ordered streams, merged in seq order; `onRow` reads the stream's current row. */
const mergeBySeq = async (
  streams: ReadonlyArray<CopyOutRows>,
  onRow: (stream: CopyOutRows) => Promise<void> | undefined
): Promise<void> => {
  const live: Array<CopyOutRows> = []
  for (const s of streams) if (await s.fill()) live.push(s)
  while (live.length > 0) {
    let pick = 0
    let pickSeq = live[0]!.seqs[live[0]!.index]!
    for (let i = 1; i < live.length; i++) {
      const s = live[i]!
      const seq = s.seqs[s.index]!
      if (seq < pickSeq) {
        pick = i
        pickSeq = seq
      }
    }
    const stream = live[pick]!
    const waiting = onRow(stream)
    if (waiting !== undefined) await waiting
    stream.index++
    if (stream.index >= stream.seqs.length && !(await stream.fill())) live.splice(pick, 1)
  }
}

/** Bytes gathered and handed to a writer ~64 KiB at a time (each batch a buffer of its own). */
class ByteOutput {
  private buffer = Buffer.allocUnsafe(OUTPUT_BATCH_BYTES)
  private position = 0
  private readonly writer: FileWriter
  constructor(writer: FileWriter) {
    this.writer = writer
  }
  add(source: Buffer, start: number, end: number): Promise<void> | undefined {
    const length = end - start
    if (this.position + length > this.buffer.length) {
      const full = this.buffer.subarray(0, this.position)
      this.buffer = Buffer.allocUnsafe(Math.max(OUTPUT_BATCH_BYTES, length))
      this.position = 0
      source.copy(this.buffer, 0, start, end)
      this.position = length
      return this.writer.write(full)
    }
    source.copy(this.buffer, this.position, start, end)
    this.position += length
    return undefined
  }
  flush(): Promise<void> {
    const rest = this.buffer.subarray(0, this.position)
    this.buffer = Buffer.allocUnsafe(OUTPUT_BATCH_BYTES)
    this.position = 0
    return rest.length === 0 ? Promise.resolve() : this.writer.write(rest)
  }
}

/** Buffers output lines and hands them to a writer in batches. */
class OutputBuffer {
  private text = ""
  private readonly writer: FileWriter
  constructor(writer: FileWriter) {
    this.writer = writer
  }
  add(line: string): Promise<void> | undefined {
    this.text += line
    if (this.text.length < OUTPUT_BATCH_CHARS) return undefined
    const text = this.text
    this.text = ""
    return this.writer.write(text)
  }
  flush(): Promise<void> {
    const text = this.text
    this.text = ""
    return text === "" ? Promise.resolve() : this.writer.write(text)
  }
}

// ---------------------------------------------------------------------------------------------
// SQL

const literalTimestamp = (marker: Date): string => {
  const iso = marker.toISOString()
  // Built from a Date, so it has this exact shape; checked anyway because it is inlined in SQL.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(iso)) throw new Error(`bad marker ${iso}`)
  return `'${iso}'::timestamptz`
}

/**
 * The rows that repeat a number seen earlier in the file. Only rows the filter flagged as possible
 * repeats are checked, each against the rows before it: a hash of the few flagged rows probed by
 * one scan of the stage, instead of grouping every row.
 */
const DUPLICATES_SQL = `CREATE TEMP TABLE cleaning_duplicate ON COMMIT DROP AS
  SELECT DISTINCT r.seq FROM cleaning_stage r JOIN cleaning_stage t ON t.phone = r.phone AND t.seq < r.seq
  WHERE r.repeat`

/**
 * One CTAS: first occurrences and the first list that has each, in the original's order. Run with
 * hash joins off: the planner then sorts the file's numbers once and merges them with each list's
 * primary-key index in order (or probes the index, for a list far larger than the file), which
 * measured 25-35 % faster than hashing a million-row blacklist per partition.
 */
const verdictSql = (flags: CleaningFlags, marker: Date): string => {
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

/** The partition of a canonical key: by its last two digits, which are evenly spread. */
const partitionOf = (e164: string, partitions: number): number => {
  if (partitions === 1) return 0
  const n = e164.length
  return ((e164.charCodeAt(n - 2) - 48) * 10 + (e164.charCodeAt(n - 1) - 48)) % partitions
}

// ---------------------------------------------------------------------------------------------
// The run

interface Partition {
  readonly client: pg.PoolClient
  copy: CopyIn | undefined
  pending: CopyBatch
  valid: number
  counts: Array<number>
  inTransaction: boolean
  broken: boolean
}

const TRACE = process.env.OPTIMIZER_TRACE_CLEANING === "1"

export const runPipeline = async (input: PipelineInput): Promise<PipelineResult> => {
  const { flags, signal } = input
  const started = performance.now()
  const trace = (what: string) => {
    if (TRACE) process.stderr.write(`cleaning: ${what} at ${Math.round(performance.now() - started)} ms\n`)
  }
  const partitionCount = Math.max(1, Math.min(8, Math.trunc(input.partitions ?? DEFAULT_PARTITIONS)))
  const checkAborted = () => {
    if (signal?.aborted) throw new Aborted()
  }

  // 1. The dialect, from the first characters of the file.
  const source = await input.open()
  const texts = decodedText(source, signal)[Symbol.asyncIterator]()
  let sample = ""
  while (sample.length < SAMPLE_CHARS) {
    const next = await texts.next()
    if (next.done === true) break
    sample += next.value
  }
  const sniffed = sniffDialect(sample, { phoneColumn: input.phoneColumn, defaultCountry: input.country })
  if (sniffed instanceof ValidationError) {
    await texts.return?.(undefined)
    throw sniffed
  }
  const dialect = sniffed
  // The rest of the file (nothing when the sample took all of it: a finished generator stays finished).
  const rest: AsyncIterable<string> = { [Symbol.asyncIterator]: () => texts }

  // 2. One connection and transaction per partition, each with its TEMP stage table and COPY stream.
  const partitions: Array<Partition> = []
  const release = (error: boolean) => {
    signal?.removeEventListener("abort", cutConnections)
    for (const p of partitions) {
      p.client.off("error", ignoreClientError)
      p.client.release(error || p.broken ? true : undefined)
    }
    partitions.length = 0
  }
  // An interrupted run (worker stopping, job cancelled) stops at once: closing the sockets makes
  // PostgreSQL abort the statements in progress and roll the transactions back.
  const cutConnections = () => {
    for (const p of partitions) {
      p.broken = true
      ;(p.client as unknown as { connection?: { stream?: { destroy: () => void } } }).connection?.stream?.destroy()
    }
  }
  signal?.addEventListener("abort", cutConnections, { once: true })
  try {
    for (let i = 0; i < partitionCount; i++) {
      const client = await input.pool.connect().catch((cause: unknown) => {
        throw databaseError("could not connect to the database", cause)
      })
      // A connection lost while held (or cut on interruption) emits "error" on the client: without a
      // listener that would crash the process. The failure reaches the run through its pending query.
      client.on("error", ignoreClientError)
      partitions.push({
        client,
        copy: undefined,
        pending: new CopyBatch(),
        valid: 0,
        counts: [],
        inTransaction: false,
        broken: false
      })
    }
    await Promise.all(
      partitions.map(async (p) => {
        p.broken = true
        await p.client.query("BEGIN")
        p.inTransaction = true
        // Hash tables of a million rows; no JIT compile for a statement that runs once.
        await p.client.query("SET LOCAL work_mem = '128MB'; SET LOCAL jit = off")
        await p.client.query(
          "CREATE TEMP TABLE cleaning_stage (seq integer NOT NULL, phone text NOT NULL, repeat boolean NOT NULL) ON COMMIT DROP"
        )
        p.copy = new CopyIn(p.client, "COPY cleaning_stage (seq, phone, repeat) FROM STDIN")
        p.broken = false
      })
    ).catch((cause: unknown) => {
      throw databaseError("could not prepare the cleaning tables", cause)
    })

    // 3. Read, normalise, route each valid number to its partition's COPY stream.
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
      checkAborted()
      if (input.onProgress !== undefined && rowsRead >= nextProgress) {
        nextProgress = rowsRead + PROGRESS_EVERY_ROWS
        input.onProgress(rowsRead)
      }
      let waiting: Array<Promise<void>> | undefined
      for (const p of partitions) {
        if (p.pending.length < COPY_BATCH_BYTES) continue
        const w = p.copy!.write(p.pending.take())
        if (w !== undefined) (waiting ??= []).push(w)
      }
      return waiting === undefined ? undefined : Promise.all(waiting).then(() => undefined)
    }
    const total = await forEachDataRecord(rest, sample, dialect, phoneIndex, onRecord, afterChunk).catch(
      (cause: unknown) => {
        // A COPY stream that failed is the database's fault; anything else (UnreadableFile, Aborted) is passed on.
        if (partitions.some((p) => p.copy !== undefined && p.copy.stream.errored)) {
          for (const p of partitions) p.broken = true
          throw databaseError("could not load the numbers", cause)
        }
        throw cause
      }
    )
    input.onProgress?.(total)
    trace("file read")

    // 4. Per partition: finish the COPY, then de-duplicate and look every distinct number up once.
    const verdictQuery = verdictSql(flags, input.marker)
    await Promise.all(
      partitions.map(async (p) => {
        p.broken = true
        if (p.pending.length > 0) await p.copy!.write(p.pending.take())
        await p.copy!.end()
        // A small sample is enough for the planner to see a million mostly distinct numbers.
        await p.client.query("SET LOCAL default_statistics_target = 10; ANALYZE cleaning_stage")
        await p.client.query(DUPLICATES_SQL)
        await p.client.query("SET LOCAL enable_hashjoin = off")
        await p.client.query(verdictQuery)
        const counts = await p.client.query<{ verdict: number; n: number }>(
          "SELECT verdict, count(*)::int AS n FROM cleaning_verdict GROUP BY verdict"
        )
        p.counts = [0, 0, 0, 0, 0]
        for (const row of counts.rows) p.counts[row.verdict] = row.n
        p.broken = false
      })
    ).catch((cause: unknown) => {
      throw databaseError("could not clean the numbers", cause)
    })
    trace("duplicates and verdicts")
    checkAborted()

    // 5. The cleaned list: kept numbers of every partition, merged back into file order.
    const clean = new ByteOutput(input.outputs.clean)
    await withBroken(partitions, async () => {
      const streams = partitions.map(
        (p) =>
          new CopyOutRows(
            p.client,
            "COPY (SELECT seq, phone FROM cleaning_verdict WHERE verdict = 0 ORDER BY seq) TO STDOUT"
          )
      )
      await mergeBySeq(streams, (row) => clean.add(row.chunk, row.starts[row.index]!, row.ends[row.index]!))
      await clean.flush()
    })
    trace("clean output")
    checkAborted()

    // 6. Annotated and rejects files: the file read again, each row next to its verdict.
    if (input.outputs.annotated !== undefined || input.outputs.rejects !== undefined) {
      await writeAnnotations(input, dialect, partitions, signal)
      checkAborted()
    }

    // 7. main_database: the kept numbers, with this run's marker, in index order (about twice as fast as
    //    random order). None of them is in main_database (that is what kept means), so a plain INSERT is
    //    tried first: ~30 % cheaper than ON CONFLICT's speculative insertion. A conflict — a concurrent
    //    writer, or this run's own rows from an attempt that died after committing — rolls back to the
    //    savepoint and the ON CONFLICT DO NOTHING form finishes the job.
    let added = 0
    if (flags.includeMainDatabase) {
      const insert = `INSERT INTO main_database (custom_variable_1, timestamp_created)
        SELECT phone, $1::timestamptz FROM cleaning_verdict WHERE verdict = 0 ORDER BY phone COLLATE "C"`
      const marker = [input.marker.toISOString()]
      const results = await Promise.all(
        partitions.map(async (p) => {
          p.broken = true
          await p.client.query("SAVEPOINT main_database_insert")
          let result: pg.QueryResult
          try {
            result = await p.client.query(insert, marker)
          } catch (cause) {
            if ((cause as { code?: unknown }).code !== "23505") throw cause
            await p.client.query("ROLLBACK TO SAVEPOINT main_database_insert")
            result = await p.client.query(`${insert} ON CONFLICT (custom_variable_1) DO NOTHING`, marker)
          }
          await p.client.query("RELEASE SAVEPOINT main_database_insert")
          p.broken = false
          return result.rowCount ?? 0
        })
      ).catch((cause: unknown) => {
        throw databaseError("could not add the numbers to main_database", cause)
      })
      added = results.reduce((a, b) => a + b, 0)
      trace("main_database")
    }

    // 8. Commit (only main_database changes; the temp tables go away with the transactions).
    await Promise.all(
      partitions.map(async (p) => {
        p.broken = true
        await p.client.query("COMMIT")
        p.inTransaction = false
        p.broken = false
      })
    ).catch((cause: unknown) => {
      throw databaseError("could not commit the cleaning run", cause)
    })

    const valid = partitions.reduce((a, p) => a + p.valid, 0)
    const counts = [0, 1, 2, 3, 4].map((i) => partitions.reduce((a, p) => a + (p.counts[i] ?? 0), 0))
    const distinct = counts.reduce((a, b) => a + b, 0)
    release(false)
    return {
      total_records: total,
      removed_blacklist: counts[1]!,
      removed_monitor: counts[2]!,
      removed_conversion: counts[3]!,
      removed_maindatabase: counts[4]!,
      final_clean_count: counts[KEPT]!,
      removed_duplicates: valid - distinct,
      removed_invalid: invalid,
      phone_metadata_version: PHONE_METADATA_VERSION,
      dialect: describeDialect(dialect),
      added_to_main_database: added
    }
  } catch (cause) {
    await texts.return?.(undefined).catch(() => undefined)
    // A connection in an unknown state (mid-COPY, failed statement) is destroyed, which rolls back.
    await Promise.all(
      partitions.map(async (p) => {
        if (!p.broken && p.inTransaction) {
          await p.client.query("ROLLBACK").catch(() => {
            p.broken = true
          })
        }
      })
    )
    release(true)
    if (cause instanceof Aborted) throw cause
    if (
      cause instanceof UnreadableFile ||
      cause instanceof ValidationError ||
      cause instanceof DatabaseError ||
      cause instanceof StorageError
    ) {
      throw cause
    }
    throw databaseError("the cleaning run failed", cause)
  }
}

const ignoreClientError = (): void => undefined

/** Runs `f`, marking the partitions' connections unusable if it fails half-way through a COPY out. */
const withBroken = async (partitions: ReadonlyArray<Partition>, f: () => Promise<void>): Promise<void> => {
  for (const p of partitions) p.broken = true
  await f()
  for (const p of partitions) p.broken = false
}

/** The second pass: original cells + verdict for the annotated file, removed rows for the rejects file. */
const writeAnnotations = async (
  input: PipelineInput,
  dialect: Dialect,
  partitions: ReadonlyArray<Partition>,
  signal: AbortSignal | undefined
): Promise<void> => {
  const annotated = input.outputs.annotated === undefined ? undefined : new OutputBuffer(input.outputs.annotated)
  const rejects = input.outputs.rejects === undefined ? undefined : new OutputBuffer(input.outputs.rejects)
  const width = dialect.columns.length
  await annotated?.add(csvLine([...dialect.columns, "phone_e164", "status", "reason"]))
  await rejects?.add(csvLine(["row", "phone", "phone_e164", "reason"]))

  await withBroken(partitions, async () => {
    const streams = partitions.map(
      (p) =>
        new CopyOutRows(
          p.client,
          `COPY (SELECT s.seq, coalesce(v.verdict, ${DUPLICATE}), s.phone
                 FROM cleaning_stage s LEFT JOIN cleaning_verdict v ON v.seq = s.seq ORDER BY s.seq) TO STDOUT`
        )
    )
    const live: Array<CopyOutRows> = []
    for (const s of streams) if (await s.fill()) live.push(s)
    let pendingWaits: Array<Promise<void>> = []
    /** The verdict of row `seq` (verdict code + "\t" + phone), or undefined when the row was invalid. */
    const verdictOf = (seq: number): string | undefined => {
      for (const s of live) {
        if (s.index < s.seqs.length && s.seqs[s.index] === seq) {
          const value = s.text()
          s.index++
          return value
        }
      }
      return undefined
    }
    const refill = async () => {
      for (let i = live.length - 1; i >= 0; i--) {
        const s = live[i]!
        if (s.index >= s.seqs.length && !(await s.fill())) live.splice(i, 1)
      }
    }
    const onRecord = (cells: Array<string>, seq: number) => {
      const found = verdictOf(seq)
      let verdict: number
      let phone: string
      if (found === undefined) {
        verdict = -1
        phone = ""
      } else {
        const tab = found.indexOf("\t")
        verdict = Number(found.slice(0, tab))
        phone = found.slice(tab + 1)
      }
      const reason = verdict < 0 ? INVALID_REASON : REASONS[verdict]!
      if (annotated !== undefined) {
        const row = cells.length >= width ? cells : [...cells, ...new Array<string>(width - cells.length).fill("")]
        const w = annotated.add(csvLine([...row, phone, verdict === KEPT ? "kept" : "removed", reason]))
        if (w !== undefined) pendingWaits.push(w)
      }
      if (rejects !== undefined && verdict !== KEPT) {
        const w = rejects.add(csvLine([String(seq + 1), cells[dialect.phoneIndex] ?? "", phone, reason]))
        if (w !== undefined) pendingWaits.push(w)
      }
    }
    const afterChunk = async () => {
      if (signal?.aborted) throw new Aborted()
      const waits = pendingWaits
      pendingWaits = []
      await Promise.all(waits)
    }
    const source = await input.open()
    const texts = decodedText(source, signal)
    await forEachDataRecordWithRefill(texts, dialect, onRecord, afterChunk, live, refill)
    await annotated?.flush()
    await rejects?.flush()
    for (const s of streams) await s.close()
  })
}

/**
 * Like `forEachDataRecord`, but the records of a chunk are gathered first, so the verdict streams
 * can be refilled between records without making the CSV reader's callback asynchronous.
 */
const forEachDataRecordWithRefill = async (
  texts: AsyncIterable<string>,
  dialect: Dialect,
  onRecord: (cells: Array<string>, seq: number) => void,
  afterChunk: () => Promise<void>,
  live: ReadonlyArray<CopyOutRows>,
  refill: () => Promise<void>
): Promise<void> => {
  const gathered: Array<{ cells: Array<string>; seq: number }> = []
  const drain = async () => {
    for (const { cells, seq } of gathered) {
      // A row's verdict is in a partition's current batch, or in its next one.
      if (live.some((s) => s.index >= s.seqs.length)) await refill()
      onRecord(cells, seq)
    }
    gathered.length = 0
    await afterChunk()
  }
  await forEachDataRecord(
    texts,
    "",
    dialect,
    dialect.phoneIndex,
    (cells, seq) => {
      gathered.push({ cells, seq })
    },
    () => drain()
  )
}
