/**
 * The local-directory backend of FileStore (the default, `.optimizer/files`), and the same
 * all-or-nothing writer for any local path (`localFileWriter`): a hidden temporary file next to the
 * target, renamed over it once complete (atomic on one file system). A failed or aborted write
 * removes the temporary file and leaves the previous content of the target (or no file).
 *
 * A process killed mid-write (SIGKILL, OOM) cannot remove its temporary file, so the backend sweeps
 * the folder for stale ones: at start-up and then every `sweepIntervalMs`, it removes the temporary
 * files not modified for `staleTemporaryAfterMs` (default 1 hour). A write in progress is never
 * removed: this process skips its own open temporary files, and every open writer refreshes its
 * file's modification time every quarter of that age (for the other processes sharing the folder,
 * which must use the same age or a longer one).
 */
import { Duration, Effect, Schedule } from "effect"
import type { Scope } from "effect"
import { randomUUID } from "node:crypto"
import { createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { finished, pipeline } from "node:stream/promises"
import type { StorageError } from "../Errors.ts"
import {
  type Backend,
  batchingWriter,
  Missing,
  type RawWriter,
  storageError,
  writeTo,
  type FileWriter
} from "./Backend.ts"

const isCode = (cause: unknown, ...codes: Array<string>): boolean =>
  codes.includes((cause as { code?: unknown } | undefined)?.code as string)

const temporaryPathFor = (target: string): string =>
  path.join(path.dirname(target), `.${path.basename(target)}.${randomUUID()}.tmp`)

/** The name `temporaryPathFor` gives: only such files are ever swept. */
const TEMPORARY_NAME = /^\..+\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/

/** The temporary files this process is writing: the sweep leaves them alone whatever their age. */
const writing = new Set<string>()

/**
 * Marks `temporary` as being written until the returned function is called; with `touchEveryMs`,
 * also refreshes its modification time that often, so a sweep in another process sees it as fresh
 * even while no byte arrives (a writer held open by a job that waits).
 */
const holdTemporary = (temporary: string, touchEveryMs: number | undefined): (() => void) => {
  writing.add(temporary)
  const timer =
    touchEveryMs === undefined
      ? undefined
      : setInterval(() => {
          const now = new Date()
          fs.utimes(temporary, now, now).catch(() => undefined) // gone meanwhile: renamed or removed
        }, touchEveryMs).unref()
  return () => {
    writing.delete(temporary)
    if (timer !== undefined) clearInterval(timer)
  }
}

export interface LocalWriteOptions {
  /**
   * fsync before the rename (default true), so a crash after the rename cannot leave an empty file.
   * Costs the time to flush the file to disk on close.
   */
  readonly fsync?: boolean
}

/**
 * The raw writer of the file at `target` (an absolute path): a temporary file renamed on close.
 * `touchEveryMs`: see `holdTemporary` (the FileStore backend sets it; other paths are not swept).
 */
export const openLocalFile = async (
  target: string,
  options?: LocalWriteOptions,
  touchEveryMs?: number
): Promise<RawWriter> => {
  await fs.mkdir(path.dirname(target), { recursive: true })
  const temporary = temporaryPathFor(target)
  const release = holdTemporary(temporary, touchEveryMs)
  const file = createWriteStream(temporary, { flush: options?.fsync ?? true, highWaterMark: 256 * 1024 })
  file.on("error", () => undefined) // surfaced through write/close
  return {
    write: (chunk) => writeTo(file, chunk),
    close: async () => {
      try {
        file.end()
        await finished(file)
        await fs.rename(temporary, target)
      } finally {
        release()
      }
    },
    abort: async () => {
      try {
        file.destroy()
        await finished(file).catch(() => undefined)
        await fs.rm(temporary, { force: true })
      } finally {
        release()
      }
    }
  }
}

/**
 * A `FileWriter` for any local path (resolved against the working directory; its folder is created):
 * the writer FileStore's local backend hands out, with the absolute path as the stored file's key.
 * Rejects with `StorageError` when the file cannot be created.
 */
export const localFileWriter = async (target: string, options?: LocalWriteOptions): Promise<FileWriter> => {
  const absolute = path.resolve(target)
  const raw = await openLocalFile(absolute, options).catch((cause: unknown) => {
    // The caller's own path (a CLI output), not a stored file's: naming it helps and reveals nothing.
    throw storageError(`could not open ${absolute} for writing`, cause)
  })
  return batchingWriter(absolute, raw)
}

export interface LocalStoreOptions {
  /**
   * A temporary file not modified for this long is a crashed write's, and the sweep removes it.
   * Default 1 hour. Open writers refresh their file every quarter of it, so any age is safe as long
   * as every process writing to the folder uses the same one.
   */
  readonly staleTemporaryAfterMs?: number
  /** How often the folder is swept after the sweep at start-up. Default 1 hour; 0 sweeps only at start-up. */
  readonly sweepIntervalMs?: number
}

const HOUR_MS = 60 * 60 * 1000

const nonNegativeOr = (value: number | undefined, fallback: number): number =>
  value !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback

/**
 * Removes the temporary files under `root` not modified for `olderThanMs`, except the ones this
 * process is writing; a file renamed or removed meanwhile is skipped. Counts what it removed and
 * what it could not remove.
 */
export const sweepTemporaryFiles = async (
  root: string,
  olderThanMs: number
): Promise<{ readonly removed: number; readonly failed: number }> => {
  let entries
  try {
    entries = await fs.readdir(root, { recursive: true, withFileTypes: true })
  } catch (cause) {
    if (isCode(cause, "ENOENT", "ENOTDIR")) return { removed: 0, failed: 0 }
    throw cause
  }
  let removed = 0
  let failed = 0
  const cutoff = Date.now() - olderThanMs
  for (const entry of entries) {
    if (!entry.isFile() || !TEMPORARY_NAME.test(entry.name)) continue
    const file = path.join(entry.parentPath, entry.name)
    if (writing.has(file)) continue
    try {
      if ((await fs.stat(file)).mtimeMs > cutoff) continue
      await fs.unlink(file)
      removed++
    } catch (cause) {
      if (!isCode(cause, "ENOENT")) failed++
    }
  }
  return { removed, failed }
}

/** One sweep of `root`, logged (counts only: the names are uuids, the folder is in the configuration). */
const sweepLogged = (root: string, olderThanMs: number): Effect.Effect<void> =>
  Effect.tryPromise({
    try: () => sweepTemporaryFiles(root, olderThanMs),
    catch: (cause) => storageError("could not sweep the file store for stale temporary files", cause)
  }).pipe(
    Effect.flatMap(({ removed, failed }) =>
      Effect.all([
        removed > 0
          ? Effect.logInfo("removed temporary files left by interrupted writes").pipe(Effect.annotateLogs({ removed }))
          : Effect.void,
        failed > 0
          ? Effect.logWarning("could not remove some stale temporary files").pipe(Effect.annotateLogs({ failed }))
          : Effect.void
      ])
    ),
    Effect.catch((error) => Effect.logWarning(error.message)),
    Effect.asVoid
  )

/**
 * The backend over the folder `dir` (resolved against the working directory, created when missing).
 * Sweeps stale temporary files at once and then in the background until the scope closes.
 */
export const makeLocalBackend = (
  dir: string,
  options?: LocalStoreOptions
): Effect.Effect<Backend, StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    const root = path.resolve(dir)
    yield* Effect.tryPromise({
      try: () => fs.mkdir(root, { recursive: true }),
      catch: (cause) => storageError("could not create the file store's folder", cause)
    })
    const staleAfterMs = Math.max(1, nonNegativeOr(options?.staleTemporaryAfterMs, HOUR_MS))
    const sweepIntervalMs = nonNegativeOr(options?.sweepIntervalMs, HOUR_MS)
    const touchEveryMs = Math.max(1, Math.floor(staleAfterMs / 4))
    yield* sweepLogged(root, staleAfterMs)
    if (sweepIntervalMs > 0) {
      yield* sweepLogged(root, staleAfterMs).pipe(
        Effect.delay(Duration.millis(sweepIntervalMs)),
        Effect.repeat(Schedule.spaced(Duration.millis(sweepIntervalMs))),
        Effect.forkScoped
      )
    }
    // Keys are validated first, so the joined path always stays under root.
    const pathOf = (key: string) => path.join(root, ...key.split("/"))

    const backend: Backend = {
      describe: "local",
      put: async (key, body, _contentType, signal) => {
        const target = pathOf(key)
        await fs.mkdir(path.dirname(target), { recursive: true })
        const temporary = temporaryPathFor(target)
        const release = holdTemporary(temporary, touchEveryMs)
        try {
          // flush: fsync before close, so a crash after the rename cannot leave an empty file.
          await pipeline(body, createWriteStream(temporary, { flush: true }), { signal })
          await fs.rename(temporary, target)
        } catch (cause) {
          await fs.rm(temporary, { force: true })
          throw cause
        } finally {
          release()
        }
      },
      open: async (key) => {
        let handle: fs.FileHandle
        try {
          handle = await fs.open(pathOf(key), "r")
        } catch (cause) {
          if (isCode(cause, "ENOENT", "ENOTDIR")) throw new Missing()
          throw cause
        }
        // An open handle keeps reading the same file even if a newer version is renamed over it.
        if (!(await handle.stat()).isFile()) {
          await handle.close()
          throw new Missing()
        }
        return handle.createReadStream({ highWaterMark: 64 * 1024 })
      },
      size: async (key) => {
        try {
          const stat = await fs.stat(pathOf(key))
          return stat.isFile() ? stat.size : undefined
        } catch (cause) {
          if (isCode(cause, "ENOENT", "ENOTDIR")) return undefined
          throw cause
        }
      },
      delete: async (key) => {
        try {
          await fs.unlink(pathOf(key))
        } catch (cause) {
          if (!isCode(cause, "ENOENT", "ENOTDIR")) throw cause
        }
      },
      list: async (prefix) => {
        const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : ""
        const start = folder === "" ? root : pathOf(folder)
        let entries
        try {
          entries = await fs.readdir(start, { recursive: true, withFileTypes: true })
        } catch (cause) {
          if (isCode(cause, "ENOENT", "ENOTDIR")) return []
          throw cause
        }
        const keys: Array<string> = []
        for (const entry of entries) {
          if (!entry.isFile()) continue
          const key = path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join("/")
          // Hidden names are temporary files of writes in progress.
          if (key.startsWith(prefix) && !key.split("/").some((segment) => segment.startsWith("."))) keys.push(key)
        }
        return keys
      },
      openWriter: (key) => openLocalFile(pathOf(key), undefined, touchEveryMs)
    }
    return backend
  })
