/**
 * The batch commit of live events: the prepared messages written in ONE transaction (the batch
 * statement, then the classification of the phones whose live event changed into the lists), the
 * retry message by message when PostgreSQL refuses a value of some message, and the counts of what
 * a batch did.
 */
import { Effect, Result, Schedule } from "effect"
import type { SqlClient } from "effect/sql"
import type { Category, Classifier } from "../classification/Classifier.ts"
import type { Lists } from "../lists/Lists.ts"
import { addCounts, emptyCounts, type ApplyCounts, type ListEntry, type ListName } from "../lists/ListSchemas.ts"
import { describeDatabaseFailure, toDatabaseError } from "../platform/Database.ts"
import { DatabaseError } from "../platform/Errors.ts"
import { maskPhones } from "../platform/Logging.ts"
import type { FailedMessage, Prepared } from "./LiveEventRows.ts"
import type { LiveEventsRepository, WrittenEvent } from "./LiveEventsRepository.ts"

/** Who the lists' audit names for a live-event classification. */
export const LIVE_EVENTS_ACTOR = "sqs:live-events"
/** `source` of list entries first created by a live event (the report sync writes `VOLUUM`). */
export const LIVE_EVENTS_SOURCE = "VOLUUM_LIVE"

export interface BatchCounts {
  readonly messages: number
  readonly committed: number
  readonly failed: number
  /** Committed earlier (SNS/SQS redelivery): acknowledged without writing anything again. */
  readonly duplicates: number
  /** SNS control messages (subscription confirmations): acknowledged, nothing to store. */
  readonly ignored: number
  /** Events of the messages applied now. */
  readonly events: number
  readonly rawRows: number
  /** Phones whose live event was created or replaced. */
  readonly liveWritten: number
  /** Events with a phone that did not change the live table: older than the stored one, or superseded in the batch. */
  readonly notNewer: number
  /** Events stored raw only: no custom variable 1, not a phone number, or a token no key decrypts. */
  readonly withoutPhone: number
  /** Of `withoutPhone`: tokens that no configured key decrypts. */
  readonly undecryptable: number
  /** Live events written, by the category of their OS version (only those with an osVersion are classified). */
  readonly classified: Readonly<Record<"blacklist" | "whitelist" | "monitor" | "unknown", number>>
  /** What the list writes did. */
  readonly lists: ApplyCounts
}

export interface BatchOutcome {
  /** SQS message ids now safe to delete: applied by this call, duplicates of committed ones, ignored ones. */
  readonly committed: ReadonlyArray<string>
  /** Not stored: leave them on the queue (they come back, then go to the dead-letter queue). */
  readonly failed: ReadonlyArray<FailedMessage>
  readonly counts: BatchCounts
}

/** What one transaction (a group of messages) wrote. */
export interface GroupResult {
  readonly claimed: ReadonlySet<string>
  readonly rawRows: number
  readonly written: ReadonlyArray<WrittenEvent>
  readonly classified: BatchCounts["classified"]
  readonly lists: ApplyCounts
}

/** The groups committed, and the messages PostgreSQL refused. */
export interface Written {
  readonly results: ReadonlyArray<{ readonly group: ReadonlyArray<Prepared>; readonly result: GroupResult }>
  readonly refused: ReadonlyArray<FailedMessage>
}

const CATEGORY_LIST: Readonly<Record<Category, ListName | undefined>> = {
  BLACKLIST: "blacklist",
  WHITELIST: "whitelist",
  MONITOR: "monitor",
  UNKNOWN: undefined
}

const noneClassified = { blacklist: 0, whitelist: 0, monitor: 0, unknown: 0 } as const

// ---------------------------------------------------------------------------------------------
// Telling a bad message from an unreachable database.

