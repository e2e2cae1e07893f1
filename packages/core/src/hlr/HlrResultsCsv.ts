/**
 * The HLR provider's results CSV read record by record: machine-written, nearly never quoted, so a
 * plain split per line with an RFC 4180 path for the quoted ones (several times cheaper per row than
 * csv-parse, which `lists/ListCsv.ts` uses for files people write).
 */
import { UnreadableFile } from "../platform/Errors.ts"

/** A quoted field longer than this is a runaway quote, not a result. */
export const MAX_RECORD = 1024 * 1024

/** One CSV record's cells, trimmed (RFC 4180 quotes, `""` inside them); a plain split when it has no quote. */
export const splitCsvRecord = (line: string): Array<string> => {
  if (!line.includes('"')) {
    const cells = line.split(",")
    for (let i = 0; i < cells.length; i++) cells[i] = cells[i]!.trim()
    return cells
  }
  const cells: Array<string> = []
  let cell = ""
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quoted) {
      if (c !== '"') cell += c
      else if (line[i + 1] === '"') {
        cell += '"'
        i++
      } else quoted = false
    } else if (c === '"') quoted = true
    else if (c === ",") {
      cells.push(cell.trim())
      cell = ""
    } else cell += c
  }
  cells.push(cell.trim())
  return cells
}

const oddQuotes = (text: string): boolean => {
  let count = 0
  for (let at = text.indexOf('"'); at >= 0; at = text.indexOf('"', at + 1)) count++
  return count % 2 === 1
}

/**
 * The records of a run of text: `plain` when no cell of theirs holds a quote, backslash, tab or CR.
 * A record of plain text is its line, not split (it splits at every comma, and the caller may need
 * only a few of its cells); any other record is its cells.
 */
export interface CsvBatch {
  readonly rows: Array<Array<string> | string>
  /** No cell needs escaping as a COPY text field (`CopyText.ts`): the cells can be copied as they are. */
  readonly plain: boolean
}

const SPECIAL = /["\\\t\r]/

/**
 * The complete records of `text` (CRLF or LF, blank lines skipped, a quoted field may span lines)
 * into a batch; what is left — an unfinished line, or a quoted record still open — is returned to be
 * read again with the text that follows. `final`: the text ends the file (nothing is left).
 */
export const textRecords = (text: string, final: boolean): { readonly batch: CsvBatch; readonly left: string } => {
  const plain = !SPECIAL.test(text)
  const rows: Array<Array<string> | string> = []
  let start = 0
  let pending: string | undefined
  for (;;) {
    const nl = text.indexOf("\n", start)
    if (nl < 0 && !final) break
    const raw = text.slice(start, nl < 0 ? text.length : nl)
    start = nl < 0 ? text.length : nl + 1
    const record = pending === undefined ? raw : `${pending}\n${raw}`
    pending = undefined
    if (record.includes('"') && oddQuotes(record) && nl >= 0) {
      if (record.length > MAX_RECORD) throw runawayQuote()
      pending = record
      continue
    }
    const line = record.endsWith("\r") ? record.slice(0, -1) : record
    if (line.trim() !== "") rows.push(plain ? line : splitCsvRecord(line))
    if (nl < 0) break
  }
  const left = text.slice(start)
  return { batch: { rows, plain }, left: pending === undefined ? left : `${pending}\n${left}` }
}

export const runawayQuote = () => new UnreadableFile({ message: "the HLR results have a runaway quote" })
