/**
 * A large list write's filter of listed numbers (docs/lists.md, "Large writes"). For each number
 * the apply statement probes the three lists' primary keys; in a large import most numbers are on
 * none, and those probes are a quarter of the database's work. So once a sink has written enough
 * rows (`FILTER_PAYS_AFTER`), it reads every key of the three lists into a Bloom filter
 * (`PhoneKeyFilter`), and from then on marks each number it writes *fresh* when the filter has never
 * seen it — certainly on no list, unless another writer put it there after the lists were read,
 * which the lane versions and their log tell (LaneLog.ts). Nobody waits for the filter: other
 * writers keep writing, and the sink's batches keep being applied while the keys are read — except
 * for the moment the versions are read (`ApplyGate`).
 */
import { PhoneKeyFilter } from "../phone/PhoneKeyFilter.ts"
import { copyOut } from "../platform/CopyText.ts"
import type pg from "pg"
import type { LaneVersions } from "./LaneLog.ts"
import { LIST_KEYS, LIST_KEYS_ESTIMATE } from "./ListsSql.ts"
import type { PhoneSet } from "./PhoneSet.ts"
import type { SinkConnections } from "./SinkConnections.ts"

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
export const FILTER_MIN_ROWS = 16_384

/** Reads `COPY … TO STDOUT` of one column of canonical keys, each as a number (parsed from the bytes). */
export const readKeys = async (client: pg.ClientBase, statement: string, key: (key: number) => void): Promise<void> => {
  let value = 0
  for await (const chunk of copyOut(client, statement)) {
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

/** The sink's batches being applied, and a hold that keeps new ones from starting. */
export class ApplyGate {
  private applies = 0
  private hold: Promise<void> | undefined
  private onNoApplies: (() => void) | undefined

  /** A batch's apply begins, once no hold is on. Counted before anything can throw: pair with `leave`. */
  async enter(): Promise<void> {
    while (this.hold !== undefined) await this.hold
    this.applies++
  }

  /** A batch's apply has ended (committed or failed). */
  leave(): void {
    this.applies--
    if (this.applies === 0) this.onNoApplies?.()
  }

  /** Runs `work` while none of the sink's batches is being applied. */
  async holding<A>(work: () => Promise<A>): Promise<A> {
    let lift!: () => void
    this.hold = new Promise<void>((resolve) => {
      lift = resolve
    })
    try {
      if (this.applies > 0) {
        await new Promise<void>((resolve) => {
          this.onNoApplies = resolve
        })
      }
      return await work()
    } finally {
      this.hold = undefined
      this.onNoApplies = undefined
      lift()
    }
  }
}

/** What the filter needs of the sink writing through it. */
export interface FilterHost {
  readonly connections: SinkConnections
  readonly gate: ApplyGate
  readonly versions: LaneVersions
  /** Batches not committed yet: their numbers join the filter once the keys are in. */
  readonly uncommitted: ReadonlySet<{ readonly seen: PhoneSet }>
  /** Rows written so far. */
  readonly written: () => number
  /** The read failed: the write fails with it. */
  readonly fail: (error: unknown) => void
}

export class ListedFilter {
  /** The filter, once every key is in it: the sink marks numbers with it (`markAndTestKey`). */
  keys: PhoneKeyFilter | undefined
  /** The read in progress (kept once it has succeeded: a sink reads the lists once). */
  reading: Promise<void> | undefined
  /** Rows the sink had written when the filter was in place (all of them probed by their batches). */
  rowsBefore: number | undefined
  /** How many keys the lists hold (the planner's estimate, read once the sink is large). */
  private listKeys: number | undefined
  /** While the keys are read: the batches that may commit after the read, whose numbers it still needs. */
  private unfiltered: Set<{ readonly seen: PhoneSet }> | undefined
  private readonly host: FilterHost

  constructor(host: FilterHost) {
    this.host = host
  }

  /** A batch began: while the keys are being read, its numbers join the filter once they are in. */
  began(batch: { readonly seen: PhoneSet }): void {
    this.unfiltered?.add(batch)
  }

  /** Every `FILTER_MIN_ROWS` rows: reads the filter once the sink has written enough rows for it to pay. */
  consider(): void {
    const pays = (keys: number) => this.host.written() >= Math.max(FILTER_MIN_ROWS, keys / FILTER_PAYS_AFTER)
    if (this.keys !== undefined || this.reading !== undefined || !pays(this.listKeys ?? 0)) return
    this.reading = this.host.connections
      .with(async (client) => {
        if (this.listKeys === undefined) {
          const estimate = await client.query<{ keys: number }>(LIST_KEYS_ESTIMATE)
          this.listKeys = estimate.rows[0]?.keys ?? 0
          if (!pays(this.listKeys)) return
        }
        await this.read(client, this.listKeys)
      })
      .catch((error: unknown) => {
        this.host.fail(error)
      })
      .finally(() => {
        if (this.keys === undefined) this.reading = undefined
      })
  }

  /** Registers as a reader, reads the lane versions, then every listed key, into a new filter. */
  private async read(client: pg.ClientBase, expectedKeys: number): Promise<void> {
    const { gate, versions, uncommitted } = this.host
    await versions.register(client)
    await gate.holding(async () => {
      await versions.read(client)
      // Batches that commit from now on may commit after the keys are read: their numbers are added
      // from their own sets once the keys are in.
      this.unfiltered = new Set(uncommitted)
    })
    // ~12 bits per key for the lists and a million more numbers: 0.3-1 % false alarms (a false
    // alarm only means that number is probed); 2 MiB for lists of up to ~400k numbers.
    const keys = new PhoneKeyFilter(Math.ceil(Math.log2((expectedKeys + 1_000_000) * 12)))
    await readKeys(client, LIST_KEYS, (key) => keys.markAndTestKey(key))
    for (const batch of this.unfiltered!) batch.seen.forEach((key) => keys.markAndTestKey(key))
    this.unfiltered = undefined
    this.rowsBefore = this.host.written()
    this.keys = keys
  }
}
