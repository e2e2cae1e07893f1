/**
 * Voluum live click events (SPEC.md §4.11, ORIGINAL.md §8): a batch of queue messages in, a record of
 * which of them are safely stored out. The SQS adapter deletes exactly the committed ones.
 *
 * `commitBatch(messages)`:
 * 1. Parses each message (`LiveEventSchemas.parseMessage`): a message that is not JSON, or whose
 *    event does not decode, fails ALONE — the others go on.
 * 2. Reads each event's phone from custom variable 1: a token (≥ 25 characters) is decrypted
 *    (`Encryption`), then the number is normalised (`normalizePhone`). An event without a usable
 *    phone (empty, invalid, a token no key opens) is still stored raw, but not as a live event.
 *    A token while AES_KEY is not configured fails its message (a configuration problem: the queue
 *    keeps it until the key is set).
 * 3. Refreshes the offer / campaign names from Voluum when an id is unknown — at most once per
 *    interval across all consumers, and never failing the batch (names stay NULL and are filled in
 *    by the next successful refresh).
 * 4. In ONE transaction: records the messages' idempotency keys (a message already recorded is a
 *    duplicate: acknowledged, nothing written again), appends the raw events, upserts
 *    `voluum_live_events` (newest event per phone wins, in the batch and against what is stored),
 *    and classifies the phones whose live event changed (only events with an `osVersion`) into the
 *    lists through `Lists` (mode "classification": sticky entries are left alone; an entry already on
 *    its list keeps its report metrics). `Lists` writes on its own connection, so its transaction
 *    commits just BEFORE the batch's; if the batch's commit then fails, nothing is acknowledged and
 *    the redelivered messages re-apply the same classification, which changes nothing the second time.
 * 5. A batch that fails on a data error (a value PostgreSQL refuses) is retried message by message,
 *    so only the offending message fails; a deadlock with another consumer is retried at once; any
 *    other failure (the database is unreachable) fails the whole call with `DatabaseError`, and the
 *    caller retries later — nothing of the batch was committed.
 */
