/**
 * Who the server runs as (the current user, or as root the OS user `postgres`, created when
 * missing since PostgreSQL refuses to run as root) and whether that user can traverse the folders
 * of the binaries and the data directory.
 */
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import type { Stats } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { errnoCode, message, SUPERUSER, type Log, type RunAs } from "./common.ts"

export type { RunAs } from "./common.ts"
import { execText } from "./processes.ts"

export const resolveRunAs = async (log: Log): Promise<RunAs> => {
  const uid = process.getuid?.() ?? -1
  const gid = process.getgid?.() ?? -1
  if (uid !== 0) return { uid, gid, name: os.userInfo().username, switchUser: false }
  const lookup = async () => {
    const [u, g] = await Promise.all([execText("id", ["-u", SUPERUSER]), execText("id", ["-g", SUPERUSER])])
    return { uid: Number(u), gid: Number(g), name: SUPERUSER, switchUser: true }
  }
  try {
    return await lookup()
  } catch {
    // PostgreSQL refuses to run as root: create the OS user it runs as (what the package's
    // `createPostgresUser: true` does).
    const groupExists = await execText("getent", ["group", SUPERUSER]).then(
      () => true,
      () => false
    )
    try {
      await execText("useradd", [
        "--system",
        ...(groupExists ? ["--gid", SUPERUSER] : ["--user-group"]),
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        SUPERUSER
      ])
    } catch (e) {
      throw new Error(
        `running as root, PostgreSQL must run as another OS user, and creating the user "${SUPERUSER}" failed: ${message(e)}`
      )
    }
    log(`created the OS user "${SUPERUSER}" to run PostgreSQL (it refuses to run as root)`)
    return lookup()
  }
}

/** Whether <runAs> may use a directory (x) or file (r/x) with these stats, by mode bits. */
export const permits = (st: Stats, runAs: RunAs, bits: number): boolean => {
  if (runAs.uid === 0) return true
  const granted = st.uid === runAs.uid ? (st.mode >> 6) & 7 : st.gid === runAs.gid ? (st.mode >> 3) & 7 : st.mode & 7
  return (granted & bits) === bits
}

/** The deepest existing folder of <target> (itself when it exists), with symlinks resolved. */
export const existingRealPath = async (target: string): Promise<string> => {
  let current = target
  for (;;) {
    try {
      return await fs.realpath(current)
    } catch (e) {
      if (errnoCode(e) !== "ENOENT") throw e
      const parent = path.dirname(current)
      if (parent === current) throw e
      current = parent
    }
  }
}

/** The first folder of <dir> and its ancestors (root first) that <runAs> cannot traverse. */
export const firstBlockedFolder = async (
  dir: string,
  runAs: RunAs
): Promise<{ folder: string; st: Stats } | undefined> => {
  if (runAs.uid === 0) return undefined
  const real = await existingRealPath(dir)
  const chain: Array<string> = []
  for (let current = real; ; current = path.dirname(current)) {
    chain.unshift(current)
    if (path.dirname(current) === current) break
  }
  for (const folder of chain) {
    const st = await fs.stat(folder)
    if (!permits(st, runAs, 1)) return { folder, st }
  }
  return undefined
}

export const describeBlocked = (b: { folder: string; st: Stats }): string =>
  `${b.folder} (mode ${(b.st.mode & 0o777).toString(8)}, owner uid ${b.st.uid})`

export const shortHash = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, 12)

/** Creates <dir> and missing parents with mode 755 whatever the umask. */
export const mkdirTraversable = async (dir: string): Promise<void> => {
  const missing: Array<string> = []
  for (let current = dir; !existsSync(current); current = path.dirname(current)) missing.unshift(current)
  for (const folder of missing) {
    await fs.mkdir(folder).catch((e: unknown) => {
      if (errnoCode(e) !== "EEXIST") throw e
    })
    await fs.chmod(folder, 0o755)
  }
}
