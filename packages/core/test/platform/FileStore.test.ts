/**
 * One suite, run against both backends: a local folder, and S3 through fauxqs over real HTTP on
 * loopback (in a child process, so this process's memory figures are the FileStore's alone).
 */
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3"
import { assert, describe, layer } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Stream } from "effect"
import { createHash, randomUUID } from "node:crypto"
import * as http from "node:http"
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { AppConfig } from "../../src/platform/Config.ts"
import { StorageError } from "../../src/platform/Errors.ts"
import { FileStore, localFileWriter } from "../../src/platform/FileStore.ts"
import { startFauxqs } from "../../../../test/support/fauxqs.ts"

const MiB = 1024 * 1024

/** `totalBytes` of deterministic bytes, made only as they are pulled, in fresh 64 KiB chunks. */
async function* generatedBody(totalBytes: number, hash?: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  const chunkSize = 64 * 1024
  for (let offset = 0, index = 0; offset < totalBytes; offset += chunkSize, index++) {
    const chunk = Buffer.alloc(Math.min(chunkSize, totalBytes - offset), index % 251)
    chunk.writeUInt32BE(index, 0)
    hash?.update(chunk)
    yield chunk
  }
}

/** An endless body that counts what was pulled from it. */
async function* endlessBody(pulled: { bytes: number }): AsyncGenerator<Uint8Array> {
  for (;;) {
    pulled.bytes += 64 * 1024
    yield Buffer.alloc(64 * 1024, 97)
  }
}

// A collection before each sample makes RSS show what is retained, not garbage not yet collected.
setFlagsFromString("--expose-gc")
const collectGarbage = runInNewContext("gc") as () => void

/** The highest RSS (after a collection) seen above the level at creation; sample at most every few MiB. */
const rssWatcher = () => {
  collectGarbage()
  const baseline = process.memoryUsage().rss
  let peak = baseline
  return {
    sample: () => {
      collectGarbage()
      const rss = process.memoryUsage().rss
      if (rss > peak) peak = rss
    },
    growthMiB: () => Math.round(((peak - baseline) / MiB) * 10) / 10
  }
}

const textOf = (source: AsyncIterable<Uint8Array>) =>
  Effect.promise(async () => {
    const chunks: Array<Uint8Array> = []
    for await (const chunk of source) chunks.push(chunk)
    return Buffer.concat(chunks).toString("utf8")
  })

const failureTag = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.flip,
    Effect.map((e) => e._tag)
  )

/** What a backend-specific test may need to look behind the interface. */
interface Backdoor {
  /** The stored bytes of `key`, read without FileStore; undefined when absent. */
  readonly rawRead: (key: string) => Promise<Buffer | undefined>
  /** Every stored name, including anything half-written. */
  readonly rawNames: () => Promise<Array<string>>
}

