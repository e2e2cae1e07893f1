/**
 * `optimizer serve --workers N` as an operator runs it: N HTTP processes on one port, a worker that
 * dies replaced, SIGTERM stopping them all, a bad count refused.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "./support/database.ts"
import { freePort } from "./support/ports.ts"

const BIN = fileURLToPath(new URL("../packages/adapters-cli/bin/optimizer.js", import.meta.url))

let db: TestDatabase
const started: Array<ChildProcess> = []

beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await db?.drop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const until = async <A>(what: string, probe: () => A | undefined | Promise<A | undefined>, ms = 30_000): Promise<A> => {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

/** The pids of the primary's child processes (its HTTP workers). */
const workerPids = (primary: number): Promise<Array<number>> =>
  new Promise((resolve) =>
    execFile("ps", ["--ppid", String(primary), "-o", "pid="], (_error, stdout) =>
      resolve(
        stdout
          .split("\n")
          .map((l) => Number(l.trim()))
          .filter((n) => n > 0)
      )
    )
  )

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** GET on a connection of its own (no keep-alive), so the primary hands each request to a worker in turn. */
const health = async (port: number): Promise<number> =>
  (await fetch(`http://127.0.0.1:${port}/health`, { headers: { connection: "close" } })).status

describe("optimizer serve --workers", () => {
  it("runs N HTTP processes on one port, replaces one that dies, and stops them all on SIGTERM", async () => {
    const port = await freePort()
    const child = spawn(process.execPath, [BIN, "serve", "--workers", "2"], {
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: db.url, PORT: String(port), LOG_LEVEL: "Warn" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    started.push(child)
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))

    await until("two workers listening", () => ((stdout.match(/listening on/g) ?? []).length >= 2 ? true : undefined))
    expect(stderr).toContain("serving HTTP with 2 worker processes")
    const workers = await workerPids(child.pid!)
    expect(workers).toHaveLength(2)
    for (let i = 0; i < 6; i++) expect(await health(port)).toBe(200)

    // A worker killed the hard way (an OOM kill) is replaced; the port keeps answering.
    process.kill(workers[0]!, "SIGKILL")
    const replaced = await until("a replacement worker", async () => {
      const now = await workerPids(child.pid!)
      return now.length === 2 && !now.includes(workers[0]!) ? now : undefined
    })
    expect(replaced).toContain(workers[1])
    expect(stderr).toMatch(new RegExp(`HTTP worker ${workers[0]} exited \\(signal SIGKILL\\); starting another`))
    await until("the replacement listening", () =>
      (stdout.match(/listening on/g) ?? []).length >= 3 ? true : undefined
    )
    for (let i = 0; i < 4; i++) expect(await health(port)).toBe(200)

    // SIGTERM to the primary: the workers drain and exit, then the primary.
    child.kill("SIGTERM")
    expect(await Promise.race([exited, sleep(25_000).then(() => "still running")])).toBe(0)
    for (const pid of replaced) expect(isAlive(pid)).toBe(false)
  }, 60_000)

  it("refuses a worker count that is not a whole number from 1 to 64", async () => {
    const run = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [BIN, "serve", "--workers", "0"],
        { env: { PATH: process.env.PATH ?? "", DATABASE_URL: db.url, LOG_LEVEL: "Warn" }, timeout: 30_000 },
        (error, _stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stderr })
      )
    )
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("--workers must be a whole number from 1 to 64, got 0")
  })
})
