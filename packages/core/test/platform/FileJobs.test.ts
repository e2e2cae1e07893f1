/**
 * The shared file-job workflow against a real PostgreSQL database: each run writes outputs of its
 * own, so a job presumed dead but only slow (its run failed, the file started again) cannot write
 * over the new run's output, and what it wrote is deleted when its fenced finish is refused; a run
 * that finishes deletes the outputs of the earlier run the row no longer names.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { Effect, Layer, ManagedRuntime, References, Schema } from "effect"
import { SqlClient } from "effect/sql"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts"
import { AppConfig } from "../../src/platform/Config.ts"
import { DatabaseLive } from "../../src/platform/Database.ts"
import { NotFound, ValidationError } from "../../src/platform/Errors.ts"
import { makeFileJobs, runOutputKey } from "../../src/platform/FileJobs.ts"
import { FileStore } from "../../src/platform/FileStore.ts"
import { Jobs } from "../../src/platform/Jobs.ts"
import { TEST_JOBS_OPTIONS } from "./fixtures/jobsTestOptions.ts"

const Row = Schema.Struct({
  id: Schema.String,
  status: Schema.String,
  processing_started_at: Schema.NullOr(Schema.Date),
  job_id: Schema.NullOr(Schema.String),
  raw_file_path: Schema.NullOr(Schema.String),
  encrypted_file_path: Schema.NullOr(Schema.String)
})

// A kind over the encryption files' table, with a queue no worker takes: the test plays the jobs.
const makeKind = makeFileJobs({
  table: "uploaded_encryption_files",
  queue: "file-jobs-test",
  name: "FileJobsTest",
  columns: "id::text AS id, status, processing_started_at, job_id::text AS job_id, raw_file_path, encrypted_file_path",
  row: Row,
  startFrom: ["uploaded", "failed", "processed"],
  storedKeys: (row) => [row.raw_file_path, row.encrypted_file_path],
  messages: {
    notFound: (id) => `File ${id} not found`,
    conflict: "Another file is already processing",
    notEligible: (id, status) =>
      status === undefined
        ? new NotFound({ message: `File ${id} not found` })
        : new ValidationError({ message: `not eligible (${status})`, field: "file_id" }),
    notProcessed: () => "not processed",
    queueFailed: "could not queue"
  }
})

let db: TestDatabase
let client: pg.Client
let storageDir: string
let runtime: ManagedRuntime.ManagedRuntime<FileStore | Jobs | SqlClient.SqlClient | AppConfig, unknown>

beforeAll(async () => {
  db = await createTestDatabase()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
  storageDir = mkdtempSync(path.join(tmpdir(), "optimizer-filejobs-"))
  runtime = ManagedRuntime.make(
    Layer.mergeAll(Jobs.layerWith(TEST_JOBS_OPTIONS), FileStore.layerLocal(storageDir)).pipe(
      Layer.provideMerge(DatabaseLive),
      Layer.provideMerge(AppConfig.layerFrom({ DATABASE_URL: db.url })),
      Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )
})

afterAll(async () => {
  await runtime?.dispose()
  await client?.end()
  await db?.drop()
  rmSync(storageDir, { recursive: true, force: true })
})

const stored = (): Array<string> =>
  readdirSync(storageDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith("."))
    .map((e) => path.relative(storageDir, path.join(e.parentPath, e.name)))
    .sort()

/** Writes a run's output as the kind's job would. */
const writeOutput = (id: string, run: Date, text: string) =>
  Effect.gen(function* () {
    const key = runOutputKey("processed_encrypted", id, run)
    yield* FileStore.use((files) => files.put(key, text))
    return key
  })

describe("a file's runs and their outputs", () => {
  it("a slow job of a failed run cannot overwrite the next run's output; its own is deleted", async () => {
    const id = (
      await client.query<{ id: string }>(
        "INSERT INTO uploaded_encryption_files (original_filename, raw_file_path) VALUES ('a.csv', NULL) RETURNING id::text AS id"
      )
    ).rows[0]!.id
    const result = await runtime.runPromise(
      Effect.gen(function* () {
        const fileJobs = yield* makeKind
        const sql = yield* SqlClient.SqlClient
        const runOf = (jobId: string) =>
          sql<{
            run: Date
          }>`SELECT processing_started_at AS run FROM uploaded_encryption_files WHERE id = ${id}::uuid`.pipe(
            Effect.map((rows) => ({ jobId, run: rows[0]!.run }))
          )

        // run A starts; its worker goes quiet and the run is marked failed (as reconcile does)
        const a = yield* runOf((yield* fileJobs.start(id, {})).job_id)
        const keyA = yield* writeOutput(id, a.run, "from run A\n")
        yield* sql`UPDATE uploaded_encryption_files SET status = 'failed' WHERE id = ${id}::uuid`
        yield* Effect.sleep("5 millis") // runs are stamped in milliseconds

        // run B starts and finishes
        const b = yield* runOf((yield* fileJobs.start(id, {})).job_id)
        const keyB = yield* writeOutput(id, b.run, "from run B\n")
        const finishedB = yield* fileJobs.finish(id, b.run, sql`, encrypted_file_path = ${keyB}`, [keyB])

        // run A's job wakes up and tries to finish
        const finishedA = yield* fileJobs.finish(id, a.run, sql`, encrypted_file_path = ${keyA}`, [keyA])
        return { keyA, keyB, finishedA, finishedB }
      })
    )
    expect(result.keyA).not.toBe(result.keyB)
    expect(result.finishedB).toBe(true)
    expect(result.finishedA).toBe(false)
    const row = (
      await client.query("SELECT status, encrypted_file_path FROM uploaded_encryption_files WHERE id = $1", [id])
    ).rows[0]
    expect(row).toEqual({ status: "processed", encrypted_file_path: result.keyB })
    // run A's output is gone, run B's is there and holds what run B wrote
    expect(stored()).toEqual([result.keyB])
    expect(readFileSync(path.join(storageDir, result.keyB), "utf8")).toBe("from run B\n")

    // a third run (the file processed again) finishes: run B's output, no longer named, is deleted
    const keyC = await runtime.runPromise(
      Effect.gen(function* () {
        const fileJobs = yield* makeKind
        const sql = yield* SqlClient.SqlClient
        yield* Effect.sleep("5 millis")
        yield* fileJobs.start(id, {})
        const rows = yield* sql<{
          run: Date
        }>`SELECT processing_started_at AS run FROM uploaded_encryption_files WHERE id = ${id}::uuid`
        const run = rows[0]!.run
        const key = yield* writeOutput(id, run, "from run C\n")
        expect(yield* fileJobs.finish(id, run, sql`, encrypted_file_path = ${key}`, [key])).toBe(true)
        return key
      })
    )
    expect(stored()).toEqual([keyC])
  })
})
