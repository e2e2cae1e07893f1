/**
 * What an operator's list file looks like, and a fast streaming reader for it (`docs/cleaning.md` "What processing does").
 *
 * The original read the first column of every line as the phone and had no header handling
 * (`docs/original-api.md` "CSV cleaning"). Files arrive from spreadsheets, CRMs and other teams, so here:
 * - the delimiter is sniffed among `,` `;` tab `|` (a file with none of them is one column);
 * - a UTF-8 byte-order mark is dropped; CRLF, LF and old-Mac CR line ends are read; quoted fields
 *   (`"a,b"`, `""` inside quotes, line breaks inside quotes) follow RFC 4180, leniently;
 * - the first record is a header when it names a known column (`phone`, `msisdn`, `mobile`,
 *   `number`, `tel`, `custom_variable_1`, …, compared without case, spaces, `_` and `-`) or when it
 *   holds text where the rows below hold phone numbers;
 * - the phone column is the one given (`--phone-column` / `phone_column`: a header name, or a
 *   1-based position), else the first column with a known phone name, else the column whose sampled
 *   values most often are valid numbers;
 * - a `country` / `country_code` column, when present, gives each row's default country.
 *
 * Speed: the reader looks for quotes only where the next one is (`indexOf`), so lines without a
 * quote are cut with `indexOf`/`split` — about 10x a general CSV parser — and only quoted records go
 * through the character-by-character state machine.
 */
import { countryCodeByName } from "../phone/CallingCodes.ts"
import { isSupportedCountry, normalizePhone } from "../phone/PhoneNumber.ts"
import { UnreadableFile, ValidationError } from "../platform/Errors.ts"

export type Delimiter = "," | ";" | "\t" | "|"

export interface Dialect {
  /** `undefined`: one column (the file has none of the candidate delimiters). */
  readonly delimiter: Delimiter | undefined
  /** Lone CR line ends (old Mac exports) instead of LF / CRLF. */
  readonly newline: "\n" | "\r"
  readonly hasHeader: boolean
  /** The header's cells (trimmed), or `column_1 … column_n` for a file without one. */
  readonly columns: ReadonlyArray<string>
  /** 0-based. */
  readonly phoneIndex: number
  /** 0-based, -1 when the file has no country column. */
  readonly countryIndex: number
}

/** How the dialect was chosen, for the stats and the logs. */
export const describeDialect = (dialect: Dialect) => ({
  delimiter: dialect.delimiter ?? null,
  has_header: dialect.hasHeader,
  phone_column: dialect.columns[dialect.phoneIndex] ?? `column_${dialect.phoneIndex + 1}`,
  country_column: dialect.countryIndex >= 0 ? (dialect.columns[dialect.countryIndex] ?? null) : null
})

/** A header cell as compared with the known names: lower case, without spaces, `_`, `-`, `.` and a BOM. */
export const normaliseHeader = (cell: string): string => cell.toLowerCase().replace(/[\s_\-.\ufeff]+/g, "")

const PHONE_HEADERS: ReadonlyArray<string> = [
  "phone",
  "phonenumber",
  "phoneno",
  "msisdn",
  "mobile",
  "mobilenumber",
  "mobilephone",
  "mobileno",
  "number",
  "tel",
  "telephone",
  "telephonenumber",
  "cell",
  "cellphone",
  "customvariable1",
  "cv1",
  "e164",
  "phonee164"
]
const COUNTRY_HEADERS: ReadonlyArray<string> = ["country", "countrycode", "countryiso", "countryiso2", "iso2"]

const CANDIDATE_DELIMITERS: ReadonlyArray<Delimiter> = [",", ";", "\t", "|"]
/** Records looked at to choose the delimiter, the header and the phone column. */
const SAMPLE_RECORDS = 200
/** An unfinished record longer than this is an unbalanced quote, not data. */
export const MAX_RECORD_CHARS = 1024 * 1024

const QUOTE = 34 // "
const CR = 13
const LF = 10

/**
 * Reads records from text given chunk by chunk. `feed` calls `onRecord` for every complete record
 * and keeps an unfinished one for the next chunk; `end` flushes the last. Blank lines are skipped.
 * The `cells` array handed to `onRecord` is fresh each time (it may be kept).
 */
