/**
 * Reading an Ongage CSV job's file (`docs/ongage-jobs.md`): the original's required header, checked
 * case-sensitively as the original did, and the rows as columns ready for one `unnest` insert.
 * Nothing here touches the database: a file that fails here leaves no job behind.
 */
import { Effect, Stream } from "effect"
import { csvRows } from "../lists/ListCsv.ts"
import type { FileBody } from "../platform/FileStore.ts"
import { PayloadTooLarge, type UnreadableFile, ValidationError } from "../platform/Errors.ts"

/** The header the original required, in its order and spelling (case-sensitive). */
export const CSV_JOB_HEADERS = [
  "List_ID",
  "Email",
  "Country",
  "Source",
  "Mobile",
  "conversion_type",
  "Original_source",
  "HLR_Status",
  "Uuid"
] as const

export type CsvJobHeader = (typeof CSV_JOB_HEADERS)[number]

/** The file's records, one array per required column (file order), so the insert is one statement per chunk. */
export type CsvJobColumns = Readonly<Record<CsvJobHeader, Array<string>>>

export interface CsvJobFile {
  readonly columns: CsvJobColumns
  readonly count: number
}

/** The required columns the header lacks (exact, case-sensitive names). */
export const missingHeaders = (header: ReadonlyArray<string>): ReadonlyArray<CsvJobHeader> => {
  const present = new Set(header)
  return CSV_JOB_HEADERS.filter((h) => !present.has(h))
}

const emptyColumns = (): Record<CsvJobHeader, Array<string>> => ({
  List_ID: [],
  Email: [],
  Country: [],
  Source: [],
  Mobile: [],
  conversion_type: [],
  Original_source: [],
  HLR_Status: [],
  Uuid: []
})

/** `body`'s chunks until more than `maxBytes` have come, then a failure (`exceeded` says so). */
async function* boundedBody(
  body: FileBody,
  maxBytes: number,
  exceeded: { value: boolean }
): AsyncGenerator<Uint8Array | string> {
  const chunks: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> =
    typeof body === "string" || body instanceof Uint8Array ? [body] : body
  let size = 0
  for await (const chunk of chunks) {
    size += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength
    if (size > maxBytes) {
      exceeded.value = true
      throw new Error(`the file is larger than ${maxBytes} bytes`)
    }
    yield chunk
  }
}

/**
 * The records of an uploaded file: `ValidationError` for a name without `.csv`, an empty file, a
 * header without every required column (naming the missing ones) or no record under the header;
 * `UnreadableFile` for a file that is not CSV text; `PayloadTooLarge` past `maxBytes` (the records
 * are held in memory until the one insert).
 */
export const readCsvJobFile = (
  filename: string,
  body: FileBody,
  maxBytes = Infinity
): Effect.Effect<CsvJobFile, ValidationError | UnreadableFile | PayloadTooLarge> =>
  Effect.gen(function* () {
    if (!filename.toLowerCase().endsWith(".csv")) {
      return yield* new ValidationError({ message: "Only .csv files are allowed", field: "file" })
    }
    const columns = emptyColumns()
    let positions: ReadonlyArray<readonly [CsvJobHeader, number]> | undefined
    let count = 0
    let missing: ReadonlyArray<CsvJobHeader> = []
    const exceeded = { value: false }
    yield* csvRows(maxBytes === Infinity ? body : boundedBody(body, maxBytes, exceeded)).pipe(
      Stream.takeWhile(() => missing.length === 0),
      Stream.runForEach((row) =>
        Effect.sync(() => {
          if (positions === undefined) {
            missing = missingHeaders(row)
            positions = CSV_JOB_HEADERS.map((h) => [h, row.indexOf(h)] as const)
            return
          }
          for (const [name, at] of positions) columns[name].push(row[at] ?? "")
          count++
        })
      ),
      Effect.catchIf(
        () => exceeded.value,
        () =>
          Effect.fail(
            new PayloadTooLarge({
              message: `the file is larger than ${maxBytes} bytes (UPLOAD_MAX_BYTES)`,
              limitBytes: maxBytes
            })
          )
      )
    )
    if (positions === undefined) {
      return yield* new ValidationError({ message: "The file is empty", field: "file" })
    }
    if (missing.length > 0) {
      return yield* new ValidationError({
        message: `Missing required columns: ${missing.join(", ")} (the header must name ${CSV_JOB_HEADERS.join(", ")}; names are case-sensitive)`,
        field: "file"
      })
    }
    if (count === 0) {
      return yield* new ValidationError({ message: "The file has no records under its header", field: "file" })
    }
    return { columns, count }
  })
