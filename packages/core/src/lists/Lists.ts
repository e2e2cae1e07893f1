/**
 * The three phone lists — blacklist, whitelist, monitor — as one service (`docs/lists.md` "The three lists").
 *
 * - A number is on at most one list: every write takes it off the other two.
 * - Every add, move, update and removal leaves a `list_audit` row naming the actor.
 * - Sticky entries (manual and HLR blacklist entries) are not moved by a Voluum classification or
 *   by HLR, nor overwritten by a classification; only an admin's write (`mode: "manual"`, `move`,
 *   `remove`) moves them. (HLR keeps a sticky entry on its own target by default, `onConflict: "keep"`.)
 * - Writes are bulk, never a query per number: rows stream into a COPY on a staging table, and
 *   every `LIST_BATCH_ROWS` rows one set-based statement applies the batch in its own transaction
 *   (`ListsRepository`). Memory stays flat whatever the input size, and the next batch is
 *   normalised and copied while the database applies the previous one.
 * - Only `manual` writes (an admin) touch sticky entries; `classification` leaves sticky entries
 *   on any list alone, `hlr` leaves sticky entries on other lists alone.
 *
 * `applyEntries` / `applyStream` take canonical keys (callers that read them from Voluum or HLR
 * normalise first); `importNumbers`, `importCsv`, `remove`, `move` and `explain` take numbers as
 * typed and normalise them (`phone/PhoneNumber.ts`).
 */
import { Context, Effect, Layer, Option, Stream } from "effect"
import { countryByCallingCode } from "../phone/CallingCodes.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { toDatabaseError } from "../platform/Database.ts"
import { UnreadableFile, ValidationError, type DatabaseError } from "../platform/Errors.ts"
import type { FileBody } from "../platform/FileStore.ts"
import { csvRows, normaliseHeader } from "./ListCsv.ts"
import {
  LIST_NAMES,
  type ApplyCounts,
  type ApplyOptions,
  type ImportCounts,
  type ListCounts,
  type ListEntry,
  type ListExplanation,
  type ListName,
  type RawListRow,
  type RemoveResult
} from "./ListSchemas.ts"
import { ListsRepository } from "./ListsRepository.ts"
import { LIST_BATCH_ROWS, type BatchOptions } from "./ListWriteSink.ts"
import { recordRun } from "../platform/Observability.ts"

const HISTORY_LIMIT = 100
const INVALID_SAMPLES = 20
/** HLR reasons that make a blacklist entry sticky (`docs/lists.md` "The three lists"). */
const STICKY_HLR_REASONS: ReadonlySet<string> = new Set(["HLR_FAILED", "HLR_RISKY_NETWORK"])
/** The shape of a canonical key: what `normalizePhone` returns (a cheap guard, not a validity check). */
const CANONICAL_KEY = /^[1-9][0-9]{6,14}$/

export interface ImportOptions extends ApplyOptions {
  /** ISO2 hint for national numbers (`07700 900123` with `GB`). */
  readonly defaultCountry?: string
}

export interface CsvImportOptions extends ImportOptions {
  /** Reason / source of rows that have none. */
  readonly reason?: string
  readonly source?: string
}

export interface MoveResult extends ApplyCounts {
  readonly invalid: ReadonlyArray<string>
}

/**
 * An HLR run feeds its list writes slowly, beside its own pass over the results: the apply of its
 * last batch, which only starts once the pass has ended, is the tail of the run. Smaller batches
 * shorten it (docs/hlr.md, "Performance").
 */
const HLR_BATCH_ROWS = 20_000

const batchOptions = (options: ApplyOptions): BatchOptions => {
  const onConflict = options.onConflict ?? (options.mode === "hlr" ? "keep" : "overwrite")
  return {
    actor: options.actor,
    conflict: onConflict === "keep" ? "keep" : options.mode === "classification" ? "replace" : "merge",
    guard: options.mode === "manual" ? "none" : options.mode === "hlr" ? "others" : "all",
    batchRows: options.mode === "hlr" ? HLR_BATCH_ROWS : LIST_BATCH_ROWS
  }
}

const stickyFor = (list: ListName, options: ApplyOptions): ((entry: Omit<ListEntry, "phone">) => boolean) => {
  const never = () => false
  const always = () => true
  if (list === "whitelist") return never
  if (options.sticky !== undefined) return options.sticky ? always : never
  if (options.mode === "manual") return list === "blacklist" ? always : never
  if (options.mode === "hlr" && list === "blacklist") return (entry) => STICKY_HLR_REASONS.has(entry.reason ?? "")
  return never
}

const notCanonical = (phone: unknown) =>
  new ValidationError({
    message: `"${String(phone).slice(0, 40)}" is not a canonical phone key (E.164 digits without "+"): normalise it first`,
    field: "phone"
  })

