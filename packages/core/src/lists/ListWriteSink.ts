/**
 * A list write of any size, row by row (docs/lists.md, "Bulk writes" and "Large writes"). Each row
 * goes straight into a `COPY` on a staging table of its lane's open batch (LaneLog.ts: the lanes),
 * so no batch is ever held in memory. Every `LIST_BATCH_ROWS` rows of a lane the batch's COPY ends
 * and its apply statement (ListsSql.ts) runs and commits — while the lane's next batch is already
 * being copied on a second connection, so normalising and staging overlap the database's work.
 *
 * A large write also reads a filter of the listed numbers (ListedFilter.ts) and stages each number
 * it then writes with `fresh` = the filter has never seen it (every number the sink stages is added
 * to the filter too) — or, in the blacklist and the monitor list, keeps a fresh number aside for
 * `directCopy`. Each batch, holding its lane's lock, asks the lane's versions (`LaneVersions`) whether
 * it may trust those marks: its own versions are known, the others' numbers come from the log —
 * those rows are probed after all and the numbers join the filter — and a version that is neither
 * makes the lane untrusted for the rest of the write (every number probed, as without the filter).
 */
import type pg from "pg"
import { CopyIn, copyChunks, escapeCopy } from "../platform/CopyText.ts"
import { BlockPool, KeyOrderedLines } from "./KeyOrderedLines.ts"
import { LaneVersions, LIST_WRITE_LANES, laneOf, logStagedWrites } from "./LaneLog.ts"
import { ApplyGate, FILTER_MIN_ROWS, ListedFilter } from "./ListedFilter.ts"
import { addCounts, emptyCounts, type ApplyCounts, type ListEntry, type ListName } from "./ListSchemas.ts"
import {
  applyResult,
  applyStatementFor,
  DIRECT_AUDIT_COPY,
  DIRECT_STAGE_COPY,
  directCopy,
  STAGE_COPY,
  STAGE_DDL,
  type ApplyRow,
  type ConflictPolicy,
  type StickyGuard
} from "./ListsSql.ts"
import { PhoneSet } from "./PhoneSet.ts"
import { SinkConnections } from "./SinkConnections.ts"
import { createdAt, directLine, stageLine } from "./StageLines.ts"

/** Rows per COPY + transaction: big enough to amortise the statement, small enough to keep memory flat. */
export const LIST_BATCH_ROWS = 50_000

/**
 * Staging lines are encoded as they come into a Buffer of this many bytes, handed to the COPY when
 * full. Kept as strings until then (a rope of ~1,000 cons-strings per 64 Ki characters), they
 * outlived the young generation's collections in a write fed slowly, as the HLR pass feeds it, and
 * were promoted: garbage that only a full collection frees (docs/hlr.md, "Performance").
 */
const WRITE_BYTES = 32 * 1024

export interface BatchOptions {
  readonly actor: string
  readonly conflict: ConflictPolicy
  readonly guard: StickyGuard
  /** Rows per batch (default `LIST_BATCH_ROWS`). */
  readonly batchRows?: number
}

/**
 * Receives a list write row by row (see the top of this file). Closing it (`ListWriteSink.close`)
 * before `finish` resolves drops the batches not yet committed.
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
 * For tests only (not exported by the package): what list writes did without and with a filter of
 * listed numbers, added up as each write finishes (a few additions per write, none per row).
 * `unfilteredRows`: rows written before the write's filter was in place, or by a write that never
 * read one — every one of them probed by its batch's plan; `filtered`: writes that read a filter.
 * How many rows pass before a large write's filter is in place depends on the machine's load; with
 * these counts a test can tell the probes the filter must save from those it cannot
 * (packages/core/test/lists/Lists.test.ts).
 */
export const sinkFilterCounts = { unfilteredRows: 0, filtered: 0 }

const both = (a: Promise<void> | undefined, b: Promise<void> | undefined): Promise<void> | undefined =>
  a === undefined ? b : b === undefined ? a : Promise.all([a, b]).then(() => undefined)

