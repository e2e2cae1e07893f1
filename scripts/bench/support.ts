/** What every benchmark needs: a PostgreSQL server, fresh migrated databases on it, peak RSS sampling. */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { migrate } from "@optimizer/core"

export interface BenchServer {
  /** A new, migrated database; dropped by `dropDatabases` or `stop`. */
  readonly freshDatabase: () => Promise<string>
  /**
   * Drops the databases made so far. Run after each benchmark: a database left with millions of
   * new rows is vacuumed and analysed by autovacuum in the background, on the CPU the next
   * benchmark is measuring.
   */
  readonly dropDatabases: () => Promise<void>
  readonly stop: () => Promise<void>
}

export interface Benchmark {
  readonly name: string
  readonly description: string
  readonly run: (server: BenchServer) => Promise<Record<string, number | string>>
}

const withDatabase = (url: string, name: string) => {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

export const benchDatabaseServer = async (): Promise<BenchServer> => {
  let serverUrl: string
  let stopEmbedded = async () => {}
  if (process.env.DATABASE_URL) {
    serverUrl = process.env.DATABASE_URL
  } else {
    const { startEmbeddedPostgres } = await import("@optimizer/embedded-postgres")
    const embedded = await startEmbeddedPostgres({ dataDir: ".optimizer/bench-pg", port: 54328 })
    serverUrl = embedded.url
    stopEmbedded = embedded.stop
  }
  const created: Array<string> = []
  const admin = () => new pg.Client({ connectionString: withDatabase(serverUrl, "postgres") })
  const dropDatabases = async () => {
    const c = admin()
    await c.connect()
    for (const name of created.splice(0)) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await c.end()
  }
  return {
    freshDatabase: async () => {
      const name = `optimizer_bench_${randomBytes(4).toString("hex")}`
      const c = admin()
      await c.connect()
      await c.query(`CREATE DATABASE ${name}`)
      await c.end()
      created.push(name)
      const url = withDatabase(serverUrl, name)
      await migrate(url)
      return url
    },
    dropDatabases,
    stop: async () => {
      await dropDatabases()
      await stopEmbedded()
    }
  }
}

/** Samples this process's RSS every 50 ms while `f` runs; returns f's value and the peak in MB. */
export const withPeakRss = async <A>(f: () => Promise<A>): Promise<{ value: A; peakRssMb: number }> => {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 50)
  try {
    const value = await f()
    peak = Math.max(peak, process.memoryUsage().rss)
    return { value, peakRssMb: Math.round(peak / 1024 / 1024) }
  } finally {
    clearInterval(timer)
  }
}

export const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000)
