/**
 * The data directory: where it can live, its cluster folder (`pgdata/`, initdb on the first run),
 * the password file, the server's lock file and the `owner.<pid>` files of the processes running it.
 */
import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { errnoCode, SUPERUSER, type Log } from "./common.ts"
import type { Binaries } from "./binaries.ts"
import { isAlive, run } from "./processes.ts"
import { describeBlocked, firstBlockedFolder, mkdirTraversable, permits, shortHash, type RunAs } from "./users.ts"

/**
 * The data directory to use: the requested one, or (as root, when a folder above it is not
 * traversable by `postgres`) /var/tmp/optimizer-<hash of the requested path>.
 */
export const usableDataDir = async (requested: string, runAs: RunAs, log: Log): Promise<string> => {
  const blocked = await firstBlockedFolder(path.dirname(requested), runAs)
  if (blocked === undefined) return requested
  const fallback = path.join("/var/tmp", `optimizer-${shortHash(requested)}`)
  if (!runAs.switchUser)
    throw new Error(
      `the data directory ${requested} cannot be reached: ${describeBlocked(blocked)} is not traversable. Choose another data directory.`
    )
  log(
    `the data directory ${requested} is not reachable by the OS user "${runAs.name}": ${describeBlocked(blocked)} is not traversable by other users. Using ${fallback} instead (to keep it in place: chmod o+x ${blocked.folder}, or choose a data directory outside it).`
  )
  return fallback
}

/** Makes <dir> traversable by <runAs>: created with mode 755, or o+x added to a folder of ours. */
export const prepareDataDir = async (dir: string, runAs: RunAs): Promise<void> => {
  await mkdirTraversable(dir)
  const st = await fs.stat(dir)
  if (permits(st, runAs, 1)) return
  if (st.uid === process.getuid?.()) {
    await fs.chmod(dir, (st.mode & 0o7777) | 0o011)
    return
  }
  throw new Error(
    `the data directory ${dir} is not traversable by the OS user "${runAs.name}" (mode ${(st.mode & 0o777).toString(8)}, owner uid ${st.uid}): chmod o+x ${dir}.`
  )
}

export const chownTree = async (dir: string, uid: number, gid: number): Promise<void> => {
  await fs.lchown(dir, uid, gid)
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) await chownTree(full, uid, gid)
    else await fs.lchown(full, uid, gid)
  }
}

/** The cluster folder: owned by the server's user, mode 700 (PostgreSQL insists). */
export const preparePgdata = async (pgdata: string, runAs: RunAs, log: Log): Promise<void> => {
  const created = (await fs.mkdir(pgdata, { recursive: true, mode: 0o700 })) !== undefined
  const st = await fs.stat(pgdata)
  if (created && st.uid !== runAs.uid) await fs.chown(pgdata, runAs.uid, runAs.gid)
  else if (st.uid !== runAs.uid) {
    if (!runAs.switchUser)
      throw new Error(
        `${pgdata} belongs to uid ${st.uid}, not to the current user: run as that user, or delete the folder to start from scratch.`
      )
    log(`giving ${pgdata} to the OS user "${runAs.name}"`)
    await chownTree(pgdata, runAs.uid, runAs.gid)
  }
  if ((st.mode & 0o077) !== 0) await fs.chmod(pgdata, 0o700)
}

export interface PidFile {
  readonly pid: number
  readonly port: number
  readonly status: string
}

export const readPidFile = async (pgdata: string): Promise<PidFile | undefined> => {
  let text: string
  try {
    text = await fs.readFile(path.join(pgdata, "postmaster.pid"), "utf8")
  } catch {
    return undefined
  }
  const lines = text.split("\n")
  const pid = Number(lines[0])
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  return { pid, port: Number(lines[3]), status: (lines[7] ?? "").trim() }
}

export const ownerFile = (dataDir: string, pid: number) => path.join(dataDir, `owner.${pid}`)

export const removeStaleOwnerFiles = async (dataDir: string): Promise<void> => {
  for (const name of await fs.readdir(dataDir)) {
    const m = /^owner\.(\d+)$/.exec(name)
    if (m !== null && !isAlive(Number(m[1]))) await fs.rm(path.join(dataDir, name), { force: true })
  }
}

export const initialise = async (
  binaries: Binaries,
  dataDir: string,
  pgdata: string,
  password: string,
  runAs: RunAs,
  log: Log
): Promise<void> => {
  if (existsSync(pgdata)) {
    log(`removing ${pgdata}: an earlier initialisation did not finish`)
    await fs.rm(pgdata, { recursive: true, force: true })
  }
  await preparePgdata(pgdata, runAs, log)
  const pwfile = path.join(dataDir, `.initdb-pw-${process.pid}`)
  await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 })
  try {
    if (runAs.switchUser) await fs.chown(pwfile, runAs.uid, runAs.gid)
    const started = Date.now()
    const result = await run(
      binaries.initdb,
      [
        `--pgdata=${pgdata}`,
        `--username=${SUPERUSER}`,
        `--pwfile=${pwfile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-instructions"
      ],
      runAs,
      120_000
    )
    if (result.code !== 0)
      throw new Error(
        `initdb failed (exit ${result.code ?? result.signal}) for ${pgdata}:\n${result.output.trim().split("\n").slice(-15).join("\n")}`
      )
    log(`initialised a new cluster in ${pgdata} (${Date.now() - started} ms)`)
  } finally {
    await fs.rm(pwfile, { force: true })
  }
  await fs.writeFile(path.join(dataDir, ".initialized"), `${new Date().toISOString()}\n`)
}

export const readOrCreatePassword = async (passwordFile: string, create: boolean): Promise<string> => {
  try {
    const text = (await fs.readFile(passwordFile, "utf8")).trim()
    if (text.length > 0) return text
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e
  }
  if (!create)
    throw new Error(
      `${passwordFile} is missing, so the cluster's password is unknown: delete ${path.dirname(passwordFile)} to start from an empty cluster.`
    )
  const password = randomBytes(24).toString("base64url")
  await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
  await fs.chmod(passwordFile, 0o600)
  return password
}