/** A batch of one lane: its connection, in a transaction, with the staging COPY open. */
interface OpenBatch {
  readonly client: pg.Client
  readonly copy: CopyIn
  /** Its numbers, to notice a repeated one (and, while the filter is being read, to add to it after). */
  readonly seen: PhoneSet
  /** Rows for `directCopy` with their audit rows (not in the staging COPY). */
  readonly direct: KeyOrderedLines
  /** The lane version up to which other writers' numbers were in the filter when the batch began. */
  readonly from: number | undefined
  rows: number
  duplicates: boolean
  /** Staging lines not yet handed to the COPY: the bytes of `pending` up to `used`. */
  pending: Buffer
  used: number
}

/** One lane of a sink: its own batches, applied one at a time in order, under its own advisory lock. */
class Lane {
  private readonly sink: ListWriteSink
  private readonly lane: number
  private open: OpenBatch | undefined
  private opening: Promise<OpenBatch> | undefined
  /** The previous batch's apply + commit. */
  private applying: Promise<void> = Promise.resolve()

  constructor(sink: ListWriteSink, lane: number) {
    this.sink = sink
    this.lane = lane
  }

  write(phone: string, entry: Omit<ListEntry, "phone">, sticky: boolean, countryCode: string | null) {
    if (this.open !== undefined) return this.stage(this.open, phone, entry, sticky, countryCode)
    this.opening ??= this.sink.startBatch(this.lane)
    return this.opening.then((batch) => {
      this.opening = undefined
      this.open = batch
      return this.stage(batch, phone, entry, sticky, countryCode)
    })
  }

  async finish(): Promise<void> {
    if (this.open !== undefined) await this.endBatch(this.open)
    await this.applying
  }

  private stage(
    batch: OpenBatch,
    phone: string,
    entry: Omit<ListEntry, "phone">,
    sticky: boolean,
    countryCode: string | null
  ): Promise<void> | undefined {
    const sink = this.sink
    const key = Number(phone)
    const filter = sink.filter.keys
    // Once another writer has written in this lane the marks are never trusted again there:
    // its numbers are staged as before (a straight copy would only be staged late, in the apply).
    const fresh = filter !== undefined && sink.versions.trusts(this.lane) && !filter.markAndTestKey(key)
    if (
      fresh &&
      sink.directAllowed &&
      sink.versions.lastTrusted[this.lane] &&
      entry.metrics === undefined &&
      createdAt(entry) === undefined
    ) {
      batch.direct.add(key, phone.length, directLine(phone, entry, sticky))
      return this.addTo(batch, key, undefined)
    }
    return this.addTo(batch, key, stageLine(batch.rows, phone, entry, sticky, countryCode, fresh))
  }

  /** Counts a row of `batch` (`line`: its staging line, or none when it goes `direct`). */
  private addTo(batch: OpenBatch, key: number, line: string | undefined): Promise<void> | undefined {
    const sink = this.sink
    if (!batch.seen.add(key)) {
      batch.duplicates = true
      sink.repeats++
    }
    if (++sink.written % FILTER_MIN_ROWS === 0) sink.filter.consider()
    let wait: Promise<void> | undefined
    let full = false
    if (line !== undefined) {
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      if (line.length * 3 > WRITE_BYTES - batch.used) {
        if (batch.used > 0) wait = this.flush(batch)
        // A line longer than a Buffer (many metrics) goes as it is: the stream keeps it while full.
        if (line.length * 3 > WRITE_BYTES) wait = both(wait, batch.copy.write(line))
      }
      if (line.length * 3 <= WRITE_BYTES) {
        batch.used += batch.pending.write(line, batch.used)
        full = batch.used > WRITE_BYTES - 1024
      }
    }
    return both(wait, this.counted(batch, full))
  }

  /** Hands the bytes staged so far to the COPY; a new Buffer takes the next lines. */
  private flush(batch: OpenBatch): Promise<void> | undefined {
    const bytes = batch.pending.subarray(0, batch.used)
    batch.pending = Buffer.allocUnsafe(WRITE_BYTES)
    batch.used = 0
    return batch.copy.write(bytes)
  }

