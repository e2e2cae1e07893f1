/**
 * Reading the CSV files operators upload for the lists, as a stream of rows (arrays of trimmed
 * cells), without holding the file in memory.
 *
 * - A UTF-8 byte-order mark is dropped (the original did not, so a BOM-prefixed `phone` header did
 *   not match; docs/original-api.md).
 * - A file that is not text (binary, UTF-16: `platform/TextUpload.ts`) is `UnreadableFile`. So is a
 *   quoting error the parser cannot recover from, reported with its line.
 * - Blank lines are skipped; rows may have fewer or more cells than the header.
 */
import { parse, type Parser } from "csv-parse"
import { Stream } from "effect"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type { FileBody } from "../platform/FileStore.ts"
import { UnreadableFile } from "../platform/Errors.ts"
import { textUpload } from "../platform/TextUpload.ts"

const unreadable = (cause: unknown): UnreadableFile => {
  if (cause instanceof UnreadableFile) return cause
  const error = cause as { message?: string; lines?: number }
  return new UnreadableFile({
    message: `the file is not valid CSV${error.lines === undefined ? "" : ` (line ${error.lines})`}: ${error.message ?? String(cause)}`
  })
}

/**
 * csv-parse builds a CsvError for every row whose cell count differs from the first row's, even with
 * `relax_column_count` (it only keeps it as information), and capturing that error's stack trace is
 * most of the row's cost: a ragged row took ~27 µs against ~2 µs for a regular one, ~6 µs without
 * the trace (`npm run bench -- list-csv`). The parser's own work therefore runs with stack traces
 * off. Its real errors (a runaway quote) keep their message and line, which is all `UnreadableFile`
 * reports; the consumer's code runs later, from the async iterator, with traces on.
 */
const withoutStackTraces = (parser: Parser): Parser => {
  const untraced =
    <Args extends Array<unknown>>(work: (...args: Args) => void) =>
    (...args: Args): void => {
      const limit = Error.stackTraceLimit
      Error.stackTraceLimit = 0
      try {
        work(...args)
      } finally {
        Error.stackTraceLimit = limit
      }
    }
  parser._transform = untraced(parser._transform.bind(parser))
  parser._flush = untraced(parser._flush.bind(parser))
  return parser
}

/** The rows of a CSV body, each an array of trimmed cells; the header row, if any, is the first. */
export const csvRows = (body: FileBody): Stream.Stream<ReadonlyArray<string>, UnreadableFile> =>
  Stream.suspend(() => {
    const parser = withoutStackTraces(
      parse({
        bom: true,
        relax_column_count: true,
        skip_empty_lines: true,
        trim: true,
        // A single cell of a runaway quote must not take all memory.
        max_record_size: 1024 * 1024
      })
    )
    const source = Readable.from(textUpload(body), { objectMode: false })
    // Errors of the source reach the parser (and the consumer) through pipeline.
    pipeline(source, parser).catch(() => undefined)
    return Stream.fromAsyncIterable(parser as AsyncIterable<Array<string>>, unreadable)
  })

/** A header cell as the original compared it: trimmed, lower-case, without spaces and underscores. */
export const normaliseHeader = (cell: string): string =>
  cell
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, "")
