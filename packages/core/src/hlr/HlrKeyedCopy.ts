/**
 * Rows COPYed straight into a table keyed by phone (`api_hlr_live_numbers`, `hlr_lookups_cache`) while
 * the HLR results pass reads on (`HlrResultsPass.ts`), on a connection of their own, in one
 * transaction holding a SHARE ROW EXCLUSIVE lock on the table: no other session can insert a phone
 * between the check of which phones are present and the COPY of the others, so the COPY never meets
 * a unique violation (a concurrent run waits for the commit; readers are not blocked). Rows whose
 * phone is present are left as they are (`keep`, as `ON CONFLICT DO NOTHING` would) or update it
 * (`update`: the cache's status and time). Which phones to look up: a table of up to
 * `FILTER_MAX_ROWS` rows is read into a Bloom filter (`PhoneKeyFilter`) once locked, and only the
 * phones it may hold are looked up; a bigger table has every phone looked up.
 *
 * Several runs lock the two tables in one order (`lockInOrder`): live rows, then the cache.
 */
import type pg from "pg"
import { readKeys } from "../lists/ListedFilter.ts"
import { PhoneKeyFilter } from "../phone/PhoneKeyFilter.ts"
import { CopyIn } from "../platform/CopyText.ts"

/**
 * Up to how many rows (the planner's estimate) a table's keys are read into a filter at the start.
 * A key costs ~0.3 µs to read (`lists/ListedFilter.ts`), a look-up of a present phone ~3–6 µs on
 * this machine: for a table of up to a few million rows the filter pays even for a small batch.
 */
const FILTER_MAX_ROWS = 3_000_000

/** Rows checked and copied per round trip; a batch is checked and copied while the next is read. */
const BATCH = 10_000
/**
 * The COPY text is encoded every ~32 Ki characters: a longer string, once flattened, is a large
 * object that V8 allocates straight in the old generation, where only a full collection frees it —
 * hundreds of MB of them lifted the heap (and the worker's peak RSS) by ~60 MB.
 */
const TEXT = 32 * 1024
/** The Buffers the text is encoded into, reused from batch to batch. */
const SLAB = 256 * 1024
const encoder = new TextEncoder()

/** A batch's COPY bytes: a view of a pooled slab (returned once the COPY has ended), or a Buffer of its own. */
interface Part {
  readonly bytes: Buffer
  readonly slab: Buffer | undefined
}

export class KeyedCopy {
  // A batch as its phones (numbers: nothing of the results text kept alive) and its COPY text
  // encoded as it comes, so that nothing of it lingers in the JS heap while it waits, into slabs
  // reused from batch to batch: hundreds of MB of short-lived Buffers would wait for the garbage
  // collector and lift the worker's peak memory.
  private keys = new Float64Array(BATCH)
  private count = 0
  private text = ""
  private parts: Array<Part> = []
  /** The slab being filled, up to `at`. */
  private slab: Buffer | undefined
  private at = 0
  private readonly slabs: Array<Buffer> = []
  private pending: Promise<void> = Promise.resolve()
  /** The table's keys when locked (undefined: too many to read; every phone is looked up). */
  private filter: PhoneKeyFilter | undefined
  /** Rows inserted (phones not present before). */
  added = 0
  private readonly client: pg.ClientBase
  private readonly table: string
  private readonly columns: string
  private readonly present: "keep" | "update"
  private readonly options: string

  /**
   * `columns`: the COPY's column list, the phone (`custom_variable_1`) first; `nullAsEmpty`: an
   * empty field is NULL (the COPY's `NULL ''`) instead of `\N`.
   */
  constructor(
    client: pg.ClientBase,
    table: string,
    columns: ReadonlyArray<string>,
    present: "keep" | "update",
    nullAsEmpty = false
  ) {
    this.client = client
    this.table = table
    this.columns = columns.map((c) => `"${c}"`).join(", ")
    this.present = present
    this.options = nullAsEmpty ? " (NULL '')" : ""
  }

  /** Opens the transaction and takes the lock (may wait for another run's commit). */
  async begin(): Promise<void> {
    await this.client.query("BEGIN")
    await this.client.query(`LOCK TABLE ${this.table} IN SHARE ROW EXCLUSIVE MODE`)
    const size = await this.client.query<{ n: number }>(
      `SELECT reltuples::float8 AS n FROM pg_class WHERE oid = '${this.table}'::regclass`
    )
    const rows = Math.max(0, size.rows[0]?.n ?? 0)
    if (rows > FILTER_MAX_ROWS) return
    // ~16 bits per key, counting a million keys the run will test (a test records its key too):
    // 2 MiB for an empty table, 8 MiB at the cap; under 2 % of absent phones are looked up after all.
    const filter = new PhoneKeyFilter(Math.ceil(Math.log2((rows + 1_000_000) * 16)))
    await readKeys(this.client, `COPY (SELECT custom_variable_1 FROM ${this.table}) TO STDOUT`, (key) => {
      filter.markAndTestKey(key)
    })
    this.filter = filter
  }

  /** A row: `key` is its phone as a number, `line` its COPY line (the phone, a tab, the rest). */
  add(key: number, line: string): Promise<void> | undefined {
    this.keys[this.count++] = key
    this.text += line
    if (this.text.length >= TEXT) this.encode()
    return this.count >= BATCH ? this.flush() : undefined
  }