  /** A row has been staged: ends the batch when full; else whether the caller must wait. */
  private counted(batch: OpenBatch, full: boolean): Promise<void> | undefined {
    const sink = this.sink
    batch.rows++
    if (batch.rows >= sink.batchRows) return this.endBatch(batch)
    // A caller that never has to wait would keep the filter's queries from running until the
    // next batch boundary: let the event loop turn now and then while the lists are read.
    if (sink.filter.reading !== undefined && sink.filter.keys === undefined && sink.written % 1024 === 0) {
      return new Promise<void>((resolve) => setImmediate(resolve))
    }
    return full ? this.flush(batch) : undefined
  }

  private async endBatch(batch: OpenBatch): Promise<void> {
    this.open = undefined
    const rest = batch.pending.subarray(0, batch.used)
    batch.used = 0
    await batch.copy.end(rest)
    // The previous batch of this lane commits first: applies stay in order, one at a time.
    await this.applying
    this.applying = this.sink.applyBatch(this.lane, batch)
    this.applying.catch((error: unknown) => this.sink.fail(error))
  }
}

/** Writes `list` through staging batches (see the top of this file). */
export class ListWriteSink implements ListSink {
  readonly connections: SinkConnections
  readonly gate = new ApplyGate()
  readonly versions = new LaneVersions()
  readonly filter: ListedFilter
  /** Batches not committed yet. */
  readonly uncommitted = new Set<OpenBatch>()
  /** Whether new numbers may be copied straight to the list (`directCopy`). */
  readonly directAllowed: boolean
  /** Rows per batch. */
  readonly batchRows: number
  /** Rows written so far, and rows whose number came earlier in their batch. */
  written = 0
  repeats = 0
  private readonly list: ListName
  private readonly options: BatchOptions
  private readonly lanes: ReadonlyArray<Lane>
  /** What a `directLine`'s audit row has around its phone and its reason and source (`DIRECT_AUDIT_COPY`). */
  private readonly auditBetween: Buffer
  private readonly auditAfter: Buffer
  /** Memory for `directCopy` rows, shared by the sink's batches and reused from batch to batch. */
  private readonly blocks = new BlockPool()
  private readonly spareLines: Array<KeyOrderedLines> = []
  private counts: ApplyCounts = emptyCounts
  /** The first failure of a COPY, an apply or the filter's read: every later write fails with it. */
  private failure: unknown

  constructor(open: () => Promise<pg.Client>, list: ListName, options: BatchOptions) {
    this.connections = new SinkConnections(open)
    this.list = list
    this.options = options
    this.batchRows = options.batchRows ?? LIST_BATCH_ROWS
    this.directAllowed = list !== "whitelist"
    this.auditBetween = Buffer.from(`\tadd\t${list}\t`)
    this.auditAfter = Buffer.from(`\t${escapeCopy(options.actor)}\n`)
    this.filter = new ListedFilter({
      connections: this.connections,
      gate: this.gate,
      versions: this.versions,
      uncommitted: this.uncommitted,
      written: () => this.written,
      fail: (error) => this.fail(error)
    })
    this.lanes = Array.from({ length: LIST_WRITE_LANES }, (_, lane) => new Lane(this, lane))
  }

