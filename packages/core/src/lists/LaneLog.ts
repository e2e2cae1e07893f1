/**
 * The lanes of list writes and their versions and log (docs/lists.md, "Bulk writes" and "Large
 * writes"): what keeps one number on one list while writers run in parallel, and what tells a large
 * write which numbers other writers listed while it trusted its filter of the lists.
 *
 * - Lanes. List writers serialise on `pg_advisory_xact_lock(LIST_WRITE_LOCK, lane)`. A number
 *   always falls in the same lane (`laneOf`), so every write of one number is serialised — the
 *   single-list invariant holds — while the lanes write disjoint numbers in parallel on two server
 *   cores: the database's work per number (three primary-key probes, the insert, the audit row) is
 *   what bounds a bulk write, not the Node process. A removal takes every lane, in order.
 * - Versions. Every list-writing transaction bumps its lane's row of `list_lane_versions`
 *   (`sql/0003_list_lane_versions.sql`) under the lane's lock (`lockLane`).
 * - Readers and the log. A large write that keeps a filter registers as a reader (a shared
 *   session-level advisory lock per lane, `LIST_READER_LOCK`); while one is registered, every writer
 *   also logs the numbers it wrote with the version it bumped (`logWrites`,
 *   `sql/0004_list_lane_writes.sql`). `LaneVersions` is the reader's side: which versions since its
 *   filter's marks began are its own, which it read from the log, and whether a lane is still trusted.
 */
import type pg from "pg"

/** "LIST" in ASCII. */
const LIST_WRITE_LOCK = 0x4c495354
export const LIST_WRITE_LANES = 2
export const laneOf = (phone: string): number => phone.charCodeAt(phone.length - 1) % LIST_WRITE_LANES

/** Large writes hold `pg_advisory_lock_shared(LIST_READER_LOCK, lane)` while they keep a filter ("LISR"). */
const LIST_READER_LOCK = 0x4c495352

/** Other writers' versions a batch reads from their log at most (the log keeps 1,000 per lane). */
const MAX_LOGGED_VERSIONS = 1_000

/**
 * Takes a lane's lock and bumps the lane's version, in the writer's transaction: the version says
 * whether anybody else wrote in the lane since a sink read the lists into its filter. Also says
 * whether a reader other than the writer's own sink (`ownReader`: the backend holding its reader
 * lock) is registered: then the writer logs what it wrote (`logWrites`). One round trip; `lane` and
 * the pid are integers of ours, never input.
 */
const lockLane = (lane: number, ownReader = 0) =>
  `SELECT pg_advisory_xact_lock(${LIST_WRITE_LOCK}, ${lane});
   UPDATE list_lane_versions SET version = version + 1 WHERE lane = ${lane}
   RETURNING version, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = ${LIST_READER_LOCK}
     AND objid = ${lane} AND objsubid = 2 AND granted AND pid <> ${ownReader}
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS readers`

/**
 * Logs what a transaction wrote in a lane for the registered readers: `phones` is SQL giving the
 * numbers (a sink batch: every staged number), and prunes the lane's log.
 */
const logWrites = (lane: number, version: number, phones: string) =>
  `INSERT INTO list_lane_writes (lane, version, phones) SELECT ${lane}, ${version}, ${phones};
   DELETE FROM list_lane_writes WHERE lane = ${lane} AND version < ${version - 1000}`

/** A lane's lock taken: the version the transaction bumped it to, and whether readers are registered. */
export interface LaneLock {
  readonly version: number | undefined
  readonly readers: boolean
}

/** Takes `lane`'s lock in the transaction open on `client` and bumps its version (see `lockLane`). */
export const lockLaneOn = async (client: pg.ClientBase, lane: number, ownReader = 0): Promise<LaneLock> => {
  // A multi-statement query gives one result per statement; the UPDATE's is the second.
  const results: pg.QueryResult | Array<pg.QueryResult> = await client.query(lockLane(lane, ownReader))
  const row: { version?: string; readers?: boolean } | undefined = Array.isArray(results)
    ? results[1]?.rows[0]
    : undefined
  return {
    version: row?.version === undefined ? undefined : Number(row.version),
    readers: row?.readers ?? false
  }
}

/** Logs the numbers a sink batch staged (`lists_stage`) as what `version` wrote in `lane`. */
export const logStagedWrites = (client: pg.ClientBase, lane: number, version: number) =>
  client.query(logWrites(lane, version, "coalesce((SELECT array_agg(phone) FROM lists_stage), '{}'::text[])"))

/**
 * Takes every lane's lock, in order, in the transaction open on `client` (a removal, which may touch
 * any number). A removal lists no number: its log rows only tell readers the versions were not theirs.
 */
export const lockEveryLane = async (client: pg.ClientBase): Promise<void> => {
  for (let lane = 0; lane < LIST_WRITE_LANES; lane++) {
    const locked = await lockLaneOn(client, lane)
    if (locked.readers && locked.version !== undefined) {
      await client.query(logWrites(lane, locked.version, "'{}'::text[]"))
    }
  }
}

