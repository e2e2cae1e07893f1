/**
 * An HLR batch's results applied (`docs/hlr.md`): the provider's results CSV and the cached results of
 * the numbers not sent, classified and written to the lists, `api_hlr_live_numbers`, the lookup cache
 * and the clean file.
 *
 * Classification by `live_status` (upper-cased; `docs/original-api.md` "HLR"): `LIVE` is **risky** when the
 * current network is on the risky-operators list, else **live**; the dead statuses are **dead**;
 * absent / inconclusive / no coverage are **monitor**; anything else is **unknown**: counted and
 * reported, written nowhere. Columns are read by name, so their order and extra columns do not matter.
 * A phone answered twice counts twice; its first row is the one written (its first live row for
 * `api_hlr_live_numbers`).
 *
 * How it stays fast and flat in memory for a million rows: one pass over the results as they
 * download (`Hlr.ts` stores a copy on the way; `HlrResultsPass.ts`) on three connections at once — the live rows COPYed straight into
 * `api_hlr_live_numbers`, the cache rows and the list entries into temporary tables — then the cache
 * written and the list entries streamed into `Lists.applyStream`, side by side. Per row, JS keeps a
 * few bits (`PhoneTable.ts`).
 *
 * Idempotent: applying the same results again changes nothing (live rows and list entries are kept
 * when present, the cache is written with the same values), so a retried job may apply twice.
 */
import { Effect, Stream } from "effect"
import { RiskyOperators } from "../classification/RiskyOperators.ts"
import { Lists } from "../lists/Lists.ts"
import type { ApplyCounts } from "../lists/ListSchemas.ts"
import { dedicatedClient, PgBulk, toDatabaseError } from "../platform/Database.ts"
import {
  StorageError,
  UnreadableFile,
  UpstreamError,
  type DatabaseError,
  type NotFound,
  type ValidationError
} from "../platform/Errors.ts"
import { FileStore } from "../platform/FileStore.ts"
import { KeyedCopy, lockInOrder } from "./HlrKeyedCopy.ts"
import { EntryQueue } from "./EntryQueue.ts"
import { ENTRY_SOURCE, type HlrCategory, LIVE_COLUMNS } from "./HlrResultColumns.ts"
import { resultsPass } from "./HlrResultsPass.ts"

export { splitCsvRecord } from "./HlrResultsCsv.ts"
export { CACHED_RISKY, categoryOf, type HlrCategory, resultKey } from "./HlrResultColumns.ts"

export interface HlrApplyInput {
  readonly fileId: string
  /**
   * The provider's results CSV as it arrives (null when every number came from the cache): read
   * once, to its end, as the pass pulls it. What it throws
   * fails the apply as it is when typed — an `UpstreamError` (the download broke off), a
   * `StorageError` (a file could not be written) — so a retryable failure stays retryable; anything
   * else is a `DatabaseError`.
   */
  readonly results: AsyncIterable<Uint8Array> | null
  /** FileStore key of the cleaned file that was checked (one number per line). */
  readonly numbersKey: string
  /** FileStore key the clean file (`phone_number` header, live numbers) is written to. */
  readonly cleanKey: string
  /** Audit actor of the list writes (`hlr:<file_id>`). */
  readonly actor: string
}

export interface HlrApplyResult {
  /** Result rows in the provider's file. */
  readonly results: number
  /** Numbers answered from the cache instead of being sent. */
  readonly reused: number
  /** Result rows without a usable number (skipped, as the original did). */
  readonly skipped: number
  /** Numbers of the file with neither a result nor a cached one. */
  readonly missing: number
  readonly categories: Record<HlrCategory, number>
  /** Per `live_status` (upper-cased; blank as `""`), results and reused together. */
  readonly statuses: Record<string, number>
  readonly liveRowsAdded: number
  readonly clean: number
  readonly blacklist: ApplyCounts
  readonly monitor: ApplyCounts
}

export const applyHlrResults = (
  input: HlrApplyInput
): Effect.Effect<
  HlrApplyResult,
  UnreadableFile | UpstreamError | NotFound | DatabaseError | StorageError | ValidationError,
  PgBulk | FileStore | Lists | RiskyOperators
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const bulk = yield* PgBulk
      const files = yield* FileStore
      const lists = yield* Lists
      const risky = yield* RiskyOperators
      const run = <A>(what: string, f: () => Promise<A>) =>
        Effect.tryPromise({
          try: f,
          catch: (cause) =>
            cause instanceof UnreadableFile || cause instanceof UpstreamError || cause instanceof StorageError
              ? cause
              : toDatabaseError(cause, what)
        })
      // Sessions of their own (outside the pool, which other work uses): each holds a transaction
      // and a table lock for the length of the pass.
      const connect = (name: string) =>
        Effect.acquireRelease(
          run("could not connect for the HLR results", () => dedicatedClient(bulk, name)),
          (c) => Effect.promise(() => c.end().catch(() => undefined))
        )
      const liveDb = yield* connect("optimizer-hlr-live")
      const cacheDb = yield* connect("optimizer-hlr-cache")

      const numbers = yield* files.get(input.numbersKey)
      const results = input.results ?? undefined
      const writer = yield* files.openWriter(input.cleanKey)
      const live = new KeyedCopy(liveDb, "api_hlr_live_numbers", ["custom_variable_1", ...LIVE_COLUMNS], "keep", true)
      const cache = new KeyedCopy(
        cacheDb,
        "hlr_lookups_cache",
        ["custom_variable_1", "live_status", "looked_up_at"],
        "update"
      )
      const black = new EntryQueue(ENTRY_SOURCE)
      const monitored = new EntryQueue(ENTRY_SOURCE)
      const pass = run("applying the HLR results", async () => {
        try {
          await lockInOrder([live, cache])
          await writer.write("phone_number\n")
          const counts = await resultsPass(
            results,
            numbers,
            { live, cache, blacklist: black, monitor: monitored, clean: writer, lookup: cacheDb },
            risky.isRisky
          )
          await writer.close()
          return counts
        } catch (error) {
          black.fail(error)
          monitored.fail(error)
          // A body not read to its end is closed now, not when collected.
          for (const body of [numbers, results]) await body?.[Symbol.asyncIterator]().return?.()
          throw error
        }
      })
      // The list writes run beside the pass, fed as it reads.
      const options = { actor: input.actor, mode: "hlr" as const }
      const entries = (queue: EntryQueue) =>
        Stream.fromAsyncIterable(queue, (cause) =>
          cause instanceof UnreadableFile ? cause : toDatabaseError(cause, "applying the HLR results")
        ).pipe(Stream.flattenIterable)
      const [counts, blacklist, monitor] = yield* Effect.all(
        [
          pass,
          lists.applyStream("blacklist", entries(black), options),
          lists.applyStream("monitor", entries(monitored), options)
        ],
        { concurrency: "unbounded" }
      )
      return {
        results: counts.results,
        reused: counts.reused,
        skipped: counts.skipped,
        missing: counts.missing,
        categories: counts.categories,
        statuses: counts.statuses,
        liveRowsAdded: live.added,
        clean: counts.clean,
        blacklist,
        monitor
      }
    })
  )
