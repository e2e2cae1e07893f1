/**
 * The one answer to "is this upload a text file?", for every uploaded CSV (cleaning, encryption
 * files, smart cleaning, the lists' manual imports): the bytes pass through as they come and are
 * refused with `UnreadableFile` when they are
 * - UTF-16 (a UTF-16 byte-order mark; spreadsheet programs' "Unicode text"),
 * - binary: a NUL byte anywhere, or more than 1 % control characters (other than tab, line breaks,
 *   form feed and the DOS end-of-file mark) among the first 64 KiB (a spreadsheet, an image).
 * A leading UTF-8 byte-order mark is dropped. Bytes that are not valid UTF-8 are let through: the
 * readers decode them with replacement characters, as the original did.
 *
 * With a counter, the non-blank lines are counted on the way (the original's `record_count_total`
 * at upload, header included): a line is blank when it holds only spaces, tabs, vertical tabs, form
 * feeds and carriage returns. Without one, only the checks run (the list import's hot path pays a
 * `memchr` per chunk and one pass over the first 64 KiB).
 */
import { Effect } from "effect"
import { UnreadableFile, type PayloadTooLarge, type StorageError, type ValidationError } from "./Errors.ts"
import type { FileBody, FileStore } from "./FileStore.ts"

export const BINARY_FILE_MESSAGE = "the file is not a CSV text file (it contains binary data)"
export const UTF16_FILE_MESSAGE = "the file is UTF-16 text: save it as UTF-8 CSV"

/** Bytes looked at for control characters: text files have (almost) none. */
const SNIFF_BYTES = 64 * 1024

const WHITESPACE = new Uint8Array(256)
for (const b of [9, 10, 11, 12, 13, 32]) WHITESPACE[b] = 1

/** Thrown inside the body, so the FileStore write (or the reader) stops with it. */
const notText = (message: string) => new UnreadableFile({ message })

/** Non-blank lines seen so far; read it once the body has been consumed. */
export interface LineCounter {
  lines: number
}

/** The body's bytes, checked (see the module comment), a UTF-8 BOM dropped, lines counted into `counter`. */
export async function* textUpload(body: FileBody, counter?: LineCounter): AsyncGenerator<Uint8Array> {
  const source: Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string> =
    typeof body === "string" || body instanceof Uint8Array ? [body] : body
  let first = true
  let sniffed = 0
  let controls = 0
  let content = false
  for await (const chunk of source) {
    let bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk
    if (bytes.length === 0) continue
    if (first) {
      first = false
      if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
        throw notText(UTF16_FILE_MESSAGE)
      }
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        bytes = bytes.subarray(3)
        if (bytes.length === 0) continue
      }
    }
    if (bytes.indexOf(0) !== -1) throw notText(BINARY_FILE_MESSAGE)
    if (sniffed < SNIFF_BYTES) {
      const end = Math.min(bytes.length, SNIFF_BYTES - sniffed)
      for (let i = 0; i < end; i++) {
        const b = bytes[i]!
        if (b < 32 && WHITESPACE[b] === 0 && b !== 26) controls++
      }
      sniffed += end
      if (controls > 8 && controls * 100 > sniffed) throw notText(BINARY_FILE_MESSAGE)
    }
    if (counter !== undefined) {
      // Non-blank lines: each line is scanned only up to its first non-blank byte.
      let i = 0
      const n = bytes.length
      while (i < n) {
        if (!content) {
          while (i < n && WHITESPACE[bytes[i]!] === 1 && bytes[i] !== 10) i++
          if (i >= n) break
          if (bytes[i] === 10) {
            i++
            continue
          }
          content = true
        }
        const newline = bytes.indexOf(10, i)
        if (newline === -1) break
        counter.lines++
        content = false
        i = newline + 1
      }
    }
    yield bytes
  }
  if (content && counter !== undefined) counter.lines++
}

/** A FileStore write that failed because its body was refused: the refusal's `UnreadableFile`. */
export const refusedUpload = (error: StorageError): Effect.Effect<never, StorageError | UnreadableFile> =>
  Effect.fail(error.cause instanceof UnreadableFile ? error.cause : error)

/**
 * Stores an upload under `key` through `textUpload` and answers its non-blank lines: a body that is
 * not text is its `UnreadableFile`; a body with no line of content is deleted again and is `empty`
 * (each kind keeps its own answer to that).
 */
export const storeTextUpload = <E>(
  files: FileStore["Service"],
  key: string,
  body: FileBody,
  options: { readonly maxBytes: number; readonly empty: E }
): Effect.Effect<number, E | UnreadableFile | StorageError | PayloadTooLarge | ValidationError> =>
  Effect.gen(function* () {
    const counter: LineCounter = { lines: 0 }
    yield* files
      .put(key, textUpload(body, counter), { maxBytes: options.maxBytes, contentType: "text/csv" })
      .pipe(Effect.catchTag("StorageError", refusedUpload))
    if (counter.lines === 0) {
      yield* files.delete(key).pipe(Effect.ignore)
      return yield* Effect.fail(options.empty)
    }
    return counter.lines
  })

const MAX_FILENAME = 255

/**
 * A client's file name, kept as a label only: no folders, no control characters (PostgreSQL refuses
 * a NUL in text), at most 255 characters; `upload.csv` when nothing is left.
 */
export const uploadFilename = (name: string): string => {
  const base = name.split(/[\\/]/).pop() ?? ""
  const printable = base.replace(/[\u0000-\u001f\u007f]/g, "").trim()
  return (printable === "" ? "upload.csv" : printable).slice(0, MAX_FILENAME)
}