/** The SQLSTATE of a failure from either driver (`pg`'s `code`, `@effect/sql-pg`'s `reason.cause.code`). */
export const sqlStateOf = (error: unknown, depth = 0): string | undefined => {
  if (typeof error !== "object" || error === null || depth > 5) return undefined
  const e = error as { code?: unknown; reason?: unknown; cause?: unknown }
  if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code
  return sqlStateOf(e.reason, depth + 1) ?? sqlStateOf(e.cause, depth + 1)
}

/** A failure caused by the data of some message (a value PostgreSQL refuses), not by the database's state. */
const isDataError = (error: unknown): boolean => {
  if ((error as { _tag?: unknown })?._tag === "ValidationError") return true
  const state = sqlStateOf(error)
  // 22: data exception (bad value, \u0000 in text…); 23: constraint violation; 54: program limit exceeded.
  return state !== undefined && (state.startsWith("22") || state.startsWith("23") || state.startsWith("54"))
}

/** A conflict with a concurrent transaction: retrying at once succeeds. */
const isTransient = (error: unknown): boolean => {
  const state = sqlStateOf(error)
  return state === "40P01" || state === "40001"
}

/** What the driver said (phones masked); a `DatabaseError` made from a driver failure is looked through. */
const driverReason = (error: unknown): string =>
  maskPhones(describeDatabaseFailure(error instanceof DatabaseError && error.cause !== undefined ? error.cause : error))

// ---------------------------------------------------------------------------------------------

export interface BatchCommitServices {
  readonly sql: SqlClient.SqlClient
  readonly repository: LiveEventsRepository["Service"]
  readonly lists: Lists["Service"]
  readonly classifier: Classifier["Service"]
}

/** The writer of prepared messages, on the app's services. */
export const makeBatchCommit = ({ sql, repository, lists, classifier }: BatchCommitServices) => {
  const classify = (written: ReadonlyArray<WrittenEvent>) =>
    Effect.gen(function* () {
      const byList: Record<ListName, Array<ListEntry>> = { blacklist: [], whitelist: [], monitor: [] }
      const classified = { blacklist: 0, whitelist: 0, monitor: 0, unknown: 0 }
      for (const event of written) {
        if (event.os_version === null) continue
        const list = CATEGORY_LIST[classifier.classify(event.os_version).category]
        if (list === undefined) {
          classified.unknown++
          continue
        }
        classified[list]++
        byList[list].push({
          phone: event.phone,
          reason: "OS_VERSION",
          source: LIVE_EVENTS_SOURCE,
          ip: event.ip,
          osVersion: event.os_version,
          browserVersion: event.browser_version
        })
      }
      let counts = emptyCounts
      for (const list of ["blacklist", "whitelist", "monitor"] as const) {
        if (byList[list].length === 0) continue
        // Most clicks come from numbers already on their list: with "keep" such an entry would be
        // left unchanged, so only the others pay for the list write (staging, lock, audit).
        const already = yield* lists.listedIn(
          byList[list].map((e) => e.phone),
          [list]
        )
        const toWrite = already.size === 0 ? byList[list] : byList[list].filter((e) => !already.has(e.phone))
        counts = addCounts(counts, { ...emptyCounts, unchanged: byList[list].length - toWrite.length })
        if (toWrite.length === 0) continue
        // "keep": live events carry no report metrics, so an entry already on its list is left as the report sync wrote it.
        const applied = yield* lists.applyEntries(list, toWrite, {
          actor: LIVE_EVENTS_ACTOR,
          mode: "classification",
          onConflict: "keep"
        })
        counts = addCounts(counts, applied)
      }
      return { classified, lists: counts }
    })

  /** One transaction for a group of messages (keys unique within the group). */
  const writeGroup = (group: ReadonlyArray<Prepared>): Effect.Effect<GroupResult, unknown> =>
    sql
      .withTransaction(
        Effect.gen(function* () {
          const rows = group.flatMap((p) => p.rows)
          const { claimed, rawRows, written } = yield* repository.write(
            group.map((p) => p.key),
            rows
          )
          const { classified, lists: listCounts } = yield* classify(written)
          return { claimed, rawRows, written, classified, lists: listCounts }
        })
      )
      .pipe(
        Effect.retry({
          while: isTransient,
          schedule: Schedule.exponential("20 millis").pipe(Schedule.jittered),
          times: 5
        })
      )

  /**
   * Writes messages whose keys are unique: all in one transaction; when PostgreSQL refuses a value,
   * one transaction per message, so only the offending message fails. Any other failure fails the
   * call (nothing of a failed transaction was committed).
   */
  const write = (unique: ReadonlyArray<Prepared>): Effect.Effect<Written, DatabaseError> =>
    Effect.gen(function* () {
      const results: Array<{ group: ReadonlyArray<Prepared>; result: GroupResult }> = []
      const refused: Array<FailedMessage> = []
      if (unique.length === 0) return { results, refused }
      const whole = yield* writeGroup(unique).pipe(Effect.result)
      if (Result.isSuccess(whole)) {
        results.push({ group: unique, result: whole.success })
      } else if (isDataError(whole.failure)) {
        yield* Effect.logWarning("a message of the batch was refused by the database; committing one by one").pipe(
          Effect.annotateLogs({ error: driverReason(whole.failure) })
        )
        for (const p of unique) {
          const single = yield* writeGroup([p]).pipe(Effect.result)
          if (Result.isSuccess(single)) results.push({ group: [p], result: single.success })
          else if (isDataError(single.failure))
            refused.push({
              messageId: p.messageId,
              reason: `refused by the database: ${driverReason(single.failure)}`
            })
          else return yield* toDatabaseError(single.failure)
        }
      } else {
        return yield* toDatabaseError(whole.failure)
      }
      return { results, refused }
    })

  return { write }
}