const fileStoreSuite = (it: Vitest.MethodsNonLive<FileStore>, backdoor: () => Backdoor) => {
  it.effect("stores text and reads it back in every form", () =>
    Effect.gen(function* () {
      const files = yield* FileStore
      const text = "phone\n+447700900001\n+447700900002\nNiño ✓\n"
      const stored = yield* files.put("raw/round-trip.csv", text, { contentType: "text/csv" })
      assert.deepStrictEqual(stored, { key: "raw/round-trip.csv", bytes: Buffer.byteLength(text) })
      assert.strictEqual(yield* files.readText("raw/round-trip.csv"), text)
      assert.strictEqual(yield* textOf(yield* files.get("raw/round-trip.csv")), text)
      const chunks = yield* Stream.runCollect(files.stream("raw/round-trip.csv"))
      assert.strictEqual(Buffer.concat(chunks).toString("utf8"), text)
      const web = yield* files.webStream("raw/round-trip.csv")
      assert.strictEqual(yield* Effect.promise(() => new Response(web).text()), text)
      assert.strictEqual(yield* files.size("raw/round-trip.csv"), Buffer.byteLength(text))
      assert.isTrue(yield* files.exists("raw/round-trip.csv"))
      const raw = yield* Effect.promise(() => backdoor().rawRead("raw/round-trip.csv"))
      assert.strictEqual(raw?.toString("utf8"), text)
    })
  )

  it.effect("accepts bytes, chunk iterables and web streams, and replaces an existing file", () =>
    Effect.gen(function* () {
      const files = yield* FileStore
      yield* files.put("raw/replace.csv", new TextEncoder().encode("first version, longer than the second\n"))
      assert.strictEqual(yield* files.readText("raw/replace.csv"), "first version, longer than the second\n")
      const web = new Response("second\n").body!
      yield* files.put("raw/replace.csv", web)
      assert.strictEqual(yield* files.readText("raw/replace.csv"), "second\n")
      yield* files.put(
        "raw/replace.csv",
        (async function* () {
          yield "a,"
          yield new TextEncoder().encode("b\n")
        })()
      )
      assert.strictEqual(yield* files.readText("raw/replace.csv"), "a,b\n")
      const empty = yield* files.put("raw/empty.csv", "")
      assert.strictEqual(empty.bytes, 0)
      assert.strictEqual(yield* files.readText("raw/empty.csv"), "")
      assert.strictEqual(yield* files.size("raw/empty.csv"), 0)
    })
  )

  it.effect(
    "round-trips a lazily generated 50 MiB body with flat memory",
    () =>
      Effect.gen(function* () {
        const files = yield* FileStore
        const size = 50 * MiB
        const written = createHash("sha256")
        const memory = rssWatcher()
        const started = performance.now()
        const body = (async function* () {
          let index = 0
          for await (const chunk of generatedBody(size, written)) {
            if (index++ % 64 === 0) memory.sample() // every 4 MiB
            yield chunk
          }
        })()
        const stored = yield* files.put("processed/big.bin", body, { maxBytes: 100 * MiB })
        const putSeconds = (performance.now() - started) / 1000
        const putGrowth = memory.growthMiB()
        assert.strictEqual(stored.bytes, size)
        assert.strictEqual(yield* files.size("processed/big.bin"), size)

        const read = createHash("sha256")
        let readBytes = 0
        const readStarted = performance.now()
        yield* files.stream("processed/big.bin").pipe(
          Stream.runForEach((chunk) =>
            Effect.sync(() => {
              read.update(chunk)
              const before = readBytes
              readBytes += chunk.byteLength
              if (Math.floor(before / (4 * MiB)) !== Math.floor(readBytes / (4 * MiB))) memory.sample()
            })
          )
        )
        const getSeconds = (performance.now() - readStarted) / 1000
        assert.strictEqual(readBytes, size)
        assert.strictEqual(read.digest("hex"), written.digest("hex"))
        console.log(
          `50 MiB: put ${putSeconds.toFixed(2)} s (peak RSS growth ${putGrowth} MiB), get ${getSeconds.toFixed(2)} s (overall peak RSS growth ${memory.growthMiB()} MiB)`
        )
        // Buffering the body would grow RSS by 50 MiB or more. S3 holds up to three 5 MiB parts (two
        // uploading, one filling) and their copies: ~25 MiB measured, whatever the file size.
        assert.isBelow(memory.growthMiB(), 35)
      }),
    { timeout: 120_000 }
  )

  it.effect("stops reading a body over maxBytes, fails with PayloadTooLarge and stores nothing", () =>
    Effect.gen(function* () {
      const files = yield* FileStore
      const pulled = { bytes: 0 }
      // An endless body: only stopping the read lets this test end.
      const error = yield* files.put("raw/too-large.csv", endlessBody(pulled), { maxBytes: 6 * MiB }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "PayloadTooLarge")
      if (error._tag === "PayloadTooLarge") assert.strictEqual(error.limitBytes, 6 * MiB)
      assert.isAtMost(pulled.bytes, 6 * MiB + 64 * 1024)
      assert.isFalse(yield* files.exists("raw/too-large.csv"))
      assert.deepStrictEqual(yield* files.list("raw/too-large"), [])

      const small = yield* files.put("raw/small-too-large.csv", "0123456789", { maxBytes: 5 }).pipe(Effect.flip)
      assert.strictEqual(small._tag, "PayloadTooLarge")
      assert.isFalse(yield* files.exists("raw/small-too-large.csv"))
      const exact = yield* files.put("raw/exact.csv", "01234", { maxBytes: 5 })
      assert.strictEqual(exact.bytes, 5)

      // A failed replacement keeps the previous file whole.
      yield* files.put("raw/kept.csv", "previous\n")
      const again = yield* files.put("raw/kept.csv", generatedBody(8 * MiB), { maxBytes: 1 * MiB }).pipe(Effect.flip)
      assert.strictEqual(again._tag, "PayloadTooLarge")
      assert.strictEqual(yield* files.readText("raw/kept.csv"), "previous\n")
      const names = yield* Effect.promise(() => backdoor().rawNames())
      assert.deepStrictEqual(
        names.filter((n) => n.includes("too-large") || n.includes("kept")),
        ["raw/kept.csv"]
      )
    })
  )

  it.effect("leaves nothing behind when a put is interrupted", () =>
    Effect.gen(function* () {
      const files = yield* FileStore
      const pulled = { bytes: 0 }
      const fiber = yield* files.put("raw/interrupted.csv", endlessBody(pulled)).pipe(Effect.forkChild)
      while (pulled.bytes < 7 * MiB) yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
      yield* Fiber.interrupt(fiber)
      const stoppedAt = pulled.bytes
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      assert.strictEqual(pulled.bytes, stoppedAt, "the body is no longer read")
      assert.isFalse(yield* files.exists("raw/interrupted.csv"))
      const names = yield* Effect.promise(() => backdoor().rawNames())
      assert.deepStrictEqual(
        names.filter((n) => n.includes("interrupted.csv")),
        []
      )
    })
  )

  it.effect("answers NotFound for a missing file", () =>
    Effect.gen(function* () {
      const files = yield* FileStore
      assert.strictEqual(yield* failureTag(files.get("raw/missing.csv")), "NotFound")
      assert.strictEqual(yield* failureTag(files.readText("raw/missing.csv")), "NotFound")
      assert.strictEqual(yield* failureTag(files.webStream("raw/missing.csv")), "NotFound")
      assert.strictEqual(yield* failureTag(files.size("raw/missing.csv")), "NotFound")
      assert.strictEqual(yield* failureTag(Stream.runDrain(files.stream("raw/missing.csv"))), "NotFound")
      assert.isFalse(yield* files.exists("raw/missing.csv"))
      const notFound = yield* files.get("missing/deeper/file.csv").pipe(Effect.flip)
      assert.strictEqual(notFound.message, "file missing/deeper/file.csv not found")
    })
  )

  it.effect("deletes a file; deleting a missing one is fine", () =>
    Effect.gen(function* () {
      const files = yield* FileStore
      yield* files.put("exports/contacts_20260101.csv", "a\n")
      assert.isTrue(yield* files.exists("exports/contacts_20260101.csv"))
      yield* files.delete("exports/contacts_20260101.csv")
      assert.isFalse(yield* files.exists("exports/contacts_20260101.csv"))
      assert.strictEqual(yield* failureTag(files.get("exports/contacts_20260101.csv")), "NotFound")
      yield* files.delete("exports/contacts_20260101.csv")
      yield* files.delete("exports/never-existed.csv")
    })
  )

  it.effect(
    "lists 1,100 keys by prefix (more than one S3 page)",
    () =>
      Effect.gen(function* () {
        const files = yield* FileStore
        const keys = Array.from({ length: 1100 }, (_, i) => `listing/a/${String(i).padStart(5, "0")}.csv`)
        const started = performance.now()
        yield* Effect.forEach(keys, (key) => files.put(key, "x"), { concurrency: 16, discard: true })
        yield* files.put("listing/b/other.csv", "y")
        yield* files.put("listing-sibling.csv", "z")
        const putSeconds = (performance.now() - started) / 1000
        const listStarted = performance.now()
        const listed = yield* files.list("listing/a/")
        const listSeconds = (performance.now() - listStarted) / 1000
        console.log(`1,100 small puts ${putSeconds.toFixed(2)} s, list ${listSeconds.toFixed(3)} s`)
        assert.deepStrictEqual(listed, keys)
        assert.deepStrictEqual(yield* files.list("listing/a/0109"), [
          "listing/a/01090.csv",
          "listing/a/01091.csv",
          "listing/a/01092.csv",
          "listing/a/01093.csv",
          "listing/a/01094.csv",
          "listing/a/01095.csv",
          "listing/a/01096.csv",
          "listing/a/01097.csv",
          "listing/a/01098.csv",
          "listing/a/01099.csv"
        ])
        assert.deepStrictEqual(yield* files.list("listing/b/"), ["listing/b/other.csv"])
        assert.strictEqual((yield* files.list("listing")).length, 1102)
        assert.deepStrictEqual(yield* files.list("nothing-here/"), [])
      }),
    { timeout: 60_000 }
  )

  it.effect("rejects keys that are not plain relative names", () =>
    Effect.gen(function* () {
      const files = yield* FileStore
      const bad = [
        "",
        "../outside.csv",
        "raw/../../etc/passwd",
        "/etc/passwd",
        "raw//double.csv",
        "raw/./here.csv",
        "raw/",
        ".hidden",
        "raw/.tmp",
        "raw\\windows.csv",
        "raw/with space.csv",
        "raw/ünï.csv",
        "raw/a?b",
        "x".repeat(1025)
      ]
      for (const key of bad) {
        assert.strictEqual(yield* failureTag(files.put(key, "x")), "ValidationError", key)
        assert.strictEqual(yield* failureTag(files.get(key)), "ValidationError", key)
        assert.strictEqual(yield* failureTag(files.exists(key)), "ValidationError", key)
        assert.strictEqual(yield* failureTag(files.delete(key)), "ValidationError", key)
        assert.strictEqual(yield* failureTag(Effect.scoped(files.openWriter(key))), "ValidationError", key)
      }
      for (const prefix of ["../", "/", "raw//", "a/../"]) {
        assert.strictEqual(yield* failureTag(files.list(prefix)), "ValidationError", prefix)
      }
      const error = yield* files.get("../secret").pipe(Effect.flip)
      assert.include(error.message, "invalid file key")
      // Plain names are fine, and the empty prefix lists everything.
      yield* files.put("top-level_file-1.csv", "x")
      assert.include(yield* files.list(""), "top-level_file-1.csv")
    })
  )

  it.effect(
    "writes a million lines through a writer and reads them back",
    () =>
      Effect.gen(function* () {
        const files = yield* FileStore
        const lines = 1_000_000
        const written = createHash("sha256")
        const memory = rssWatcher()
        const started = performance.now()
        const stored = yield* Effect.scoped(
          Effect.gen(function* () {
            const writer = yield* files.openWriter("processed/lines.csv", { contentType: "text/csv" })
            return yield* Effect.promise(async () => {
              await writer.write("phone\n")
              written.update("phone\n")
              for (let i = 0; i < lines; i++) {
                const line = `+447700${String(i).padStart(6, "0")}\n`
                written.update(line)
                await writer.write(line)
                if (i % 100_000 === 0) memory.sample()
              }
              return writer.close()
            })
          })
        )
        const writeSeconds = (performance.now() - started) / 1000
        const expectedBytes = 6 + lines * 14
        assert.deepStrictEqual(stored, { key: "processed/lines.csv", bytes: expectedBytes })
        assert.strictEqual(yield* files.size("processed/lines.csv"), expectedBytes)
        const read = createHash("sha256")
        let newlines = 0
        yield* files.stream("processed/lines.csv").pipe(
          Stream.runForEach((chunk) =>
            Effect.sync(() => {
              read.update(chunk)
              for (const byte of chunk) if (byte === 10) newlines++
            })
          )
        )
        assert.strictEqual(newlines, lines + 1)
        assert.strictEqual(read.digest("hex"), written.digest("hex"))
        console.log(
          `writer: ${lines} lines (${(expectedBytes / MiB).toFixed(1)} MiB) in ${writeSeconds.toFixed(2)} s, peak RSS growth ${memory.growthMiB()} MiB`
        )
      }),
    { timeout: 120_000 }
  )

  it.effect("discards a writer's file on abort, on a scope closed before close, and refuses writes after close", () =>
    Effect.gen(function* () {
      const files = yield* FileStore
      yield* Effect.scoped(
        Effect.gen(function* () {
          const writer = yield* files.openWriter("processed/aborted.csv")
          yield* Effect.promise(async () => {
            await writer.write("half a file\n")
            await writer.abort()
            await writer.abort()
          })
          const refused = yield* Effect.promise(() =>
            writer.write("more\n").then(
              () => "accepted",
              (e) => e._tag
            )
          )
          assert.strictEqual(refused, "StorageError")
        })
      )
      assert.isFalse(yield* files.exists("processed/aborted.csv"))

      // A failure in the middle of the job: the scope closes without close().
      const failed = yield* Effect.scoped(
        Effect.gen(function* () {
          const writer = yield* files.openWriter("processed/interrupted.csv")
          yield* Effect.promise(() => writer.write("partial\n".repeat(10_000)))
          return yield* Effect.fail("the job failed" as const)
        })
      ).pipe(Effect.exit)
      assert.isTrue(Exit.isFailure(failed))
      assert.isFalse(yield* files.exists("processed/interrupted.csv"))

      // Interrupted while waiting for backpressure.
      const fiber = yield* Effect.scoped(
        Effect.gen(function* () {
          const writer = yield* files.openWriter("processed/interrupted-2.csv")
          yield* Effect.promise(() => writer.write("x".repeat(1024)))
          return yield* Effect.never
        })
      ).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      yield* Fiber.interrupt(fiber)
      assert.isFalse(yield* files.exists("processed/interrupted-2.csv"))

      const closed = yield* Effect.scoped(
        Effect.gen(function* () {
          const writer = yield* files.openWriter("processed/closed.csv")
          return yield* Effect.promise(async () => {
            await writer.write("done\n")
            const result = await writer.close()
            const afterClose = await writer.write("late\n").then(
              () => "accepted",
              (e) => e._tag
            )
            return { result, afterClose }
          })
        })
      )
      assert.deepStrictEqual(closed, { result: { key: "processed/closed.csv", bytes: 5 }, afterClose: "StorageError" })
      assert.strictEqual(yield* files.readText("processed/closed.csv"), "done\n")
      const names = yield* Effect.promise(() => backdoor().rawNames())
      assert.deepStrictEqual(
        names.filter((n) => n.startsWith("processed/") && !n.includes("big") && !n.includes("lines")),
        ["processed/closed.csv"]
      )
    })
  )
}

