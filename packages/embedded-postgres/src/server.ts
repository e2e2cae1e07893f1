/**
 * The server process: stopping one left behind by a process that died, and spawning the
 * postmaster, waiting until it is ready, and stopping it (also from an `exit` hook).
 */
import { spawn } from "node:child_process"
import { unlinkSync } from "node:fs"
import * as fs from "node:fs/promises"
import type { FileHandle } from "node:fs/promises"
import * as path from "node:path"
import {
  HOST,
  LOG_ROTATE_BYTES,
  message,
  settlesWithin,
  sleep,
  START_TIMEOUT_MS,
  STOP_TIMEOUT_MS,
  type Log
} from "./common.ts"
import type { Binaries } from "./binaries.ts"
import { ownerFile, readPidFile } from "./dataDir.ts"
import { childEnv, run, spawnFailure, waitUntilGone } from "./processes.ts"
import type { RunAs } from "./users.ts"

export const tailOfLog = async (logPath: string, sinceByte: number): Promise<string> => {
  try {
    const text = (await fs.readFile(logPath, "utf8")).slice(sinceByte)
    return text.trim().split("\n").slice(-15).join("\n")
  } catch {
    return ""
  }
}

export const stopLeftover = async (
  binaries: Binaries,
  pgdata: string,
  pid: number,
  runAs: RunAs,
  log: Log
): Promise<void> => {
  log(`stopping a server left running by a process that ended without stopping it (pid ${pid})`)
  const result = await run(
    binaries.pg_ctl,
    ["stop", "-D", pgdata, "-m", "fast", "-w", "-t", String(STOP_TIMEOUT_MS / 1000)],
    runAs,
    STOP_TIMEOUT_MS + 10_000
  ).catch((e: unknown) => ({ code: -1, signal: null, output: message(e) }))
  if (result.code === 0 && (await waitUntilGone(pid, 5_000))) return
  log(`pg_ctl stop did not stop it (${result.output.trim()}); sending SIGQUIT`)
  try {
    process.kill(pid, "SIGQUIT")
  } catch {
    // already gone
  }
  if (await waitUntilGone(pid, 10_000)) return
  try {
    process.kill(pid, "SIGKILL")
  } catch {
    // already gone
  }
  if (!(await waitUntilGone(pid, 5_000)))
    throw new Error(`could not stop the leftover PostgreSQL server (pid ${pid}) of ${pgdata}: stop it by hand.`)
}

export const openLog = async (logPath: string): Promise<{ fd: FileHandle; start: number }> => {
  const size = await fs.stat(logPath).then(
    (s) => s.size,
    () => 0
  )
  if (size > LOG_ROTATE_BYTES) await fs.rename(logPath, `${logPath}.1`)
  const fd = await fs.open(logPath, "a", 0o640)
  const start = await fs.stat(logPath).then(
    (s) => s.size,
    () => 0
  )
  return { fd, start }
}

export type StartOutcome =
  { readonly kind: "started"; readonly stop: () => Promise<void> } | { readonly kind: "lost-race" }

/** Spawns the postmaster and waits until it accepts connections. */
export const spawnServer = async (
  binaries: Binaries,
  dataDir: string,
  pgdata: string,
  port: number,
  runAs: RunAs,
  log: Log
): Promise<StartOutcome> => {
  const logPath = path.join(dataDir, "postgres.log")
  const { fd, start: logStart } = await openLog(logPath)
  const owner = ownerFile(dataDir, process.pid)
  await fs.writeFile(owner, `${process.pid}\n`)
  let child: ReturnType<typeof spawn>
  try {
    child = spawn(binaries.postgres, ["-D", pgdata, "-p", String(port), "-k", "", "-c", `listen_addresses=${HOST}`], {
      cwd: "/",
      env: childEnv(),
      stdio: ["ignore", fd.fd, fd.fd],
      ...(runAs.switchUser ? { uid: runAs.uid, gid: runAs.gid } : {})
    })
  } catch (e) {
    await fd.close()
    throw spawnFailure(binaries.postgres, runAs, e)
  }
  // listeners before any await: a failed spawn (EACCES) emits `error` on the next tick
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined
  let spawnError: unknown
  child.on("error", (e) => (spawnError = e))
  const exitPromise = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal }
      resolve()
    })
  )
  await fd.close() // the child has its own copy of the descriptor
  child.unref()

  // A process that exits without stop() still asks the server to shut down (fast) on its way out.
  const onExit = () => {
    if (exited === undefined) child.kill("SIGINT")
    try {
      unlinkSync(owner)
    } catch {
      // already removed
    }
  }
  process.on("exit", onExit)

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (exited === undefined && spawnError === undefined) {
        child.kill("SIGINT") // fast shutdown
        if (!(await settlesWithin(exitPromise, STOP_TIMEOUT_MS))) {
          log(`the server did not stop within ${STOP_TIMEOUT_MS / 1000} s: sending SIGQUIT`)
          child.kill("SIGQUIT")
          if (!(await settlesWithin(exitPromise, 5_000))) child.kill("SIGKILL")
          await exitPromise
        }
      }
      process.removeListener("exit", onExit)
      await fs.rm(owner, { force: true })
    })())

  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (spawnError !== undefined) {
      await stop()
      throw spawnFailure(binaries.postgres, runAs, spawnError)
    }
    if (exited !== undefined) {
      await stop()
      const tail = await tailOfLog(logPath, logStart)
      if (/lock file "postmaster\.pid" already exists/.test(tail)) return { kind: "lost-race" }
      throw new Error(
        `PostgreSQL exited during startup (${exited.code ?? exited.signal}); ${logPath} says:\n${tail || "(nothing)"}`
      )
    }
    const pidFile = await readPidFile(pgdata)
    if (pidFile !== undefined && pidFile.pid === child.pid && pidFile.status === "ready") break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(
        `PostgreSQL did not become ready within ${START_TIMEOUT_MS / 1000} s; ${logPath} says:\n${await tailOfLog(logPath, logStart)}`
      )
    }
    await sleep(20)
  }
  return { kind: "started", stop }
}
