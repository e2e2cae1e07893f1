/**
 * For scripts/sdk-check.sh on a machine without a PostgreSQL server (no DATABASE_URL): starts the
 * embedded one the tests use (packages/embedded-postgres), prints its URL as one line, and stops it
 * on SIGTERM.
 */
import { startEmbeddedPostgres } from "@optimizer/embedded-postgres"

const server = await startEmbeddedPostgres({
  dataDir: ".optimizer/test-pg",
  port: 54329,
  log: (line) => process.stderr.write(`${line}\n`)
})
process.stdout.write(`${server.url}\n`)
// Serves until SIGTERM (the server's process is not a handle that keeps this one alive).
const alive = setInterval(() => undefined, 60_000)
process.on("SIGTERM", () => {
  clearInterval(alive)
  void server.stop().then(() => process.exit(0))
})