// ---------------------------------------------------------------------------------------------

describe("FileStore", () => {
  let localDir = ""
  const LocalBackend = Layer.unwrap(
    Effect.acquireRelease(
      Effect.promise(async () => {
        localDir = await mkdtemp(path.join(tmpdir(), "filestore-"))
        return FileStore.layer.pipe(Layer.provide(AppConfig.layerFrom({ STORAGE_DIR: path.join(localDir, "files") })))
      }),
      () => Effect.promise(() => rm(localDir, { recursive: true, force: true }))
    )
  )
  const localBackdoor = (): Backdoor => {
    const root = path.join(localDir, "files")
    return {
      rawRead: (key) => readFile(path.join(root, key)).catch(() => undefined),
      rawNames: async () =>
        (await readdir(root, { recursive: true, withFileTypes: true }))
          .filter((entry) => entry.isFile())
          .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
          .sort()
    }
  }

  layer(LocalBackend, { timeout: "60 seconds", excludeTestServices: true })("local directory", (it) => {
    fileStoreSuite(it, localBackdoor)

    it.effect("creates the folder and keeps keys as sub-folders under it", () =>
      Effect.gen(function* () {
        const files = yield* FileStore
        yield* files.put("exports/campaign_stats_20260101T000000.csv", "a\n")
        const onDisk = yield* Effect.promise(() =>
          readFile(path.join(localDir, "files", "exports", "campaign_stats_20260101T000000.csv"), "utf8")
        )
        assert.strictEqual(onDisk, "a\n")
      })
    )

    it.effect("layerLocal creates a missing folder; an unusable folder fails with StorageError", () =>
      Effect.gen(function* () {
        const nested = path.join(localDir, "other", "deeper")
        const files = yield* Effect.gen(function* () {
          return yield* FileStore
        }).pipe(Effect.provide(FileStore.layerLocal(nested)))
        yield* files.put("raw/x.csv", "x")
        assert.strictEqual(yield* Effect.promise(() => readFile(path.join(nested, "raw", "x.csv"), "utf8")), "x")
        const blocked = path.join(nested, "raw", "x.csv", "below-a-file")
        const error = yield* Effect.gen(function* () {
          return yield* FileStore
        }).pipe(Effect.provide(FileStore.layerLocal(blocked)), Effect.flip)
        assert.strictEqual(error._tag, "StorageError")
        // The message says what failed, not where; the path stays in the cause for the logs.
        assert.strictEqual(error.message, "could not create the file store's folder (ENOTDIR)")
        assert.include(String(error.cause), blocked)
      })
    )

    it.effect("StorageError messages name no path, bucket or key; the cause keeps it", () =>
      Effect.gen(function* () {
        const files = yield* FileStore
        yield* files.put("raw/blocking.csv", "x")
        // A key below a file: the folder cannot be made.
        const put = yield* files.put("raw/blocking.csv/below.csv", "y").pipe(Effect.flip)
        assert.strictEqual(put._tag, "StorageError")
        assert.match(put.message, /^could not store a file \(E[A-Z]+\)$/)
        assert.include(String(put.cause), path.join(localDir, "files", "raw", "blocking.csv"))
        const writer = yield* Effect.scoped(
          Effect.gen(function* () {
            const writer = yield* files.openWriter("raw/closed.csv")
            yield* Effect.promise(() => writer.close())
            return writer
          })
        )
        const refused = yield* Effect.flip(Effect.tryPromise({ try: () => writer.write("more"), catch: (e) => e }))
        assert.instanceOf(refused, StorageError)
        assert.notInclude((refused as StorageError).message, "closed.csv")
      })
    )

    /** A temporary file as a write of `name` under `folder` leaves it, modified `ageMs` ago. */
    const temporaryFile = async (folder: string, name: string, ageMs: number): Promise<string> => {
      await mkdir(folder, { recursive: true })
      const file = path.join(folder, `.${name}.${randomUUID()}.tmp`)
      await writeFile(file, "part of a file")
      const at = new Date(Date.now() - ageMs)
      await utimes(file, at, at)
      return file
    }
    const present = (file: string) =>
      stat(file).then(
        () => true,
        () => false
      )
    const HOUR = 60 * 60 * 1000

    it.effect("sweeps at start-up the temporary files of crashed writes: old ones go, fresh ones and files stay", () =>
      Effect.gen(function* () {
        const root = path.join(localDir, "swept")
        const setup = yield* Effect.promise(async () => {
          await mkdir(path.join(root, "raw"), { recursive: true })
          await writeFile(path.join(root, "raw", "kept.csv"), "a\n")
          const old = path.join(root, "raw", "kept.csv")
          const at = new Date(Date.now() - 3 * HOUR)
          await utimes(old, at, at) // an old committed file stays
          await writeFile(path.join(root, "raw", ".not-ours"), "x") // hidden, but not a temporary file's name
          await utimes(path.join(root, "raw", ".not-ours"), at, at)
          return {
            stale: [
              await temporaryFile(path.join(root, "raw"), "crashed.csv", 2 * HOUR),
              await temporaryFile(path.join(root, "processed", "deeper"), "crashed.csv", HOUR + 60_000),
              await temporaryFile(root, "top.csv", 5 * HOUR)
            ],
            fresh: await temporaryFile(path.join(root, "raw"), "uploading.csv", 30 * 60_000)
          }
        })
        const files = yield* FileStore.pipe(Effect.provide(FileStore.layerLocal(root)))
        for (const file of setup.stale) assert.isFalse(yield* Effect.promise(() => present(file)), file)
        assert.isTrue(yield* Effect.promise(() => present(setup.fresh)))
        assert.isTrue(yield* Effect.promise(() => present(path.join(root, "raw", ".not-ours"))))
        assert.strictEqual(yield* files.readText("raw/kept.csv"), "a\n")
        assert.deepStrictEqual(yield* files.list(""), ["raw/kept.csv"])
      })
    )

    it.effect("sweeps periodically, never a temporary file still being written (kept fresh while open)", () =>
      Effect.gen(function* () {
        const root = path.join(localDir, "swept-live")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const files = yield* FileStore
            const writer = yield* files.openWriter("processed/slow.csv")
            yield* Effect.promise(() => writer.write(Buffer.from("phone\n")))
            // The temporary file appears once the stream has opened it.
            const open = yield* Effect.promise(async () => {
              for (let i = 0; i < 100; i++) {
                const [name] = await readdir(path.join(root, "processed"))
                if (name !== undefined) return path.join(root, "processed", name)
                await new Promise((resolve) => setTimeout(resolve, 10))
              }
              return undefined
            })
            assert.isDefined(open)
            // As if no byte had come for an hour: this process knows the file is open and skips it,
            // and the writer's refresh makes it fresh again for any other process's sweep.
            const at = new Date(Date.now() - HOUR)
            yield* Effect.promise(() => utimes(open!, at, at))
            const crashed = yield* Effect.promise(() => temporaryFile(path.join(root, "processed"), "dead.csv", HOUR))
            yield* Effect.sleep("400 millis")
            assert.isFalse(yield* Effect.promise(() => present(crashed)))
            assert.isTrue(yield* Effect.promise(() => present(open!)))
            const refreshed = yield* Effect.promise(() => stat(open!))
            assert.isAbove(refreshed.mtimeMs, Date.now() - 1000)
            yield* Effect.promise(() => writer.write("+4915112345678\n"))
            yield* Effect.promise(() => writer.close())
            assert.strictEqual(yield* files.readText("processed/slow.csv"), "phone\n+4915112345678\n")
          }).pipe(
            // Stale after 400 ms: open writers refresh their file every 100 ms; a sweep every 50 ms.
            Effect.provide(FileStore.layerLocal(root, { staleTemporaryAfterMs: 400, sweepIntervalMs: 50 }))
          )
        )
        assert.deepStrictEqual(yield* Effect.promise(() => readdir(path.join(root, "processed"))), ["slow.csv"])
      })
    )

    it.effect("localFileWriter writes any path all or nothing: hidden until close, nothing left after abort", () =>
      Effect.gen(function* () {
        const folder = path.join(localDir, "outside", "out")
        const target = path.join(folder, "clean.csv")
        const listing = () => Effect.promise(() => readdir(folder).catch(() => []))
        const writer = yield* Effect.promise(() => localFileWriter(target))
        yield* Effect.promise(() => writer.write("phone\n"))
        yield* Effect.promise(() => writer.write(Buffer.from("+4915112345678\n")))
        assert.deepStrictEqual(
          (yield* listing()).filter((name) => !name.startsWith(".")),
          []
        )
        const stored = yield* Effect.promise(() => writer.close())
        assert.deepStrictEqual(stored, { key: target, bytes: 21 })
        assert.strictEqual(yield* Effect.promise(() => readFile(target, "utf8")), "phone\n+4915112345678\n")
        const failed = yield* Effect.flip(Effect.tryPromise({ try: () => writer.write("more"), catch: (e) => e }))
        assert.instanceOf(failed, StorageError)

        const discarded = yield* Effect.promise(() =>
          localFileWriter(path.join(folder, "rejects.csv"), { fsync: false })
        )
        yield* Effect.promise(() => discarded.write("x\n"))
        yield* Effect.promise(() => discarded.abort())
        assert.deepStrictEqual(yield* listing(), ["clean.csv"])
      })
    )
  })

  let s3Client: S3Client | undefined
  let bucket = ""
  let endpoint = ""
  const S3Backend = Layer.unwrap(
    Effect.gen(function* () {
      const aws = yield* Effect.acquireRelease(
        Effect.promise(() => startFauxqs({ separateProcess: true })),
        (aws) => Effect.promise(() => aws.stop())
      )
      bucket = yield* Effect.promise(() => aws.createBucket())
      endpoint = aws.endpoint
      s3Client = yield* Effect.acquireRelease(
        Effect.sync(
          () =>
            new S3Client({
              endpoint: aws.endpoint,
              region: aws.region,
              credentials: aws.credentials,
              forcePathStyle: true
            })
        ),
        (c) => Effect.sync(() => c.destroy())
      )
      // Through AppConfig, as in production: credentials come from the AWS environment chain.
      return FileStore.layer.pipe(
        Layer.provide(
          AppConfig.layerFrom({
            S3_BUCKET: bucket,
            S3_ENDPOINT: aws.endpoint,
            S3_PREFIX: "tenant-a/",
            AWS_REGION: aws.region
          })
        )
      )
    })
  )
  const s3Backdoor = (): Backdoor => ({
    rawRead: async (key) => {
      try {
        const output = await s3Client!.send(new GetObjectCommand({ Bucket: bucket, Key: `tenant-a/${key}` }))
        return Buffer.from(await output.Body!.transformToByteArray())
      } catch {
        return undefined
      }
    },
    rawNames: async () => {
      const names: Array<string> = []
      let token: string | undefined
      do {
        const page = await s3Client!.send(
          new ListObjectsV2Command({ Bucket: bucket, ...(token === undefined ? {} : { ContinuationToken: token }) })
        )
        for (const o of page.Contents ?? []) names.push(o.Key!.replace(/^tenant-a\//, ""))
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined
      } while (token !== undefined)
      return names.sort()
    }
  })

  layer(S3Backend, { timeout: "60 seconds", excludeTestServices: true })("S3 (fauxqs over HTTP)", (it) => {
    fileStoreSuite(it, s3Backdoor)

    // fauxqs has no ListMultipartUploads, so the requests themselves show that unfinished uploads
    // (invisible, but billed on AWS) are aborted.
    it.effect("aborts the multipart upload of a put over maxBytes, an interrupted put and a discarded writer", () =>
      Effect.gen(function* () {
        const operations: Array<string> = []
        const target = new URL(endpoint)
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const server = http.createServer((req, res) => {
              const query = new URL(req.url!, endpoint).searchParams
              operations.push(query.get("x-id") ?? (query.has("uploads") ? "CreateMultipartUpload" : req.method!))
              const upstream = http.request(
                { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
                (answer) => {
                  res.writeHead(answer.statusCode!, answer.headers)
                  answer.pipe(res)
                }
              )
              req.pipe(upstream)
            })
            await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
            return server
          }),
          (server) => Effect.promise(() => new Promise((resolve) => server.close(resolve)))
        )
        const files = yield* Effect.gen(function* () {
          return yield* FileStore
        }).pipe(
          Effect.provide(
            FileStore.layerS3({
              bucket,
              region: "us-east-1",
              endpoint: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
            })
          )
        )
        /** The operations since the last call, once an abort went out (it may follow the failure: in-flight parts finish first). */
        const multipartOperations = Effect.promise(async () => {
          for (let waited = 0; waited < 5_000 && !operations.includes("AbortMultipartUpload"); waited += 20) {
            await new Promise((resolve) => setTimeout(resolve, 20))
          }
          return [...new Set(operations.splice(0))]
        })

        const tooLarge = files.put("raw/mpu-too-large.bin", endlessBody({ bytes: 0 }), { maxBytes: 12 * MiB })
        assert.strictEqual(yield* failureTag(tooLarge), "PayloadTooLarge")
        assert.deepStrictEqual(yield* multipartOperations, [
          "CreateMultipartUpload",
          "UploadPart",
          "AbortMultipartUpload"
        ])

        const pulled = { bytes: 0 }
        const interrupted = yield* files.put("raw/mpu-interrupted.bin", endlessBody(pulled)).pipe(Effect.forkChild)
        while (pulled.bytes < 12 * MiB) yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
        yield* Fiber.interrupt(interrupted)
        assert.deepStrictEqual(yield* multipartOperations, [
          "CreateMultipartUpload",
          "UploadPart",
          "AbortMultipartUpload"
        ])

        yield* Effect.scoped(
          Effect.gen(function* () {
            const writer = yield* files.openWriter("raw/mpu-discarded.bin")
            yield* Effect.promise(async () => {
              for (let i = 0; i < 200; i++) await writer.write(Buffer.alloc(64 * 1024, 98))
            })
          })
        )
        assert.deepStrictEqual(yield* multipartOperations, [
          "CreateMultipartUpload",
          "UploadPart",
          "AbortMultipartUpload"
        ])
        assert.isFalse(yield* files.exists("raw/mpu-discarded.bin"))
      })
    )

    it.effect("a missing bucket is a StorageError, not a missing file", () =>
      Effect.gen(function* () {
        const files = yield* Effect.gen(function* () {
          return yield* FileStore
        }).pipe(Effect.provide(FileStore.layerS3({ bucket: "no-such-bucket", region: "us-east-1", endpoint })))
        const put = yield* files.put("raw/x.csv", "x").pipe(Effect.flip)
        assert.strictEqual(put._tag, "StorageError")
        assert.include(put.message, "could not store a file")
        for (const where of ["no-such-bucket", "raw/x.csv"]) assert.notInclude(put.message, where)
        assert.include(String(put.cause), "s3://no-such-bucket/raw/x.csv")
        assert.strictEqual(yield* failureTag(files.get("raw/x.csv")), "StorageError")
        assert.strictEqual(yield* failureTag(files.list("raw/")), "StorageError")
      })
    )
  })
})
