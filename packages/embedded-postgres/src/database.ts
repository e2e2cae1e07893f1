/** The admin connection: creates the database `optimizer` when missing, once the server accepts connections. */
import { DATABASE, errnoCode, message, sleep } from "./common.ts"

export const ensureDatabase = async (url: string, deadline: number): Promise<void> => {
  const { default: pg } = await import("pg")
  const adminUrl = new URL(url)
  adminUrl.pathname = "/postgres"
  for (;;) {
    const client = new pg.Client({ connectionString: adminUrl.toString(), connectionTimeoutMillis: 5_000 })
    client.on("error", () => {})
    try {
      await client.connect()
      const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [DATABASE])
      if (found.rowCount === 0) {
        await client.query(`CREATE DATABASE ${DATABASE}`).catch((e: unknown) => {
          if (errnoCode(e) !== "42P04") throw e // created meanwhile by another process
        })
      }
      return
    } catch (e) {
      // 57P03: the server is starting up
      const retry = errnoCode(e) === "57P03" || errnoCode(e) === "ECONNREFUSED"
      if (!retry || Date.now() > deadline) throw new Error(`cannot prepare the database "${DATABASE}": ${message(e)}`)
      await sleep(100)
    } finally {
      await client.end().catch(() => {})
    }
  }
}