/** Errors thrown inside the write loop: a ValidationError stays one, anything else is the database's. */
const asListError = (cause: unknown): ValidationError | DatabaseError =>
  cause instanceof ValidationError ? cause : toDatabaseError(cause)

const canonicalKey = (entry: ListEntry): string | undefined =>
  typeof entry.phone === "string" && CANONICAL_KEY.test(entry.phone) ? entry.phone : undefined

/** Which cell of a header row holds what, for `importCsv`. */
interface CsvColumns {
  readonly phone: number
  readonly reason: number
  readonly source: number
  readonly ip: number
  readonly osVersion: number
  readonly browserVersion: number
  readonly countryCode: number
}

const PHONE_HEADERS = new Set(["phone", "phonenumber", "customvariable1", "number", "mobile", "msisdn"])

/** The columns of a header row, or undefined when the first row is data (a plain list of numbers). */
const csvColumns = (firstRow: ReadonlyArray<string>): CsvColumns | undefined => {
  const names = firstRow.map(normaliseHeader)
  const phone = names.findIndex((n) => PHONE_HEADERS.has(n))
  if (phone < 0) return undefined
  const find = (...candidates: Array<string>) => names.findIndex((n) => candidates.includes(n))
  return {
    phone,
    reason: find("reason"),
    source: find("source"),
    ip: find("ip"),
    osVersion: find("osversion"),
    browserVersion: find("browserversion", "useragent"),
    countryCode: find("countrycode")
  }
}

export class Lists extends Context.Service<
  Lists,
  {
    /** Writes entries (canonical keys) to `list`, in batches; see `ApplyOptions` for the modes. */
    readonly applyEntries: (
      list: ListName,
      entries: ReadonlyArray<ListEntry>,
      options: ApplyOptions
    ) => Effect.Effect<ApplyCounts, ValidationError | DatabaseError>
    /** The same for a stream of entries of any length, batch by batch. */
    readonly applyStream: <E>(
      list: ListName,
      entries: Stream.Stream<ListEntry, E>,
      options: ApplyOptions
    ) => Effect.Effect<ApplyCounts, E | ValidationError | DatabaseError>
    /** Normalises numbers as typed, then writes the valid ones; invalid ones are counted, not fatal. */
    readonly importNumbers: <E>(
      list: ListName,
      rows: Stream.Stream<RawListRow, E>,
      options: ImportOptions
    ) => Effect.Effect<ImportCounts, E | ValidationError | DatabaseError>
    /**
     * A file of numbers: one per line, or a CSV whose header names a `phone` column (also
     * `phone_number`, `custom_variable_1`, `number`, `mobile`, `msisdn`), with optional `reason`,
     * `source`, `ip`, `os_version`, `browser_version` / `user_agent`, `country_code` columns.
     */
    readonly importCsv: (
      list: ListName,
      /**
       * The file; a function opening it (e.g. `() => createReadStream(path)`) lets the import parse
       * it whole before writing, so an unreadable file writes nothing.
       */
      source: FileBody | (() => FileBody),
      options: CsvImportOptions
    ) => Effect.Effect<ImportCounts, UnreadableFile | ValidationError | DatabaseError>
    /** Takes numbers off `list` (default: every list). An admin action: sticky entries too. */
    readonly remove: (
      phones: ReadonlyArray<string>,
      options: { readonly actor: string; readonly list?: ListName; readonly reason?: string }
    ) => Effect.Effect<RemoveResult, DatabaseError>
    /** Puts numbers on `toList`, taking them off any other, sticky or not (an admin action; sticky on the blacklist). */
    readonly move: (
      phones: ReadonlyArray<string>,
      toList: ListName,
      options: { readonly actor: string; readonly reason?: string; readonly source?: string }
    ) => Effect.Effect<MoveResult, ValidationError | DatabaseError>
    /** Where a number is, why, since when, and its history. Accepts any format (`+44 7700 900123`). */
    readonly explain: (phone: string) => Effect.Effect<ListExplanation, ValidationError | DatabaseError>
    readonly counts: Effect.Effect<ListCounts, DatabaseError>
    /** The list as CSV with a header (`COPY … TO STDOUT WITH CSV HEADER`), streamed. */
    readonly exportList: (list: ListName) => Stream.Stream<Uint8Array, DatabaseError>
    /** Adds canonical keys to `main_database` (already there: skipped); returns how many were new. */
    readonly addToMainDatabase: (
      phones: ReadonlyArray<string>
    ) => Effect.Effect<number, ValidationError | DatabaseError>
    /** Which of these canonical keys are on any of `lists`. */
    readonly listedIn: (
      phones: ReadonlyArray<string>,
      lists: ReadonlyArray<ListName>
    ) => Effect.Effect<ReadonlySet<string>, DatabaseError>
  }