/**
 * A large write's side of the protocol: registered as a reader of the lanes, it knows per lane up
 * to which version every other writer's numbers are in its filter, and which versions its own
 * batches bumped. Read by the sink's hot loop (`trusts`, `lastTrusted`): plain fields.
 */
export class LaneVersions {
  /**
   * Per lane: the version up to which every other writer's numbers are in the filter (undefined:
   * one of them was not logged — the lane is not trusted again). Undefined until the versions are
   * read (`read`); then advanced by each batch that corrected its marks.
   */
  accounted: Array<number | undefined> | undefined
  /** Per lane, the versions this sink's own batches bumped (and committed). */
  private readonly own: Array<Set<number>> = Array.from({ length: LIST_WRITE_LANES }, () => new Set<number>())
  /** The versions at which the keys were read: where a batch that began before then corrects from. */
  private keysReadAt: ReadonlyArray<number | undefined> | undefined
  /** The backend holding this sink's reader locks (0: none yet). */
  private readerPid = 0
  /**
   * Per lane, whether its last batch trusted its marks. Only then are fresh numbers set aside for
   * `directCopy`: a batch that turns out not to trust them must stage them late, in its apply (the
   * first batches of a write, or a lane that met a version without a log row, set none aside).
   */
  readonly lastTrusted: Array<boolean> = Array.from({ length: LIST_WRITE_LANES }, () => false)

  /** Whether the lane's marks may be trusted: its versions were read and none went unlogged since. */
  trusts(lane: number): boolean {
    return this.accounted?.[lane] !== undefined
  }

  /**
   * Registers `client`'s session as a reader of every lane (until it ends). Done before the versions
   * are read: every writer that commits a later version logs its numbers (or one that looked just
   * before leaves a version unlogged: the lane is then distrusted).
   */
  async register(client: pg.ClientBase): Promise<void> {
    const registered = await client.query<{ pid: number }>(
      `SELECT ${Array.from({ length: LIST_WRITE_LANES }, (_, lane) => `pg_advisory_lock_shared(${LIST_READER_LOCK}, ${lane}), `).join("")}pg_backend_pid() AS pid`
    )
    this.readerPid = registered.rows[0]!.pid
  }

  /** Reads the lanes' versions: the filter about to be read knows every write up to them. */
  async read(client: pg.ClientBase): Promise<void> {
    const result = await client.query<{ lane: number; version: string }>("SELECT lane, version FROM list_lane_versions")
    const versions: Array<number | undefined> = Array.from({ length: LIST_WRITE_LANES }, () => undefined)
    for (const row of result.rows) if (row.lane < LIST_WRITE_LANES) versions[row.lane] = Number(row.version)
    this.accounted = versions
    this.keysReadAt = [...versions]
  }

  /** Takes `lane`'s lock for a batch of this sink (its own reader registration does not count). */
  lock(client: pg.ClientBase, lane: number): Promise<LaneLock> {
    return lockLaneOn(client, lane, this.readerPid)
  }

  /**
   * Whether a batch may trust its marks, holding its lane's lock after bumping it to `version`:
   * undefined if not; else the numbers other writers listed in the lane since the batch's marks
   * began (`from`, the lane's accounted version when the batch began; read from their log rows —
   * those rows are probed after all). Not if a version since is neither the sink's own nor logged.
   */
  async othersSince(
    client: pg.ClientBase,
    lane: number,
    from: number | undefined,
    version: number | undefined
  ): Promise<ReadonlyArray<string> | undefined> {
    const since = from ?? this.keysReadAt?.[lane]
    if (version === undefined || this.accounted?.[lane] === undefined || since === undefined) return undefined
    const others: Array<number> = []
    for (let v = since + 1; v < version && others.length <= MAX_LOGGED_VERSIONS; v++) {
      if (!this.own[lane]!.has(v)) others.push(v)
    }
    if (others.length === 0) return []
    if (others.length > MAX_LOGGED_VERSIONS) return undefined
    const logged = await client.query<{ phones: Array<string> }>(
      "SELECT phones FROM list_lane_writes WHERE lane = $1 AND version = ANY($2::bigint[])",
      [lane, others]
    )
    if (logged.rows.length !== others.length) return undefined
    return logged.rows.flatMap((row) => row.phones)
  }

  /** The lane is not trusted for the rest of the write (a version since was not logged). */
  distrust(lane: number): void {
    if (this.accounted !== undefined) this.accounted[lane] = undefined
  }

  /**
   * A batch committed `version`: it is the sink's own (only a committed version is: a rolled-back one
   * is taken by the next writer), and if the batch `corrected` the filter with the others' numbers
   * the lane is accounted up to it.
   */
  committed(lane: number, version: number | undefined, corrected: boolean): void {
    if (this.accounted !== undefined && version !== undefined) {
      this.own[lane]!.add(version)
      if (corrected && this.accounted[lane] !== undefined) this.accounted[lane] = version
    }
  }
}
