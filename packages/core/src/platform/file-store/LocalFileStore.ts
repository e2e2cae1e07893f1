/**
 * The local-directory backend of FileStore (the default, `.optimizer/files`), and the same
 * all-or-nothing writer for any local path (`localFileWriter`): a hidden temporary file next to the
 * target, renamed over it once complete (atomic on one file system). A failed or aborted write
 * removes the temporary file and leaves the previous content of the target (or no file).
 */
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { finished, pipeline } from "node:stream/promises"
import type { StorageError } from "../Errors.ts"
import type { FileWriter } from "../FileStore.ts"
import { type Backend, batchingWriter, Missing, type RawWriter, storageError, writeTo } from "./Backend.ts"

const isCode = (cause: unknown, ...codes: Array<string>): boolean =>
  codes.includes((cause as { code?: unknown } | undefined)?.code as string)

const temporaryPathFor = (target: string): string =>
  path.join(path.dirname(target), `.${path.basename(target)}.${randomUUID()}.tmp`)

export interface LocalWriteOptions {
  /**
   * fsync before the rename (default true), so a crash after the rename cannot leave an empty file.
   * Costs the time to flush the file to disk on close.
   */
  readonly fsync?: boolean
}

/** The raw writer of the file at `target` (an absolute path): a temporary file renamed on close. */
export const openLocalFile = async (target: string, options?: LocalWriteOptions): Promise<RawWriter> => {
  await fs.mkdir(path.dirname(target), { recursive: true })
  const temporary = temporaryPathFor(target)
  const file = createWriteStream(temporary, { flush: options?.fsync ?? true, highWaterMark: 256 * 1024 })
  file.on("error", () => undefined) // surfaced through write/close
  return {
    write: (chunk) => writeTo(file, chunk),
    close: async () => {
      file.end()
      await finished(file)
      await fs.rename(temporary, target)
    },
    abort: async () => {
      file.destroy()
      await finished(file).catch(() => undefined)
      await fs.rm(temporary, { force: true })
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
    throw storageError(`could not open file ${absolute} for writing`, cause)
  })
  return batchingWriter(absolute, raw)
}

/** The backend over the folder `dir` (resolved against the working directory, created when missing). */
export const makeLocalBackend = (dir: string): Effect.Effect<Backend, StorageError> =>
  Effect.gen(function* () {
    const root = path.resolve(dir)
    yield* Effect.tryPromise({
      try: () => fs.mkdir(root, { recursive: true }),
      catch: (cause) => storageError(`could not create the storage folder ${root}`, cause)
    })
    // Keys are validated first, so the joined path always stays under root.
    const pathOf = (key: string) => path.join(root, ...key.split("/"))

    const backend: Backend = {
      describe: "local",
      put: async (key, body, _contentType, signal) => {
        const target = pathOf(key)
        await fs.mkdir(path.dirname(target), { recursive: true })
        const temporary = temporaryPathFor(target)
        try {
          // flush: fsync before close, so a crash after the rename cannot leave an empty file.
          await pipeline(body, createWriteStream(temporary, { flush: true }), { signal })
          await fs.rename(temporary, target)
        } catch (cause) {
          await fs.rm(temporary, { force: true })
          throw cause
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
      openWriter: (key) => openLocalFile(pathOf(key))
    }
    return backend
  })
