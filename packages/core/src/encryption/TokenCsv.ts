/**
 * Token files: the first column of each row read in batches (a streaming CSV reader that only looks
 * for the first cell), and the transform to `value,token` (encrypt) or `token,plaintext` (decrypt)
 * lines. Shared by the encryption-file job (EncryptionFiles.ts) and the CLI's `--file` forms.
 */
import { Effect, Result, Stream } from "effect"
import { type NotConfigured, UnreadableFile } from "../platform/Errors.ts"
import type { FileBody } from "../platform/FileStore.ts"
import { textUpload } from "../platform/TextUpload.ts"
import type { Encryption } from "./Encryption.ts"

export type TokenDirection = "encrypt" | "decrypt"

export interface TokenCsvCounts {
  /** Rows read (one value each). */
  readonly records: number
  /** Tokens that did not decrypt. */
  readonly failed: number
}

/** Values per `encryptMany` / `decryptMany` call and per write. */
export const BATCH_ROWS = 8192

/** A CSV cell: quoted when it holds a comma, a quote or a line break. */
const csvCell = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value)

type RowState = "start" | "unquoted" | "quoted" | "quoteInQuoted" | "afterQuoted" | "rest"

/** Character codes the first-column reader looks for. */
const QUOTE = 34
const COMMA = 44
const NEWLINE = 10
/** A single value longer than this is a runaway quote, not a phone number or a token. */
const MAX_CELL_CHARS = 1024 * 1024
const isBlank = (code: number) => code === 32 || code === 9 || code === 13

/**
 * The first cell of every CSV row of `body`, in batches of up to `batchRows` values: what
 * csv-parse with `trim` and `skip_empty_lines` gives for column 0 (quoted cells with `""` escapes
 * and line breaks, CRLF, a leading byte-order mark; rows of blanks only are skipped), without an
 * object per row — a million-row file costs a character loop, not a million parser records.
 * Content that is not text (`platform/TextUpload.ts`) and unbalanced quotes are `UnreadableFile`.
 */
export async function* firstColumnBatches(body: FileBody, batchRows: number): AsyncGenerator<Array<string>> {
  const decoder = new TextDecoder("utf-8")
  let batch: Array<string> = []
  // The row being read: the first cell's text, where it is, and whether the row has any content.
  let cell = ""
  let state = "start" as RowState
  let restInQuotes = false
  let rowHasContent = false
  const endRow = () => {
    if (rowHasContent) batch.push(state === "unquoted" ? cell.trim() : cell)
    cell = ""
    state = "start"
    restInQuotes = false
    rowHasContent = false
  }
  const read = (text: string) => {
    let from = 0
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i)
      switch (state) {
        case "start":
          if (code === NEWLINE) {
            endRow()
          } else if (code === QUOTE) {
            state = "quoted"
            rowHasContent = true
            from = i + 1
          } else if (code === COMMA) {
            rowHasContent = true
            state = "rest"
          } else if (!isBlank(code)) {
            state = "unquoted"
            rowHasContent = true
            from = i
          }
          break
        case "unquoted":
          if (code === COMMA || code === NEWLINE) {
            cell += text.slice(from, i)
            if (code === NEWLINE) endRow()
            else {
              cell = cell.trim()
              batch.push(cell)
              cell = ""
              rowHasContent = false // already counted: the row's value is in the batch
              state = "rest"
            }
          }
          break
        case "quoted":
          if (code === QUOTE) {
            cell += text.slice(from, i)
            state = "quoteInQuoted"
          }
          break
        case "quoteInQuoted":
          if (code === QUOTE) {
            // A doubled quote is one quote character in the value.
            cell += '"'
            from = i + 1
            state = "quoted"
          } else {
            state = "afterQuoted"
            i-- // this character ends the cell: read it as such
          }
          break
        case "afterQuoted":
          if (code === COMMA || code === NEWLINE) {
            batch.push(cell)
            cell = ""
            rowHasContent = false
            if (code === NEWLINE) endRow()
            else state = "rest"
          }
          break
        case "rest":
          if (code === QUOTE) restInQuotes = !restInQuotes
          else if (code === NEWLINE && !restInQuotes) endRow()
          break
      }
    }
    // A cell cut by the end of the chunk keeps its text so far.
    if (state === "unquoted" || state === "quoted") {
      cell += text.slice(from)
      if (cell.length > MAX_CELL_CHARS) {
        throw new UnreadableFile({
          message: `the file is not valid CSV: a value runs on for more than ${MAX_CELL_CHARS} characters (an unbalanced quote?)`
        })
      }
    }
  }
  // The decoder drops a byte-order mark that `textUpload` let through (one cut by the first chunk's end).
  for await (const piece of textUpload(body)) {
    read(decoder.decode(piece, { stream: true }))
    if (batch.length >= batchRows) {
      yield batch
      batch = []
    }
  }
  read(decoder.decode())
  if (state === "quoted") {
    throw new UnreadableFile({
      message: "the file is not valid CSV: it ends inside a quoted value (an unbalanced quote)"
    })
  }
  if (state === "afterQuoted" || state === "quoteInQuoted") {
    batch.push(cell)
    rowHasContent = false
  }
  endRow()
  if (batch.length > 0) yield batch
}

/**
 * Reads a token file (value = first column of each row) and hands the output text to `write`
 * batch by batch — `value,token` lines when encrypting, `token,plaintext` when decrypting — so
 * memory stays flat whatever the file size. Shared by the job and the CLI's `--file` forms.
 */
export const transformTokenCsv = <E>(
  encryption: Encryption["Service"],
  direction: TokenDirection,
  body: FileBody,
  write: (text: string, counts: TokenCsvCounts) => Effect.Effect<void, E>
): Effect.Effect<TokenCsvCounts, UnreadableFile | NotConfigured | E> =>
  Effect.suspend(() => {
    let records = 0
    let failed = 0
    return Stream.fromAsyncIterable(firstColumnBatches(body, BATCH_ROWS), (cause) =>
      cause instanceof UnreadableFile
        ? cause
        : new UnreadableFile({ message: `the file cannot be read: ${(cause as Error)?.message ?? String(cause)}` })
    ).pipe(
      Stream.runForEach((values) =>
        Effect.gen(function* () {
          let text = ""
          if (direction === "encrypt") {
            const tokens = yield* encryption.encryptMany(values)
            for (let i = 0; i < values.length; i++) text += `${csvCell(values[i]!)},${tokens[i]!}\n`
          } else {
            const plaintexts = yield* encryption.decryptMany(values)
            for (let i = 0; i < values.length; i++) {
              const plain = plaintexts[i]!
              if (Result.isSuccess(plain)) {
                text += `${csvCell(values[i]!)},${csvCell(plain.success)}\n`
              } else {
                failed++
                text += `${csvCell(values[i]!)},\n`
              }
            }
          }
          records += values.length
          yield* write(text, { records, failed })
        })
      ),
      Effect.map(() => ({ records, failed }))
    )
  })