  write(
    phone: string,
    entry: Omit<ListEntry, "phone">,
    sticky: boolean,
    countryCode: string | null
  ): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    return this.lanes[laneOf(phone)]!.write(phone, entry, sticky, countryCode)
  }

  async finish(): Promise<ApplyCounts & { readonly repeats: number }> {
    if (this.failure !== undefined) throw this.failure
    await Promise.all(this.lanes.map((lane) => lane.finish()))
    // A filter still being read is of no more use; its connection is closed with the sink.
    if (this.failure !== undefined) throw this.failure
    sinkFilterCounts.unfilteredRows += this.filter.rowsBefore ?? this.written
    if (this.filter.rowsBefore !== undefined) sinkFilterCounts.filtered++
    return { ...this.counts, repeats: this.repeats }
  }

  /**
   * Closes the sink's connections (when its scope closes). What is not committed (the scope closed
   * early, or a write failed) is dropped: the server rolls it back.
   */
  close(): void {
    this.connections.close()
  }

  fail(error: unknown): void {
    this.failure ??= error
  }

  /** A new batch of `lane`: a connection of the sink's, a transaction, the staging table and its COPY. */
  async startBatch(lane: number): Promise<OpenBatch> {
    const client = await this.connections.take()
    // JIT compilation of the apply statement costs seconds and saves nothing on a batch.
    await client.query(`BEGIN; SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; ${STAGE_DDL}`)
    const copy = new CopyIn(client, STAGE_COPY)
    // A failed COPY is noticed at the next write or at the end of the batch.
    copy.done.catch((error: unknown) => this.fail(error))
    const batch: OpenBatch = {
      client,
      copy,
      seen: new PhoneSet(LIST_BATCH_ROWS),
      direct: this.spareLines.pop() ?? new KeyOrderedLines(this.blocks),
      from: this.versions.accounted?.[lane],
      rows: 0,
      duplicates: false,
      pending: Buffer.allocUnsafe(WRITE_BYTES),
      used: 0
    }
    this.uncommitted.add(batch)
    this.filter.began(batch)
    return batch
  }

  /** Applies a batch whose COPY has ended, and commits it, under its lane's lock. */
  async applyBatch(lane: number, batch: OpenBatch): Promise<void> {
    await this.gate.enter()
    try {
      const statement = applyStatementFor(this.list, this.options.conflict, this.options.guard, batch.duplicates)
      const { version, readers } = await this.versions.lock(batch.client, lane)
      const correction = await this.versions.othersSince(batch.client, lane, batch.from, version)
      const trusted = correction !== undefined
      if (!trusted) this.versions.distrust(lane)
      // From now on the filter knows what the others wrote (until the keys are in, the lane's
      // batches keep correcting from the version the keys were read at).
      const filter = this.filter.keys
      const corrected = trusted && filter !== undefined
      if (corrected) for (const phone of correction) filter.markAndTest(phone)
      this.versions.lastTrusted[lane] = trusted
      const direct = batch.direct
      // A repeated number may have its first row here and a later one staged; another writer may
      // have listed one of the batch's numbers; a registered reader needs every number of the batch
      // in the log: then all of them go through the staging table and the plan.
      const straight = trusted && !batch.duplicates && !readers && !direct.containsAny(correction) ? direct.count : 0
      if (straight > 0) {
        // In key order: each B-tree is walked left to right once.
        const order = direct.order()
        await direct.writeRows((chunks) => copyChunks(batch.client, directCopy(this.list), chunks), order)
        await direct.writeAudit(
          (chunks) => copyChunks(batch.client, DIRECT_AUDIT_COPY, chunks),
          order,
          this.auditBetween,
          this.auditAfter
        )
      } else if (direct.count > 0) {
        await direct.writeRows((chunks) => copyChunks(batch.client, DIRECT_STAGE_COPY, chunks))
      }
      direct.clear()
      this.spareLines.push(direct)
      let c: ApplyCounts = { added: straight, moved: 0, updated: 0, unchanged: 0, keptSticky: 0 }
      if (batch.rows > straight) {
        const result = await batch.client.query<ApplyRow>(statement, [this.options.actor, trusted, correction ?? []])
        const planned = applyResult(result.rows[0]!)
        c = { ...planned, added: planned.added + straight }
      }
      if (readers && version !== undefined) await logStagedWrites(batch.client, lane, version)
      await batch.client.query("COMMIT")
      this.uncommitted.delete(batch)
      // Only a committed version is the sink's own (a rolled-back one is taken by the next writer).
      this.versions.committed(lane, version, corrected)
      this.counts = addCounts(this.counts, c)
      this.connections.release(batch.client, false)
    } catch (error) {
      this.connections.release(batch.client, true)
      throw error
    } finally {
      this.gate.leave()
    }
  }
}
