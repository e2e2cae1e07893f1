/**
 * Local output files for `optimizer clean`: written under a temporary name next to the target and
 * renamed once complete, so a failed run leaves no partial file behind.
 */
import { randomUUID } from "node:crypto"
import { createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { finished } from "node:stream/promises"
import { StorageError } from "../platform/Errors.ts"
import type { FileWriter, StoredFile } from "../platform/FileStore.ts"

export const localFileWriter = async (target: string): Promise<FileWriter> => {
  const absolute = path.resolve(target)
  await fs.mkdir(path.dirname(absolute), { recursive: true })
  const temporary = path.join(path.dirname(absolute), `.${path.basename(absolute)}.${randomUUID()}.tmp`)
  const stream = createWriteStream(temporary, { highWaterMark: 256 * 1024 })
  let failure: unknown
  let bytes = 0
  let state: "open" | "closed" | "aborted" = "open"
  stream.on("error", (error) => {
    failure ??= error
  })
  const storageFailure = (cause: unknown) =>
    new StorageError({ message: `could not write ${target}: ${(cause as Error)?.message ?? String(cause)}`, cause })
  return {
    write: (chunk) => {
      if (state !== "open") return Promise.reject(storageFailure(new Error(`the file is ${state}`)))
      if (failure !== undefined) return Promise.reject(storageFailure(failure))
      bytes += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength
      if (stream.write(chunk)) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          stream.off("error", onError)
          resolve()
        }
        const onError = (error: unknown) => {
          stream.off("drain", onDrain)
          reject(storageFailure(error))
        }
        stream.once("drain", onDrain)
        stream.once("error", onError)
      })
    },
    close: async (): Promise<StoredFile> => {
      if (state !== "open") throw storageFailure(new Error(`the file is ${state}`))
      state = "closed"
      try {
        stream.end()
        await finished(stream)
        if (failure !== undefined) throw failure
        await fs.rename(temporary, absolute)
        return { key: absolute, bytes }
      } catch (cause) {
        await fs.rm(temporary, { force: true })
        throw storageFailure(cause)
      }
    },
    abort: async () => {
      if (state !== "open") return
      state = "aborted"
      stream.destroy()
      await finished(stream).catch(() => undefined)
      await fs.rm(temporary, { force: true })
    }
  }
}