export class CsvReader {
  private rest = ""
  private readonly delimiter: string | undefined
  private readonly newline: string

  constructor(dialect: Pick<Dialect, "delimiter" | "newline">) {
    this.delimiter = dialect.delimiter
    this.newline = dialect.newline
  }

  feed(text: string, onRecord: (cells: Array<string>) => void): void {
    const buffer = this.rest === "" ? text : this.rest + text
    const consumed = this.parse(buffer, false, onRecord)
    this.rest = consumed === buffer.length ? "" : buffer.slice(consumed)
    if (this.rest.length > MAX_RECORD_CHARS) {
      throw new UnreadableFile({
        message: `the file has a record longer than ${MAX_RECORD_CHARS} characters: probably an unbalanced quote (")`
      })
    }
  }

  end(onRecord: (cells: Array<string>) => void): void {
    const buffer = this.rest
    this.rest = ""
    if (buffer !== "") this.parse(buffer, true, onRecord)
  }

  /** Emits the complete records of `buffer`; returns how many characters were consumed. */
  private parse(buffer: string, final: boolean, onRecord: (cells: Array<string>) => void): number {
    const length = buffer.length
    const newline = this.newline
    const delimiter = this.delimiter
    let position = 0
    let nextQuote = buffer.indexOf('"')
    while (position < length) {
      let lineEnd = buffer.indexOf(newline, position)
      if (lineEnd === -1) {
        if (!final) break
        lineEnd = length
      }
      if (nextQuote !== -1 && nextQuote < position) nextQuote = buffer.indexOf('"', position)
      if (nextQuote === -1 || nextQuote >= lineEnd) {
        // Fast path: no quote in this line.
        let end = lineEnd
        if (end > position && buffer.charCodeAt(end - 1) === CR) end--
        if (end > position) {
          const line = buffer.slice(position, end)
          if (!isBlank(line)) onRecord(delimiter === undefined ? [line] : line.split(delimiter))
        }
        position = lineEnd + 1
      } else {
        const next = this.parseQuoted(buffer, position, final, onRecord)
        if (next === -1) break
        position = next
      }
    }
    return Math.min(position, length)
  }

  /**
   * One record that has a quote somewhere, character by character. Returns the position after it,
   * or -1 when the buffer ends inside it (more text needed).
   */
  private parseQuoted(buffer: string, start: number, final: boolean, onRecord: (cells: Array<string>) => void): number {
    const length = buffer.length
    const delimiterCode = this.delimiter === undefined ? -1 : this.delimiter.charCodeAt(0)
    const newlineCode = this.newline.charCodeAt(0)
    const cells: Array<string> = []
    let cell = ""
    let position = start
    for (;;) {
      // At the start of a cell. Leading spaces before an opening quote are tolerated.
      let p = position
      while (p < length && buffer.charCodeAt(p) === 32) p++
      if (p < length && buffer.charCodeAt(p) === QUOTE) {
        p++
        let closed = false
        while (p < length) {
          const q = buffer.indexOf('"', p)
          if (q === -1) {
            cell += buffer.slice(p)
            p = length
            break
          }
          cell += buffer.slice(p, q)
          if (q + 1 < length && buffer.charCodeAt(q + 1) === QUOTE) {
            cell += '"'
            p = q + 2
          } else if (q + 1 >= length && !final) {
            // `"` at the very end of the buffer: closing or the first of `""`? Wait for more text.
            return -1
          } else {
            p = q + 1
            closed = true
            break
          }
        }
        if (!closed) {
          if (!final) return -1
          throw new UnreadableFile({ message: 'the file ends inside a quoted field: an unbalanced quote (")' })
        }
      }
      // The (rest of the) cell up to the delimiter or the line end; text after a closing quote is kept.
      let q = p
      while (q < length) {
        const c = buffer.charCodeAt(q)
        if (c === delimiterCode || c === newlineCode) break
        q++
      }
      if (q >= length && !final) return -1
      let end = q
      if (
        q < length &&
        buffer.charCodeAt(q) === newlineCode &&
        newlineCode === LF &&
        end > p &&
        buffer.charCodeAt(end - 1) === CR
      )
        end--
      else if (q >= length && end > p && buffer.charCodeAt(end - 1) === CR) end--
      cell += buffer.slice(p, end)
      cells.push(cell)
      cell = ""
      if (q >= length) {
        position = length
        break
      }
      position = q + 1
      if (buffer.charCodeAt(q) === newlineCode) break
    }
    if (!(cells.length === 1 && isBlank(cells[0]!))) onRecord(cells)
    return position
  }
}