>()("@optimizer/core/lists/Lists") {
  static readonly layerNoDeps = Layer.effect(
    Lists,
    Effect.gen(function* () {
      const repository = yield* ListsRepository

      /**
       * Streams rows into the repository's sink: each row is normalised (`keyOf`) and rendered into
       * the COPY of the current batch as it arrives, so memory stays flat whatever the input size.
       * `strict`: a row without a key is an error (callers promised canonical keys) instead of a
       * counted invalid row.
       */
      const writeRows = <Row extends Omit<ListEntry, "phone"> & { readonly phone: string }, E>(
        list: ListName,
        rows: Stream.Stream<Row, E>,
        options: ApplyOptions,
        keyOf: (row: Row) => string | undefined,
        strict: boolean
      ): Effect.Effect<ImportCounts, E | ValidationError | DatabaseError> =>
        Effect.scoped(
          Effect.gen(function* () {
            const sink = yield* repository.openSink(list, batchOptions(options))
            const sticky = stickyFor(list, options)
            const whitelist = list === "whitelist"
            let total = 0
            let invalid = 0
            const invalidSamples: Array<string> = []
            const feed = async (chunk: ReadonlyArray<Row>) => {
              for (const row of chunk) {
                total++
                const key = keyOf(row)
                if (key === undefined) {
                  if (strict) throw notCanonical(row.phone)
                  invalid++
                  if (invalidSamples.length < INVALID_SAMPLES) invalidSamples.push(String(row.phone))
                  continue
                }
                const country = whitelist ? (row.countryCode ?? countryByCallingCode(key) ?? null) : null
                const wait = sink.write(key, row, sticky(row), country)
                if (wait !== undefined) await wait
              }
            }
            yield* Stream.runForEachArray(rows, (chunk) =>
              Effect.tryPromise({ try: () => feed(chunk), catch: asListError })
            )
            const { repeats, ...counts } = yield* Effect.tryPromise({ try: () => sink.finish(), catch: asListError })
            return { ...counts, total, invalid, repeated: repeats, invalidSamples }
          })
        )

      const countsOnly = ({ added, moved, updated, unchanged, keptSticky }: ImportCounts): ApplyCounts => ({
        added,
        moved,
        updated,
        unchanged,
        keptSticky
      })

      const applyEntries = Effect.fn("Lists.applyEntries")(function* (
        list: ListName,
        entries: ReadonlyArray<ListEntry>,
        options: ApplyOptions
      ) {
        yield* Effect.annotateCurrentSpan({ list, rows: entries.length, mode: options.mode, actor: options.actor })
        // All keys are checked before anything is written.
        for (const entry of entries) if (canonicalKey(entry) === undefined) return yield* notCanonical(entry.phone)
        return countsOnly(yield* writeRows(list, Stream.fromArray(entries), options, canonicalKey, true))
      })

      const applyStream = <E>(list: ListName, entries: Stream.Stream<ListEntry, E>, options: ApplyOptions) =>
        writeRows(list, entries, options, canonicalKey, true).pipe(
          Effect.map(countsOnly),
          Effect.withSpan("Lists.applyStream", { attributes: { list, mode: options.mode, actor: options.actor } })
        )

      const importNumbers = <E>(list: ListName, rows: Stream.Stream<RawListRow, E>, options: ImportOptions) => {
        const keyOf = (row: RawListRow) => {
          const parsed = normalizePhone(row.phone, options.defaultCountry)
          return parsed.ok ? parsed.e164 : undefined
        }
        return writeRows(list, rows, options, keyOf, false).pipe(
          Effect.withSpan("Lists.importNumbers", { attributes: { list, mode: options.mode, actor: options.actor } })
        )
      }

      const importCsv = Effect.fn("Lists.importCsv")(function* (
        list: ListName,
        source: FileBody | (() => FileBody),
        options: CsvImportOptions
      ) {
        // A source that can be read twice is parsed whole first: a file that stops parsing
        // half-way is refused before any batch is written. A one-shot stream is written as it is read.
        if (typeof source === "function") yield* csvRows(source()).pipe(Stream.runDrain)
        const body = typeof source === "function" ? source() : source
        let columns: CsvColumns | undefined | null = null
        const cell = (row: ReadonlyArray<string>, index: number): string | undefined => {
          const value = index < 0 ? undefined : row[index]
          return value === undefined || value === "" ? undefined : value
        }
        const rows = csvRows(body).pipe(
          Stream.mapAccum(
            () => true,
            (first: boolean, row: ReadonlyArray<string>): readonly [boolean, ReadonlyArray<RawListRow>] => {
              if (first) {
                columns = csvColumns(row)
                if (columns !== undefined) return [false, []]
              }
              const c = columns
              if (c === undefined || c === null) {
                return [
                  false,
                  [{ phone: row[0] ?? "", reason: options.reason ?? null, source: options.source ?? null }]
                ]
              }
              return [
                false,
                [
                  {
                    phone: row[c.phone] ?? "",
                    reason: cell(row, c.reason) ?? options.reason ?? null,
                    source: cell(row, c.source) ?? options.source ?? null,
                    ip: cell(row, c.ip) ?? null,
                    osVersion: cell(row, c.osVersion) ?? null,
                    browserVersion: cell(row, c.browserVersion) ?? null,
                    ...(list === "whitelist" && cell(row, c.countryCode) !== undefined
                      ? { countryCode: cell(row, c.countryCode)!.toUpperCase() }
                      : {})
                  }
                ]
              ]
            }
          )
        )
        const counts = yield* importNumbers(list, rows, options)
        if (counts.total === 0) {
          return yield* new UnreadableFile({ message: "the file has no numbers" })
        }
        recordRun("import", counts.total)
        return counts
      })

      /** Canonical keys of the valid inputs (unique) and the invalid inputs as given. */
      const normaliseAll = (phones: ReadonlyArray<string>) => {
        const valid = new Set<string>()
        const invalid: Array<string> = []
        for (const raw of phones) {
          const parsed = normalizePhone(String(raw))
          if (parsed.ok) valid.add(parsed.e164)
          else invalid.push(String(raw))
        }
        return { valid: [...valid], invalid }
      }

      const remove = Effect.fn("Lists.remove")(function* (
        phones: ReadonlyArray<string>,
        options: { readonly actor: string; readonly list?: ListName; readonly reason?: string }
      ) {
        const { valid, invalid } = normaliseAll(phones)
        const removed = yield* repository.remove(valid, options.list === undefined ? LIST_NAMES : [options.list], {
          actor: options.actor,
          reason: options.reason ?? null
        })
        const removedPhones = new Set(removed.map((r) => r.phone))
        return { removed: removed.length, notListed: valid.length - removedPhones.size, invalid }
      })

      const move = Effect.fn("Lists.move")(function* (
        phones: ReadonlyArray<string>,
        toList: ListName,
        options: { readonly actor: string; readonly reason?: string; readonly source?: string }
      ) {
        const { valid, invalid } = normaliseAll(phones)
        const counts = yield* applyEntries(
          toList,
          valid.map((phone) => ({ phone, reason: options.reason ?? null, source: options.source ?? null })),
          { actor: options.actor, mode: "manual" }
        )
        return { ...counts, invalid }
      })

      const explain = Effect.fn("Lists.explain")(function* (raw: string) {
        const parsed = normalizePhone(String(raw ?? "").trim())
        if (!parsed.ok) {
          return yield* new ValidationError({
            message: `"${String(raw).slice(0, 40)}" is not a valid phone number (INVALID_PHONE_NUMBER)`,
            field: "phone"
          })
        }
        const phone = parsed.e164
        const [current, history] = yield* Effect.all(
          [repository.current(phone), repository.history(phone, HISTORY_LIMIT)],
          { concurrency: 2 }
        )
        return Option.match(current, {
          onNone: (): ListExplanation => ({
            phone,
            list: null,
            reason: null,
            source: null,
            sticky: false,
            since: null,
            history
          }),
          onSome: (c): ListExplanation => ({
            phone,
            list: c.list,
            reason: c.reason,
            source: c.source,
            sticky: c.sticky,
            since: c.since,
            history
          })
        })
      })

      const addToMainDatabase = Effect.fn("Lists.addToMainDatabase")(function* (phones: ReadonlyArray<string>) {
        for (const phone of phones) {
          if (typeof phone !== "string" || !CANONICAL_KEY.test(phone)) {
            return yield* new ValidationError({
              message: `"${String(phone).slice(0, 40)}" is not a canonical phone key (E.164 digits without "+")`,
              field: "phone"
            })
          }
        }
        let added = 0
        for (let i = 0; i < phones.length; i += LIST_BATCH_ROWS) {
          added += yield* repository.addToMainDatabase(phones.slice(i, i + LIST_BATCH_ROWS))
        }
        return added
      })

      return Lists.of({
        applyEntries,
        applyStream,
        importNumbers,
        importCsv,
        remove,
        move,
        explain,
        counts: repository.counts,
        exportList: repository.exportCsv,
        addToMainDatabase,
        listedIn: repository.listedIn
      })
    })
  )

  static readonly layer = Lists.layerNoDeps.pipe(Layer.provide(ListsRepository.layer))
}
