/**
 * Child processes and pids: running the PostgreSQL binaries with an `error` listener on every
 * spawn, and telling whether a pid is alive and is the server of a given cluster (via /proc).
 */
import { execFile, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { errnoCode, HOST, message, sleep } from "./common.ts"
import type { RunAs } from "./common.ts"

/** True when something already listens on 127.0.0.1:<port> (so a server cannot bind it). */
export const isPortInUse = (port: number, host: string = HOST): Promise<boolean> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once("error", (e) => {
      if (errnoCode(e) === "EADDRINUSE") resolve(true)
      else reject(new Error(`cannot check port ${port} on ${host}: ${message(e)}`))
    })
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(false)))
  })

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly output: string
}

export const childEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C", LANG: "C" }
  for (const key of Object.keys(env)) if (key.startsWith("PG")) delete env[key]
  return env
}

export const spawnFailure = (file: string, runAs: RunAs, e: unknown): Error => {
  const code = errnoCode(e)
  const who = runAs.switchUser ? ` as OS user "${runAs.name}"` : ""
  const hint =
    code === "EACCES"
      ? ` Every folder above ${file} must be traversable (mode o+x) by that user, and the file executable.`
      : code === "ENOENT"
        ? " Reinstall the dependencies (npm ci)."
        : ""
  return new Error(`could not run ${file}${who}: ${message(e)}.${hint}`)
}

/** Runs a command to completion, collecting its output; never throws an uncaught `error` event. */
export const run = (file: string, args: ReadonlyArray<string>, runAs: RunAs, timeoutMs: number): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    let output = ""
    let settled = false
    const child = spawn(file, args, {
      cwd: "/",
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
      ...(runAs.switchUser ? { uid: runAs.uid, gid: runAs.gid } : {})
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      if (!settled) {
        settled = true
        reject(new Error(`${path.basename(file)} did not finish within ${timeoutMs / 1000} s. Output: ${output}`))
      }
    }, timeoutMs)
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    child.once("error", (e) => {
      clearTimeout(timer)
      if (!settled) {
        settled = true
        reject(spawnFailure(file, runAs, e))
      }
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      if (!settled) {
        settled = true
        resolve({ code, signal, output })
      }
    })
  })

export const execText = (file: string, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(file, args, { encoding: "utf8", timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${stderr.trim() || error.message}`))
      else resolve(stdout.trim())
    })
  })

/** Whether <pid> runs (a zombie, exited but not yet reaped by its new parent, does not). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (e) {
    if (errnoCode(e) !== "EPERM") return false
  }
  const stat = readProc(pid, "stat")
  return stat === undefined || stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
}

export const readProc = (pid: number, file: string): string | undefined => {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8")
  } catch {
    return undefined
  }
}

/** The parent pid from /proc/<pid>/stat (undefined where /proc is not available). */
export const parentPid = (pid: number): number | undefined => {
  const stat = readProc(pid, "stat")
  if (stat === undefined) return undefined
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ppid = Number(fields[1])
  return Number.isInteger(ppid) ? ppid : undefined
}

/**
 * Whether <pid> is the server of <pgdata> (a postmaster works in its data directory), so that a pid
 * reused after a reboot (another program, or another cluster's process) is never signalled.
 */
export const isServerOf = async (pid: number, pgdata: string): Promise<boolean> => {
  const comm = readProc(pid, "comm")
  if (comm === undefined) return true // no /proc: trust the lock file, as PostgreSQL does
  if (comm.trim() !== "postgres") return false
  const real = await fs.realpath(pgdata).catch(() => pgdata)
  const cwd = await fs.readlink(`/proc/${pid}/cwd`).catch(() => undefined)
  if (cwd !== undefined) return cwd === real
  const cmdline = (readProc(pid, "cmdline") ?? "").split("\0")
  return cmdline.includes(pgdata) || cmdline.includes(real)
}

export const waitUntilGone = async (pid: number, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }
  return true
}
