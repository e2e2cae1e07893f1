/**
 * The embedded PostgreSQL of the quick start, for real: a new cluster, a warm start, a second
 * start that reuses the running server, a server left behind by a SIGKILLed process, a data
 * directory under a folder that `postgres` cannot traverse (as root), and a port already taken.
 */
import { spawn } from "node:child_process"
import { existsSync, readFileSync, statSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import pg from "pg"
import { afterAll, describe, expect, it } from "vitest"
import { freePort } from "../../../test/support/ports.ts"
import { isPortInUse, startEmbeddedPostgres } from "../src/index.ts"

const modulePath = fileURLToPath(new URL("../src/index.ts", import.meta.url))
const isRoot = process.getuid?.() === 0
const TIMEOUT = 180_000

const lines: Array<string> = []
const log = (line: string) => void lines.push(line)

const cleanup: Array<string> = []
afterAll(async () => {
  for (const dir of cleanup) await fs.rm(dir, { recursive: true, force: true })
})

/** A temporary folder that the OS user `postgres` can traverse (mkdtemp makes it 700). */
const tempDir = async (mode = 0o755): Promise<string> => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "optimizer-embedded-pg-"))
  await fs.chmod(dir, mode)
  cleanup.push(dir)
  return dir
}

const query = async (url: string, sql: string): Promise<Array<Record<string, unknown>>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(sql)).rows as Array<Record<string, unknown>>
  } finally {
    await client.end()
  }
}

const postmasterPid = (dataDir: string): number =>
  Number(readFileSync(path.join(dataDir, "pgdata", "postmaster.pid"), "utf8").split("\n")[0])

/** Running, and not a zombie (exited, not yet reaped by its new parent). */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

describe("startEmbeddedPostgres", () => {
  it(
    "initialises a cluster, serves queries, stops, then starts warm with the same password",
    async () => {
      const dataDir = path.join(await tempDir(), "pg")
      const port = await freePort()

      let t = performance.now()
      const first = await startEmbeddedPostgres({ dataDir, port, log })
      const coldMs = performance.now() - t
      expect(first.reused).toBe(false)
      expect(first.dataDir).toBe(dataDir)
      expect(first.url).toMatch(new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${port}/optimizer$`))
      const [row] = await query(first.url, "SELECT current_database() AS db, current_user AS who, 1 + 1 AS two")
      expect(row).toEqual({ db: "optimizer", who: "postgres", two: 2 })
      await query(first.url, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")

      const passwordFile = path.join(dataDir, "password")
      expect(statSync(passwordFile).mode & 0o777).toBe(0o600)
      const password = readFileSync(passwordFile, "utf8").trim()
      expect(lines.join("\n")).not.toContain(password)

      t = performance.now()
      await first.stop()
      const stopMs = performance.now() - t
      await first.stop() // idempotent
      expect(await isPortInUse(port)).toBe(false)
      expect(existsSync(path.join(dataDir, "pgdata", "postmaster.pid"))).toBe(false)

      t = performance.now()
      const warm = await startEmbeddedPostgres({ dataDir, port, log })
      const warmMs = performance.now() - t
      expect(warm.url).toBe(first.url)
      expect(await query(warm.url, "SELECT n FROM kept")).toEqual([{ n: 42 }])
      await warm.stop()
      expect(await isPortInUse(port)).toBe(false)
      console.info(
        `embedded PostgreSQL: init + start ${coldMs.toFixed(0)} ms, stop ${stopMs.toFixed(0)} ms, warm start ${warmMs.toFixed(0)} ms`
      )
    },
    TIMEOUT
  )

  it(
    "reuses a server that this or another live process runs, and leaves it running on stop",
    async () => {
      const dataDir = path.join(await tempDir(), "pg")
      const port = await freePort()
      const owner = await startEmbeddedPostgres({ dataDir, port, log })
      try {
        const pid = postmasterPid(dataDir)
        const second = await startEmbeddedPostgres({ dataDir, port, log })
        expect(second.reused).toBe(true)
        expect(second.url).toBe(owner.url)
        await second.stop()
        expect(isAlive(pid)).toBe(true)
        expect(await query(owner.url, "SELECT 1 AS one")).toEqual([{ one: 1 }])
      } finally {
        await owner.stop()
      }
      expect(await isPortInUse(port)).toBe(false)
    },
    TIMEOUT
  )

  it(
    "stops a server left running by a SIGKILLed process and starts afresh",
    async () => {
      const dataDir = path.join(await tempDir(), "pg")
      const port = await freePort()
      const script = [
        `import { startEmbeddedPostgres } from ${JSON.stringify(pathToFileURL(modulePath).href)}`,
        `await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: ${port}, log: () => {} })`,
        `process.stdout.write("READY\\n")`,
        `setInterval(() => {}, 1000)`
      ].join("\n")
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes("READY")) resolve()
        })
        child.once("exit", (code) => reject(new Error(`the child exited (${code}) before READY:\n${output}`)))
      })
      const orphan = postmasterPid(dataDir)
      child.kill("SIGKILL")
      await exited
      expect(isAlive(orphan)).toBe(true) // the postmaster outlives the process that started it

      const server = await startEmbeddedPostgres({ dataDir, port, log })
      try {
        expect(server.reused).toBe(false)
        expect(isAlive(orphan)).toBe(false)
        expect(postmasterPid(dataDir)).not.toBe(orphan)
        expect(await query(server.url, "SELECT current_database() AS db")).toEqual([{ db: "optimizer" }])
        expect(lines.some((l) => l.includes("left running"))).toBe(true)
      } finally {
        await server.stop()
      }
    },
    TIMEOUT
  )

  it.skipIf(!isRoot)(
    "as root, moves a data directory that `postgres` cannot reach to a traversable folder",
    async () => {
      const locked = await tempDir(0o700)
      const dataDir = path.join(locked, "nested", "pg")
      const port = await freePort()
      const server = await startEmbeddedPostgres({ dataDir, port, log })
      cleanup.push(server.dataDir)
      try {
        expect(server.dataDir).not.toBe(dataDir)
        expect(server.dataDir.startsWith("/var/tmp/optimizer-")).toBe(true)
        expect(lines.some((l) => l.includes(locked) && l.includes(server.dataDir))).toBe(true)
        expect(await query(server.url, "SELECT 1 AS one")).toEqual([{ one: 1 }])
      } finally {
        await server.stop()
      }
      // the same requested folder maps to the same place: a warm start
      const again = await startEmbeddedPostgres({ dataDir, port, log })
      expect(again.dataDir).toBe(server.dataDir)
      await again.stop()
    },
    TIMEOUT
  )

  it(
    "says so when the port is taken by another program",
    async () => {
      const dataDir = path.join(await tempDir(), "pg")
      const blocker = net.createServer()
      await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
      const { port } = blocker.address() as net.AddressInfo
      try {
        expect(await isPortInUse(port)).toBe(true)
        await expect(startEmbeddedPostgres({ dataDir, port, log })).rejects.toThrow(
          `port ${port} on 127.0.0.1 is already in use`
        )
      } finally {
        await new Promise<void>((resolve) => blocker.close(() => resolve()))
      }
    },
    TIMEOUT
  )
})
