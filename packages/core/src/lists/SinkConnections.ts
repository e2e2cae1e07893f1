/**
 * The connections of one list write (ListWriteSink.ts): its own, never from the shared `PgBulk` pool
 * — writers holding open COPYs while waiting for a pooled connection could deadlock — opened by
 * `dedicatedClient` (platform/Database.ts). Up to two per lane (one applying a batch, one receiving
 * the next) and one reading the filter; idle ones are kept for the next batch.
 */
import type pg from "pg"

export class SinkConnections {
  private readonly open: () => Promise<pg.Client>
  private readonly inUse = new Set<pg.Client>()
  private readonly idle: Array<pg.Client> = []

  constructor(open: () => Promise<pg.Client>) {
    this.open = open
  }

  /** An idle connection of the sink, or a new one; busy until `release`d. */
  async take(): Promise<pg.Client> {
    const client = this.idle.pop() ?? (await this.open())
    this.inUse.add(client)
    return client
  }

  /** Gives a busy connection back: kept for reuse, or closed when `broken` (its state is unknown). */
  release(client: pg.Client, broken: boolean): void {
    if (!this.inUse.delete(client)) return
    if (broken) void client.end().catch(() => undefined)
    else this.idle.push(client)
  }

  /** Runs `work` on a connection of the sink's own. */
  async with<A>(work: (client: pg.Client) => Promise<A>): Promise<A> {
    const client = await this.take()
    try {
      const result = await work(client)
      this.release(client, false)
      return result
    } catch (error) {
      this.release(client, true)
      throw error
    }
  }

  /**
   * Closes every connection. Busy ones are closed, not reused — one may be in the middle of a COPY —
   * and the server rolls back what they had not committed.
   */
  close(): void {
    for (const client of [...this.inUse]) this.release(client, true)
    for (const client of this.idle.splice(0)) void client.end().catch(() => undefined)
  }
}