  /**
   * Room for a row of `key` of `size` bytes, written by the caller into `out` from the offset returned
   * (the phone, a tab, the rest, a newline); then `endRow()`. The byte path of the results pass: its
   * rows go from the results' bytes to the COPY's without becoming strings.
   */
  row(key: number, size: number): number {
    this.keys[this.count++] = key
    if (this.text !== "") this.encode()
    if (this.slab === undefined || this.at + size > this.slab.length) {
      this.closeSlab()
      // A row longer than a slab gets a Buffer of its own (`closeSlab` does not pool it).
      this.slab = size > SLAB ? Buffer.allocUnsafeSlow(size) : (this.slabs.pop() ?? Buffer.allocUnsafeSlow(SLAB))
      this.at = 0
    }
    const at = this.at
    this.at += size
    return at
  }

  /** The Buffer `row` gave room in. */
  get out(): Buffer {
    return this.slab!
  }

  /** After the bytes of a `row` are written: the batch's write to wait for when it is full. */
  endRow(): Promise<void> | undefined {
    return this.count >= BATCH ? this.flush() : undefined
  }

  /** The text so far into the slab being filled, and on into further slabs while it does not fit. */
  private encode(): void {
    let text = this.text
    this.text = ""
    while (text !== "") {
      if (this.slab === undefined) {
        this.slab = this.slabs.pop() ?? Buffer.allocUnsafeSlow(SLAB)
        this.at = 0
      }
      const { read, written } = encoder.encodeInto(text, this.at === 0 ? this.slab : this.slab.subarray(this.at))
      this.at += written
      if (read === text.length) return
      // The slab is full (an empty one always takes a character: the loop ends).
      this.closeSlab()
      text = text.slice(read)
    }
  }

  private closeSlab(): void {
    if (this.slab === undefined) return
    const pooled = this.slab.length === SLAB
    if (this.at > 0) this.parts.push({ bytes: this.slab.subarray(0, this.at), slab: pooled ? this.slab : undefined })
    else if (pooled) this.slabs.push(this.slab)
    this.slab = undefined
  }

  private async flush(): Promise<void> {
    await this.pending
    this.encode()
    this.closeSlab()
    const keys = this.keys.slice(0, this.count)
    const buffers = this.parts
    this.count = 0
    this.parts = []
    this.pending = this.write(keys, buffers)
    // A failure surfaces at the next flush or at `commit`; never unhandled meanwhile.
    this.pending.catch(() => undefined)
  }

  private async write(keys: Float64Array, parts: Array<Part>): Promise<void> {
    if (keys.length === 0) return
    await this.copy(
      keys,
      parts.map((part) => part.bytes)
    )
    // The COPY has ended (the server has taken every byte): its slabs can take the next batches'.
    // After a failure they are not reused — the connection may still hold them.
    for (const part of parts) if (part.slab !== undefined) this.slabs.push(part.slab)
  }

  private async copy(keys: Float64Array, buffers: ReadonlyArray<Buffer>): Promise<void> {
    const filter = this.filter
    const maybe = filter === undefined ? Array.from(keys, String) : []
    if (filter !== undefined) for (const key of keys) if (filter.markAndTestKey(key)) maybe.push(String(key))
    const found =
      maybe.length === 0
        ? { rows: [] }
        : await this.client.query<{ p: string }>(
            `SELECT custom_variable_1 AS p FROM ${this.table} WHERE custom_variable_1 = ANY($1::text[])`,
            [maybe]
          )
    const copy = new CopyIn(this.client, `COPY ${this.table} (${this.columns}) FROM STDIN${this.options}`)
    if (found.rows.length === 0) {
      for (const buffer of buffers) {
        const wait = copy.write(buffer)
        if (wait !== undefined) await wait
      }
      await copy.end()
      this.added += keys.length
      return
    }
    // The rows of present phones are set aside (a line starts with its phone and a tab).
    const present = new Set(found.rows.map((r) => r.p))
    const fresh: Array<string> = []
    const again: Array<Array<string>> = []
    for (const line of Buffer.concat(buffers).toString("utf8").split("\n")) {
      if (line === "") continue
      const cells = line.split("\t")
      if (present.has(cells[0]!)) again.push(cells)
      else fresh.push(line)
    }
    await copy.end(fresh.length === 0 ? undefined : `${fresh.join("\n")}\n`)
    this.added += fresh.length
    if (this.present === "update" && again.length > 0) {
      // The cache's rows (phone, live_status): the status and the time of the lookup renewed.
      await this.client.query(
        `UPDATE ${this.table} c SET live_status = u.s, looked_up_at = now()
         FROM unnest($1::text[], $2::text[]) AS u(p, s) WHERE c.custom_variable_1 = u.p`,
        [again.map((c) => c[0]!), again.map((c) => (c[1] === "\\N" ? null : unescape(c[1]!)))]
      )
    }
  }

  /** Writes what is left and commits; the rows inserted. */
  async commit(): Promise<number> {
    await this.flush()
    await this.pending
    await this.client.query("COMMIT")
    return this.added
  }
}

/** A COPY text field back to its value. */
const unescape = (field: string): string =>
  field.includes("\\")
    ? field.replace(/\\(.)/g, (_, c: string) => (c === "t" ? "\t" : c === "n" ? "\n" : c === "r" ? "\r" : c))
    : field

/** Opens the writers' transactions one after the other, in the order given (the same in every run). */
export const lockInOrder = async (writers: ReadonlyArray<KeyedCopy>): Promise<void> => {
  for (const writer of writers) await writer.begin()
}
