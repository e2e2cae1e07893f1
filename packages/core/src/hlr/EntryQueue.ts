import type { ListEntry } from "../lists/ListSchemas.ts"

/** Entries per batch. */
const BATCH = 500

/**
 * A batch waiting for the list write: its phones as numbers (canonical keys: 15 digits fit a double
 * exactly) and their reasons (shared strings). No object per entry while it waits: entries queued
 * for longer than two young-generation collections were promoted, and a million-row HLR run's
 * 300,000 of them lifted the old generation (docs/hlr.md, "Performance"). The entries are made
 * when the list write takes the batch.
 */
interface Batch {
  readonly keys: Float64Array
  readonly reasons: Array<string>
  count: number
}

const newBatch = (): Batch => ({ keys: new Float64Array(BATCH), reasons: new Array<string>(BATCH), count: 0 })

/**
 * List entries handed from the pass to a list write (`Lists.applyStream`) running beside it, in
 * batches: `push` waits while a few batches are queued (backpressure); the consumer's iteration
 * ends at `close` and fails with what `fail` was given. A consumer that stops early makes `push` fail.
 * Every entry of a queue has the same `source`.
 */
export class EntryQueue implements AsyncIterable<ReadonlyArray<ListEntry>> {
  private readonly source: string
  private batch: Batch = newBatch()
  private readonly queued: Array<Batch> = []
  private closed = false
  private failure: { readonly error: unknown } | undefined
  private stopped = false
  private wakeConsumer: (() => void) | undefined
  private wakeProducer: (() => void) | undefined

  constructor(source: string) {
    this.source = source
  }

  /** Adds the entry of a canonical phone (given as its number); a promise when the producer must wait. */
  add(key: number, reason: string): Promise<void> | undefined {
    const batch = this.batch
    batch.keys[batch.count] = key
    batch.reasons[batch.count++] = reason
    // Small batches: a batch waiting longer would outlive the young generation's collections.
    if (batch.count < BATCH) return undefined
    return this.push()
  }

  private push(): Promise<void> | undefined {
    if (this.stopped) return Promise.reject(new Error("the HLR list write stopped"))
    if (this.batch.count > 0) {
      this.queued.push(this.batch)
      this.batch = newBatch()
      this.wakeConsumer?.()
    }
    if (this.queued.length < 4) return undefined
    return new Promise<void>((resolve) => {
      this.wakeProducer = resolve
    }).then(() => (this.stopped ? Promise.reject(new Error("the HLR list write stopped")) : undefined))
  }

  /** Ends the entries (a second call does nothing). */
  async close(): Promise<void> {
    if (this.closed) return
    const wait = this.push()
    if (wait !== undefined) await wait
    this.closed = true
    this.wakeConsumer?.()
  }

  fail(error: unknown): void {
    this.failure = { error }
    this.closed = true
    this.wakeConsumer?.()
  }

  /** A batch's entries (the phone: the digits of its key, a string of its own). */
  private entries(batch: Batch): ReadonlyArray<ListEntry> {
    const entries = new Array<ListEntry>(batch.count)
    for (let i = 0; i < batch.count; i++) {
      entries[i] = { phone: String(batch.keys[i]!), reason: batch.reasons[i]!, source: this.source }
    }
    return entries
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ReadonlyArray<ListEntry>> {
    try {
      for (;;) {
        const next = this.queued.shift()
        if (next !== undefined) {
          const wake = this.wakeProducer
          this.wakeProducer = undefined
          wake?.()
          yield this.entries(next)
          continue
        }
        if (this.failure !== undefined) throw this.failure.error
        if (this.closed) return
        await new Promise<void>((resolve) => {
          this.wakeConsumer = resolve
        })
        this.wakeConsumer = undefined
      }
    } finally {
      this.stopped = true
      const wake = this.wakeProducer
      this.wakeProducer = undefined
      wake?.()
    }
  }
}