const isBlank = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c !== 32 && c !== 9 && c !== 13 && c !== 0xfeff && c !== 0xa0) return false
  }
  return true
}

/** Does a record carry nothing at all (only empty cells)? Such records are skipped like blank lines. */
export const isEmptyRecord = (cells: ReadonlyArray<string>): boolean => {
  for (const cell of cells) if (!isBlank(cell)) return false
  return true
}

/** The delimiter whose per-line field count is the most consistent (and above one) over the sample lines. */
const sniffDelimiter = (lines: ReadonlyArray<string>): Delimiter | undefined => {
  let best: { delimiter: Delimiter; score: number; fields: number } | undefined
  for (const delimiter of CANDIDATE_DELIMITERS) {
    const reader = new CsvReader({ delimiter, newline: "\n" })
    const counts: Array<number> = []
    reader.feed(lines.join("\n") + "\n", (cells) => counts.push(cells.length))
    reader.end((cells) => counts.push(cells.length))
    if (counts.length === 0) continue
    const frequency = new Map<number, number>()
    for (const n of counts) frequency.set(n, (frequency.get(n) ?? 0) + 1)
    let mode = 1
    let modeCount = 0
    for (const [n, count] of frequency) {
      if (count > modeCount || (count === modeCount && n > mode)) {
        mode = n
        modeCount = count
      }
    }
    if (mode < 2) continue
    const consistency = modeCount / counts.length
    if (consistency < 0.8) continue
    const score = consistency * 1000 + mode
    if (best === undefined || score > best.score) best = { delimiter, score, fields: mode }
  }
  return best?.delimiter
}

/** The default country of a row: its country cell (ISO2 in any case, or an English country name), else `fallback`. */
export const countryHintOf = (cell: string | undefined, fallback: string | undefined): string | undefined => {
  if (cell === undefined) return fallback
  const trimmed = cell.trim()
  if (trimmed === "") return fallback
  if (trimmed.length === 2) {
    const upper = trimmed.toUpperCase()
    return isSupportedCountry(upper) ? upper : fallback
  }
  const byName = countryCodeByName(trimmed)
  return byName !== undefined && isSupportedCountry(byName) ? byName : fallback
}

const hasLetter = (text: string): boolean => /\p{L}/u.test(text)

export interface SniffOptions {
  /** A header name or a 1-based column position. */
  readonly phoneColumn?: string | undefined
  /** ISO2 hint used while judging which cells are phone numbers. */
  readonly defaultCountry?: string | undefined
}

/**
 * The dialect of a file from its first characters (a few kilobytes; the start of the text as
 * decoded, BOM already removed). Fails with `ValidationError` when the phone column that was asked
 * for does not exist.
 */