/**
 * What a batch did. `failed`: the messages that could not be read; `sameAs`: a message whose key
 * came earlier in the batch → that first message (it shares the first one's fate).
 */
export const batchOutcome = (
  messages: number,
  prepared: ReadonlyArray<Prepared>,
  failed: ReadonlyArray<FailedMessage>,
  sameAs: ReadonlyMap<string, string>,
  { results, refused }: Written
): BatchOutcome => {
  const failedIds = new Set(refused.map((f) => f.messageId))
  const allFailed = [...failed, ...refused]
  for (const [messageId, firstId] of sameAs) {
    if (failedIds.has(firstId)) allFailed.push({ messageId, reason: "a copy of this message failed in the same batch" })
  }
  const failedSet = new Set(allFailed.map((f) => f.messageId))
  const committed = prepared.map((p) => p.messageId).filter((id) => !failedSet.has(id))

  let duplicates = sameAs.size - [...sameAs.values()].filter((id) => failedIds.has(id)).length
  let ignored = 0
  let events = 0
  let rawRows = 0
  let liveWritten = 0
  let phoneEvents = 0
  let withoutPhone = 0
  let undecryptable = 0
  const classified = { ...noneClassified }
  let listCounts = emptyCounts
  for (const { group, result } of results) {
    rawRows += result.rawRows
    liveWritten += result.written.length
    for (const k of ["blacklist", "whitelist", "monitor", "unknown"] as const) classified[k] += result.classified[k]
    listCounts = addCounts(listCounts, result.lists)
    for (const p of group) {
      if (!result.claimed.has(p.key)) {
        duplicates++
        continue
      }
      if (p.kind === "ignored") {
        ignored++
        continue
      }
      events += p.rows.length
      phoneEvents += p.rows.length - p.withoutPhone
      withoutPhone += p.withoutPhone
      undecryptable += p.undecryptable
    }
  }
  const counts: BatchCounts = {
    messages,
    committed: committed.length,
    failed: allFailed.length,
    duplicates,
    ignored,
    events,
    rawRows,
    liveWritten,
    notNewer: phoneEvents - liveWritten,
    withoutPhone,
    undecryptable,
    classified,
    lists: listCounts
  }
  return { committed, failed: allFailed, counts }
}