import { Clock, Context, Duration, Effect, Layer, Result, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { Classifier, type Category } from "../classification/Classifier.ts"
import { Encryption, isEncryptedToken } from "../encryption/Encryption.ts"
import { Lists } from "../lists/Lists.ts"
import { addCounts, emptyCounts, type ApplyCounts, type ListEntry, type ListName } from "../lists/ListSchemas.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { AppConfig } from "../platform/Config.ts"
import { DatabaseError } from "../platform/Errors.ts"
import { maskPhones } from "../platform/Logging.ts"
import { VoluumClient } from "../voluum/VoluumClient.ts"
import { parseMessage, type IncomingMessage, type LiveEvent } from "./LiveEventSchemas.ts"
import { LiveEventsRepository, type EventRow, type NamesSaved, type WrittenEvent } from "./LiveEventsRepository.ts"

/** Who the lists' audit names for a live-event classification. */
export const LIVE_EVENTS_ACTOR = "sqs:live-events"
/** `source` of list entries first created by a live event (the report sync writes `VOLUUM`). */
export const LIVE_EVENTS_SOURCE = "VOLUUM_LIVE"

export interface FailedMessage {
  readonly messageId: string
  /** Why it was not stored (no phone numbers in clear). */
  readonly reason: string
}

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

export interface LiveEventsOptions {
  /** At most one Voluum refresh of offer/campaign names per interval (across consumers). Default 10 minutes. */
  readonly namesRefreshInterval?: Duration.Input
}

/** A message read and ready to write. */
interface Prepared {
  readonly messageId: string
  readonly key: string
  readonly kind: "events" | "ignored"
  readonly rows: ReadonlyArray<EventRow>
  readonly withoutPhone: number
  readonly undecryptable: number
}

interface GroupResult {
  readonly claimed: ReadonlySet<string>
  readonly rawRows: number
  readonly written: ReadonlyArray<WrittenEvent>
  readonly classified: BatchCounts["classified"]
  readonly lists: ApplyCounts
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

const describe = (error: unknown): string => {
  const e = error as { message?: unknown; reason?: { message?: unknown; cause?: { message?: unknown } } }
  const parts = [e.reason?.cause?.message, e.reason?.message, e.message].filter(
    (s): s is string => typeof s === "string" && s !== ""
  )
  return maskPhones(parts[0] ?? String(error))
}

const asDatabaseError = (error: unknown): DatabaseError =>
  error instanceof DatabaseError
    ? error
    : new DatabaseError({ message: `database error: ${describe(error)}`, cause: error })

// ---------------------------------------------------------------------------------------------

const eventRow = (key: string, ord: number, event: LiveEvent, phone: string | null): EventRow => ({
  msg: key,
  ord,
  phone,
  custom_variables: event.customVariables,
  click_id: event.clickId,
  campaign_id: event.campaignId,
  offer_id: event.offerId,
  timestamp: event.timestamp === null ? null : event.timestamp.toISOString(),
  external_id: event.externalId,
  traffic_source_id: event.trafficSourceId,
  lander_id: event.landerId,
  affiliate_network_id: event.affiliateNetworkId,
  brand: event.brand,
  browser: event.browser,
  browser_version: event.browserVersion,
  device: event.device,
  model: event.model,
  os: event.os,
  os_version: event.osVersion,
  city: event.city,
  region: event.region,
  country_code: event.countryCode,
  isp: event.isp,
  ip: event.ip,
  referrer: event.referrer,
  url: event.url,
  user_agent: event.userAgent,
  language: event.language,
  mobile_carrier: event.mobileCarrier,
  connection_type: event.connectionType,
  flow_id: event.flowId,
  path_id: event.pathId
})

export class LiveEvents extends Context.Service<
  LiveEvents,
  {
    /** Stores a batch (module comment); fails only when the database cannot be used at all. */
    readonly commitBatch: (messages: ReadonlyArray<IncomingMessage>) => Effect.Effect<BatchOutcome, DatabaseError>
  }
>()("@optimizer/core/live-events/LiveEvents") {
  static readonly layerWith = (options: LiveEventsOptions = {}) =>
    Layer.effect(
      LiveEvents,
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const repository = yield* LiveEventsRepository
        const lists = yield* Lists
        const classifier = yield* Classifier
        const encryption = yield* Encryption
        const voluum = yield* VoluumClient
        const settings = yield* AppConfig
        const refreshEveryMs = Duration.toMillis(Duration.fromInputUnsafe(options.namesRefreshInterval ?? "10 minutes"))
        let lastRefreshAttempt = Number.NEGATIVE_INFINITY

        // -- names ---------------------------------------------------------------------------------

        const refreshNames = Effect.gen(function* () {
          const [offers, campaigns] = yield* Effect.all([voluum.offers(), voluum.campaigns()], { concurrency: 2 })
          const fits = (map: ReadonlyMap<string, string>) => new Map([...map].filter(([id]) => id.length <= 64))
          return yield* repository.saveNames(fits(offers), fits(campaigns)).pipe(Effect.mapError(asDatabaseError))
        })

        /** Refreshes the lookup tables when some id of the batch is unknown; never fails the batch. */
        const resolveNames = (rows: ReadonlyArray<EventRow>) =>
          Effect.gen(function* () {
            if (!settings.voluum.configured) return
            const now = yield* Clock.currentTimeMillis
            if (now - lastRefreshAttempt < refreshEveryMs) return
            const offerIds = new Set<string>()
            const campaignIds = new Set<string>()
            for (const row of rows) {
              if (row.offer_id !== null && row.offer_id !== "") offerIds.add(row.offer_id)
              if (row.campaign_id !== null && row.campaign_id !== "") campaignIds.add(row.campaign_id)
            }
            const unknown = yield* repository.unknownIds([...offerIds], [...campaignIds])
            if (unknown.offers.length === 0 && unknown.campaigns.length === 0) return
            // Another consumer may have refreshed a moment ago: the tables' newest updated_at says when.
            const last = yield* repository.lastNamesRefresh
            lastRefreshAttempt = now
            if (last !== null && now - last.getTime() < refreshEveryMs) return
            const saved: NamesSaved = yield* refreshNames.pipe(Effect.timeout("60 seconds"))
            yield* Effect.logInfo("offer and campaign names refreshed from Voluum").pipe(
              Effect.annotateLogs({
                unknownOffers: unknown.offers.length,
                unknownCampaigns: unknown.campaigns.length,
                offers: saved.offers,
                campaigns: saved.campaigns,
                eventsNamed: saved.eventsNamed
              })
            )
          }).pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning(
                "could not refresh offer and campaign names; they stay empty until the next refresh",
                cause
              )
            )
          )

        // -- preparation ---------------------------------------------------------------------------

        const prepare = (messages: ReadonlyArray<IncomingMessage>) =>
          Effect.gen(function* () {
            const failed: Array<FailedMessage> = []
            const parsed: Array<{
              message: IncomingMessage
              key: string
              events: ReadonlyArray<LiveEvent> | undefined
            }> = []
            const tokens: Array<string> = []
            for (const [i, message] of messages.entries()) {
              // A large batch is parsed in slices, so the process's receives and deletes are served meanwhile.
              if (i > 0 && i % 100 === 0) yield* Effect.yieldNow
              const result = parseMessage(message)
              if (Result.isFailure(result)) {
                failed.push({ messageId: message.messageId, reason: maskPhones(result.failure) })
                continue
              }
              const value = result.success
              if (value.kind === "ignored") {
                parsed.push({ message, key: value.key, events: undefined })
                continue
              }
              for (const event of value.events) {
                const cv1 = event.customVariables[0]
                if (cv1 !== undefined && isEncryptedToken(cv1)) tokens.push(cv1)
              }
              parsed.push({ message, key: value.key, events: value.events })
            }

            const plaintexts = new Map<string, string | undefined>()
            let encryptionMissing: string | undefined
            if (tokens.length > 0) {
              const decrypted = yield* encryption.decryptMany(tokens).pipe(Effect.result)
              if (Result.isFailure(decrypted)) {
                encryptionMissing = `custom variable 1 holds an encrypted phone but ${decrypted.failure.message}`
              } else {
                decrypted.success.forEach((r, i) =>
                  plaintexts.set(tokens[i]!, Result.isSuccess(r) ? r.success : undefined)
                )
              }
            }

            const prepared: Array<Prepared> = []
            let ord = 0
            for (const { message, key, events } of parsed) {
              if (events === undefined) {
                prepared.push({
                  messageId: message.messageId,
                  key,
                  kind: "ignored",
                  rows: [],
                  withoutPhone: 0,
                  undecryptable: 0
                })
                continue
              }
              const rows: Array<EventRow> = []
              let withoutPhone = 0
              let undecryptable = 0
              let missingKey = false
              for (const event of events) {
                const cv1 = (event.customVariables[0] ?? "").trim()
                let phone: string | null = null
                if (cv1 !== "") {
                  let plain: string | undefined = cv1
                  if (isEncryptedToken(cv1)) {
                    if (encryptionMissing !== undefined) {
                      missingKey = true
                      break
                    }
                    plain = plaintexts.get(event.customVariables[0]!)
                    if (plain === undefined) undecryptable++
                  }
                  if (plain !== undefined) {
                    const normalised = normalizePhone(plain)
                    if (normalised.ok) phone = normalised.e164
                  }
                }
                if (phone === null) withoutPhone++
                rows.push(eventRow(key, ord++, event, phone))
              }
              if (missingKey) {
                failed.push({ messageId: message.messageId, reason: encryptionMissing! })
                continue
              }
              prepared.push({ messageId: message.messageId, key, kind: "events", rows, withoutPhone, undecryptable })
            }
            return { prepared, failed }
          })

        // -- writing -------------------------------------------------------------------------------

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

        const commitBatch = Effect.fn("LiveEvents.commitBatch")(function* (messages: ReadonlyArray<IncomingMessage>) {
          const { prepared, failed } = yield* prepare(messages)

          // A key twice in the batch (SNS redelivered while the first copy was in hand): written once.
          const firstByKey = new Map<string, Prepared>()
          const sameAs = new Map<string, string>()
          for (const p of prepared) {
            const first = firstByKey.get(p.key)
            if (first === undefined) firstByKey.set(p.key, p)
            else sameAs.set(p.messageId, first.messageId)
          }
          const unique = [...firstByKey.values()]
          yield* resolveNames(unique.flatMap((p) => p.rows))

          const results: Array<{ group: ReadonlyArray<Prepared>; result: GroupResult }> = []
          const groupFailed: Array<FailedMessage> = []
          if (unique.length > 0) {
            const whole = yield* writeGroup(unique).pipe(Effect.result)
            if (Result.isSuccess(whole)) {
              results.push({ group: unique, result: whole.success })
            } else if (isDataError(whole.failure)) {
              yield* Effect.logWarning(
                "a message of the batch was refused by the database; committing one by one"
              ).pipe(Effect.annotateLogs({ error: describe(whole.failure) }))
              for (const p of unique) {
                const single = yield* writeGroup([p]).pipe(Effect.result)
                if (Result.isSuccess(single)) results.push({ group: [p], result: single.success })
                else if (isDataError(single.failure))
                  groupFailed.push({
                    messageId: p.messageId,
                    reason: `refused by the database: ${describe(single.failure)}`
                  })
                else return yield* asDatabaseError(single.failure)
              }
            } else {
              return yield* asDatabaseError(whole.failure)
            }
          }

          // -- outcome -------------------------------------------------------------------------------
          const failedIds = new Set(groupFailed.map((f) => f.messageId))
          const allFailed = [...failed, ...groupFailed]
          for (const [messageId, firstId] of sameAs) {
            if (failedIds.has(firstId))
              allFailed.push({ messageId, reason: "a copy of this message failed in the same batch" })
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
            for (const k of ["blacklist", "whitelist", "monitor", "unknown"] as const)
              classified[k] += result.classified[k]
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
          for (const f of allFailed) {
            yield* Effect.logWarning("live-event message not stored; it stays on the queue").pipe(
              Effect.annotateLogs({ messageId: f.messageId, reason: f.reason })
            )
          }
          const counts: BatchCounts = {
            messages: messages.length,
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
        })

        return LiveEvents.of({ commitBatch })
      })
    )

  /** Needs `Lists`, `Classifier`, `Encryption`, `VoluumClient`, `AppConfig` and the SQL client from the app. */
  static readonly layerNoDeps = LiveEvents.layerWith()
  static readonly layer = LiveEvents.layerNoDeps.pipe(Layer.provide(LiveEventsRepository.layer))
}