export const sniffDialect = (sample: string, options: SniffOptions = {}): Dialect | ValidationError => {
  // Lone CR line ends: CRs but not a single LF in the sample.
  const newline: "\n" | "\r" = sample.includes("\r") && !sample.includes("\n") ? "\r" : "\n"
  // Whole lines only (the sample may end mid-line), without blank ones.
  const cut = sample.lastIndexOf(newline)
  const complete = cut === -1 ? sample : sample.slice(0, cut)
  const lines = complete
    .split(newline)
    .map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line))
    .filter((line) => !isBlank(line))
    .slice(0, SAMPLE_RECORDS)
  const delimiter = sniffDelimiter(lines)
  const records: Array<Array<string>> = []
  const reader = new CsvReader({ delimiter, newline })
  const collect = (cells: Array<string>) => {
    if (records.length < SAMPLE_RECORDS && !isEmptyRecord(cells)) records.push(cells)
  }
  try {
    reader.feed(complete + newline, collect)
    reader.end(collect)
  } catch {
    // An unbalanced quote in the sample: judge on the records read so far; the full read will report it.
  }
  const width = Math.max(1, ...records.map((r) => r.length))
  const first = records[0] ?? []
  const names = first.map((cell) => normaliseHeader(cell))
  const hint = options.defaultCountry

  /** How many of the records' cells in column `index` are valid numbers. */
  const validIn = (index: number, rows: ReadonlyArray<ReadonlyArray<string>>): number => {
    let valid = 0
    for (const row of rows) {
      const cell = row[index]
      if (cell !== undefined && normalizePhone(cell, hint).ok) valid++
    }
    return valid
  }

  const requested = options.phoneColumn?.trim()
  const requestedName = requested === undefined || requested === "" ? undefined : normaliseHeader(requested)
  const namedPhone = names.findIndex((n) => PHONE_HEADERS.includes(n))
  const namedCountry = names.findIndex((n) => COUNTRY_HEADERS.includes(n))
  const requestedInFirst = requestedName === undefined ? -1 : names.indexOf(requestedName)

  let hasHeader: boolean
  if (requestedInFirst >= 0 || namedPhone >= 0 || namedCountry >= 0) {
    hasHeader = true
  } else if (records.length < 2) {
    // One record: a header only if it holds text and no number.
    hasHeader = first.length > 0 && first.some(hasLetter) && !first.some((cell) => normalizePhone(cell, hint).ok)
  } else {
    // Text in the first record where the records below hold numbers.
    const rest = records.slice(1)
    let bestColumn = 0
    let bestValid = -1
    for (let i = 0; i < width; i++) {
      const valid = validIn(i, rest)
      if (valid > bestValid) {
        bestValid = valid
        bestColumn = i
      }
    }
    const firstCell = first[bestColumn] ?? ""
    hasHeader =
      bestValid >= rest.length / 2 &&
      !normalizePhone(firstCell, hint).ok &&
      hasLetter(firstCell) &&
      !first.some((cell) => normalizePhone(cell, hint).ok)
  }

  const columns = hasHeader
    ? Array.from({ length: width }, (_, i) => (first[i] ?? "").trim().replace(/^\ufeff/, "") || `column_${i + 1}`)
    : Array.from({ length: width }, (_, i) => `column_${i + 1}`)
  const data = hasHeader ? records.slice(1) : records

  let phoneIndex: number
  if (requested !== undefined && requested !== "") {
    const byName = hasHeader ? names.indexOf(requestedName!) : -1
    const position = /^[1-9][0-9]*$/.test(requested) ? Number(requested) - 1 : -1
    phoneIndex = byName >= 0 ? byName : position >= 0 && position < Math.max(width, 1) ? position : -1
    if (phoneIndex < 0) {
      return new ValidationError({
        message: `phone column "${requested}" not found: the file's columns are ${columns.map((c) => `"${c}"`).join(", ")} (give a header name or a 1-based position)`,
        field: "phone_column"
      })
    }
  } else if (hasHeader && namedPhone >= 0) {
    phoneIndex = namedPhone
  } else {
    phoneIndex = 0
    let bestValid = 0
    for (let i = 0; i < width; i++) {
      const valid = validIn(i, data)
      if (valid > bestValid) {
        bestValid = valid
        phoneIndex = i
      }
    }
  }
  return {
    delimiter,
    newline,
    hasHeader,
    columns,
    phoneIndex,
    countryIndex: hasHeader && namedCountry !== phoneIndex ? namedCountry : -1
  }
}

/** One CSV line (comma-separated, quoted where needed, LF-terminated). */
export const csvLine = (cells: ReadonlyArray<string>): string => {
  let line = ""
  for (let i = 0; i < cells.length; i++) {
    if (i > 0) line += ","
    const cell = cells[i]!
    line += /[",\r\n]/.test(cell) || cell !== cell.trim() ? `"${cell.replace(/"/g, '""')}"` : cell
  }
  return line + "\n"
}
