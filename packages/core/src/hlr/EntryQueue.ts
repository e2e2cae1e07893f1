import type { ListEntry } from "../lists/ListSchemas.ts"

/**
 * List entries handed from the pass to a list write (`Lists.applyStream`) running beside it, in
 * batches: `push` waits while a few batches are queued (backpressure); the consumer's iteration
 * ends at `close` and fails with what `fail` was given. A consumer that stops early makes `push` fail.
 */
export class EntryQueue implements AsyncIterable<ReadonlyArray<ListEntry>> {
  private batch: Array<ListEntry> = []
  private readonly queued: Array<ReadonlyArray<ListEntry>> = []
  private closed = false
  private failure: { readonly error: unknown } | undefined
  private stopped = false
  private wakeConsumer: (() => void) | undefined
  private wakeProducer: (() => void) | undefined

  /** Adds an entry; a promise when the producer must wait. */
  add(entry: ListEntry): Promise<void> | undefined {
    this.batch.push(entry)
    // Small batches: entries waiting longer would outlive the young generation's collections.
    if (this.batch.length < 500) return undefined
    return this.push()
  }

  private push(): Promise<void> | undefined {
    if (this.stopped) return Promise.reject(new Error("the HLR list write stopped"))
    if (this.batch.length > 0) {
      this.queued.push(this.batch)
      this.batch = []
      this.wakeConsumer?.()
    }
    if (this.queued.length < 4) return undefined
    return new Promise<void>((resolve) => {
      this.wakeProducer = resolve
    }).then(() => (this.stopped ? Promise.reject(new Error("the HLR list write stopped")) : undefined))
  }

  async close(): Promise<void> {
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

  async *[Symbol.asyncIterator](): AsyncGenerator<ReadonlyArray<ListEntry>> {
    try {
      for (;;) {
        const next = this.queued.shift()
        if (next !== undefined) {
          const wake = this.wakeProducer
          this.wakeProducer = undefined
          wake?.()
          yield next
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
