/**
 * `npx optimizer doctor` on broken machines, as an operator runs it (the real CLI process): a wrong
 * DATABASE_URL, an unmigrated database and a file store that cannot be written are each named with
 * their fix, and exit 1; a sound setup exits 0 and sees its worker and queues.
 *
 * The read-only store is a path under a regular file (STORAGE_DIR=<file>/store): no user, root
 * included, can create a folder there (ENOTDIR), so the test holds when CI runs as root.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { startFakeHlr } from "./fakes/hlrlookup.ts"
import { startFakeMessageWhiz } from "./fakes/messagewhiz.ts"
import { startFauxqs } from "./support/fauxqs.ts"
import { runCli } from "./support/cli.ts"
import { createTestDatabase, type TestDatabase } from "./support/database.ts"
import { adminUrl, dropDatabase, withDatabase } from "./support/pgUrls.ts"
import { freePort } from "./support/ports.ts"
import { startTestWorker } from "./support/worker.ts"

interface Check {
  readonly check: string
  readonly status: "ok" | "warn" | "fail"
  readonly message: string
  readonly fix?: string
}

let dir: string
let db: TestDatabase
const emptyName = `optimizer_t_doctor_${process.pid}`
let emptyUrl: string

const doctor = async (env: Record<string, string>) => {
  const run = await runCli(["doctor", "--json"], { env, cwd: dir })
  const body = JSON.parse(run.stdout) as { ok: boolean; checks: ReadonlyArray<Check> }
  const byName = (name: string) => body.checks.find((c) => c.check === name)
  return { ...run, body, byName }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "optimizer-doctor-"))
  db = await createTestDatabase()
  const server = inject("pgServerUrl")
  const admin = new pg.Client({ connectionString: adminUrl(server) })
  await admin.connect()
  await admin.query(`DROP DATABASE IF EXISTS ${emptyName}`)
  await admin.query(`CREATE DATABASE ${emptyName}`)
  await admin.end()
  emptyUrl = withDatabase(server, emptyName)
})
afterAll(async () => {
  await db?.drop()
  await dropDatabase(inject("pgServerUrl"), emptyName)
  rmSync(dir, { recursive: true, force: true })
})

describe("optimizer doctor", () => {
  it("a wrong DATABASE_URL and a store that cannot be written: both named with their fix, exit 1", async () => {
    writeFileSync(path.join(dir, "a-file"), "not a folder\n")
    const port = await freePort()
    const run = await doctor({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/nowhere`,
      STORAGE_DIR: path.join(dir, "a-file", "store")
    })
    expect(run.code).toBe(1)
    expect(run.body.ok).toBe(false)
    expect(run.byName("node")?.status).toBe("ok")
    expect(run.byName("configuration")?.status).toBe("ok")
    expect(run.byName("database")).toMatchObject({ status: "fail", message: expect.stringMatching(/ECONNREFUSED/) })
    expect(run.byName("database")?.fix).toMatch(/DATABASE_URL/)
    expect(run.byName("file store")).toMatchObject({ status: "fail", message: expect.stringMatching(/ENOTDIR/) })
    expect(run.byName("file store")?.fix).toMatch(/STORAGE_DIR/)
    // Integrations without settings are warnings naming what to set, not failures.
    expect(run.byName("Voluum")).toMatchObject({ status: "warn", fix: expect.stringMatching(/VOLUUM_ACCESS_ID/) })

    // The text form says the same, each fix under its problem.
    const text = await runCli(["doctor"], {
      env: {
        DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/nowhere`,
        STORAGE_DIR: path.join(dir, "a-file", "store")
      },
      cwd: dir
    })
    expect(text.code).toBe(1)
    expect(text.stdout).toMatch(/FAIL\s+database\s+cannot reach 127\.0\.0\.1:\d+\/nowhere/)
    expect(text.stdout).toMatch(/fix: check DATABASE_URL/)
    expect(text.stdout).toMatch(/2 problems/)
  })

  it("an unmigrated database and a malformed variable: named with their fix", async () => {
    const run = await doctor({ DATABASE_URL: emptyUrl, STORAGE_DIR: path.join(dir, "files"), PORT: "eighty" })
    expect(run.code).toBe(1)
    expect(run.byName("configuration")).toMatchObject({ status: "fail", message: expect.stringMatching(/PORT/) })
    expect(run.byName("configuration")?.fix).toMatch(/PORT/)
    expect(run.byName("database")?.status).toBe("ok")
    expect(run.byName("migrations")).toMatchObject({
      status: "fail",
      message: expect.stringMatching(/not migrated/),
      fix: "npx optimizer migrate"
    })
    expect(run.byName("file store")?.status).toBe("ok")
  })

  it("a sound setup: exit 0 (warnings only); a running worker is seen", async () => {
    const env = { DATABASE_URL: db.url, STORAGE_DIR: path.join(dir, "files") }
    const alone = await doctor(env)
    expect(alone.code, alone.stdout).toBe(0)
    expect(alone.body.ok).toBe(true)
    expect(alone.byName("migrations")?.status).toBe("ok")
    expect(alone.byName("workers")).toMatchObject({ status: "warn", fix: expect.stringMatching(/optimizer worker/) })
    expect(alone.byName("queues")?.status).toBe("ok")
    // the file store's probe leaves nothing behind
    expect(readdirSync(env.STORAGE_DIR)).toEqual([])

    const worker = await startTestWorker(env)
    try {
      const withWorker = await doctor(env)
      expect(withWorker.code).toBe(0)
      expect(withWorker.byName("workers")?.status).toBe("ok")
    } finally {
      await worker.close()
    }
  })

  it("--online reaches MessageWhiz with its key: a refused key is a failure naming MMD_API_KEY", async () => {
    const mw = await startFakeMessageWhiz({ apiKey: "the-right-key" })
    try {
      const env = { DATABASE_URL: db.url, STORAGE_DIR: path.join(dir, "files"), MMD_API_URL: mw.url }
      const offline = await doctor({ ...env, MMD_API_KEY: "a-wrong-key" })
      expect(offline.byName("MessageWhiz")?.status).toBe("ok")
      expect(offline.byName("MessageWhiz online")).toBeUndefined()

      const refused = await runCli(["doctor", "--online", "--json"], {
        env: { ...env, MMD_API_KEY: "a-wrong-key" },
        cwd: dir
      })
      expect(refused.code).toBe(1)
      const checks = (JSON.parse(refused.stdout) as { checks: ReadonlyArray<Check> }).checks
      expect(checks.find((c) => c.check === "MessageWhiz online")).toMatchObject({
        status: "fail",
        message: expect.stringMatching(/401/),
        fix: expect.stringMatching(/MMD_API_KEY/)
      })

      const accepted = await runCli(["doctor", "--online", "--json"], {
        env: { ...env, MMD_API_KEY: "the-right-key" },
        cwd: dir
      })
      expect(accepted.code, accepted.stdout).toBe(0)
      expect(
        (JSON.parse(accepted.stdout) as { checks: ReadonlyArray<Check> }).checks.find(
          (c) => c.check === "MessageWhiz online"
        )
      ).toMatchObject({ status: "ok" })
    } finally {
      await mw.close()
    }
  })

  it("--online reads hlrlookup's batches with the key and secret, and the SQS queue's attributes", async () => {
    const hlr = await startFakeHlr({ apiKey: "hlr-key", secret: "hlr-secret" })
    const aws = await startFauxqs()
    try {
      const withDlq = await aws.createQueueWithDeadLetter()
      const plain = await aws.createQueue()
      const env = {
        DATABASE_URL: db.url,
        STORAGE_DIR: path.join(dir, "files"),
        HLR_API_URL: hlr.url,
        HLRLOOKUP_APIKEY: "hlr-key",
        SQS_ENDPOINT: aws.endpoint,
        AWS_REGION: aws.region,
        AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey
      }
      const online = async (extra: Record<string, string>) => {
        const run = await runCli(["doctor", "--online", "--json"], { env: { ...env, ...extra }, cwd: dir })
        const checks = (JSON.parse(run.stdout) as { checks: ReadonlyArray<Check> }).checks
        return { code: run.code, byName: (name: string) => checks.find((c) => c.check === name) }
      }

      const refused = await online({
        HLRLOOKUP_SECRET: "a-wrong-secret",
        SQS_QUEUE_URL: `${aws.endpoint}/000000000000/missing`
      })
      expect(refused.code).toBe(1)
      expect(refused.byName("HLR (hlrlookup.com) online")).toMatchObject({
        status: "fail",
        message: expect.stringMatching(/401/),
        fix: expect.stringMatching(/HLRLOOKUP_SECRET/)
      })
      expect(refused.byName("SQS live events online")).toMatchObject({
        status: "fail",
        fix: expect.stringMatching(/SQS_QUEUE_URL/)
      })

      const accepted = await online({ HLRLOOKUP_SECRET: "hlr-secret", SQS_QUEUE_URL: withDlq.queueUrl })
      expect(accepted.byName("HLR (hlrlookup.com) online")).toMatchObject({
        status: "ok",
        message: expect.stringMatching(/0 batches/)
      })
      expect(accepted.byName("SQS live events online")).toMatchObject({
        status: "ok",
        message: expect.stringMatching(/dead-letter/)
      })

      const noDlq = await online({ HLRLOOKUP_SECRET: "hlr-secret", SQS_QUEUE_URL: plain.queueUrl })
      expect(noDlq.byName("SQS live events online")).toMatchObject({
        status: "warn",
        fix: expect.stringMatching(/RedrivePolicy/)
      })
    } finally {
      await aws.stop()
      await hlr.close()
    }
  })
})
