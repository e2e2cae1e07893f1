/**
 * `optimizer serve --workers N`: N HTTP processes on one port, so that the API uses more than one
 * core. One Node process runs the request path on one core (measured: `/find_records` holds one
 * core at ~8k requests/s on the project's 2-core machine, with PostgreSQL and the load generator
 * on the other); a second process takes what the machine has left.
 *
 * The processes come from `node:cluster`: this process (the primary) holds the listening socket and
 * hands each new connection to a worker in turn; each worker is the same command started again
 * (`cluster.isWorker`), with a runtime and database pool of its own. The primary runs no runtime.
 *
 * - A worker that exits while the command runs is replaced. When workers keep exiting (more than
 *   three per worker within a minute: a database that refuses them, a port that cannot be bound),
 *   the command stops with that error instead of restarting them forever.
 * - SIGTERM / SIGINT to the primary: every worker gets SIGTERM, drains its in-flight requests and
 *   exits; one still running after `STOP_TIMEOUT_MS` is killed.
 */
import cluster, { type Worker } from "node:cluster"
import { Effect } from "effect"

/** True in a process that `serve --workers N` started: it serves HTTP and leaves the rest to the primary. */
export const isHttpWorker = (): boolean => cluster.isWorker

const STOP_TIMEOUT_MS = 15_000
const DEATH_WINDOW_MS = 60_000

const log = (line: string) => process.stderr.write(`${line}\n`)

const describeExit = (code: number | null, signal: string | null) =>
  signal !== null ? `signal ${signal}` : `exit code ${code ?? "unknown"}`

/** Sends SIGTERM to every worker and waits until all have exited (SIGKILL after the timeout). */
const stopWorkers = (): Promise<void> => {
  const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead())
  if (alive.length === 0) return Promise.resolve()
  return new Promise((resolve) => {
    let left = alive.length
    const timer = setTimeout(() => {
      for (const worker of alive) if (!worker.isDead()) worker.process.kill("SIGKILL")
    }, STOP_TIMEOUT_MS)
    for (const worker of alive) {
      worker.once("exit", () => {
        if (--left === 0) {
          clearTimeout(timer)
          resolve()
        }
      })
      worker.process.kill("SIGTERM")
    }
  })
}

/**
 * Starts `count` workers running this same command and keeps them running until the fiber is
 * interrupted (then stops them); fails when they keep exiting.
 */
export const superviseHttpWorkers = (count: number): Effect.Effect<never, Error> =>
  Effect.callback<never, Error>((resume) => {
    let stopping = false
    const deaths: Array<number> = []
    const onExit = (worker: Worker, code: number | null, signal: string | null) => {
      if (stopping) return
      const now = Date.now()
      deaths.push(now)
      while (deaths.length > 0 && now - deaths[0]! > DEATH_WINDOW_MS) deaths.shift()
      if (deaths.length > count * 3) {
        stopping = true
        cluster.off("exit", onExit)
        void stopWorkers().then(() =>
          resume(
            Effect.fail(
              new Error(
                `the HTTP workers keep exiting (${deaths.length} in the last minute, the last with ${describeExit(code, signal)}): see their output above`
              )
            )
          )
        )
        return
      }
      log(`HTTP worker ${worker.process.pid} exited (${describeExit(code, signal)}); starting another`)
      cluster.fork()
    }
    cluster.on("exit", onExit)
    for (let i = 0; i < count; i++) cluster.fork()
    log(`serving HTTP with ${count} worker processes (primary pid ${process.pid})`)
    return Effect.promise(() => {
      stopping = true
      cluster.off("exit", onExit)
      return stopWorkers()
    })
  })
