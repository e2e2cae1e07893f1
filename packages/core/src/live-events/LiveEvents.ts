/**
 * Voluum live click events (`docs/live-events.md`; the original's handling in `docs/original-api.md`,
 * "Live events"): a batch of queue messages in, a record of which of them are safely stored out. The
 * SQS adapter deletes exactly the committed ones. This file is the service; the parts live beside it:
 * `LiveEventRows.ts` (messages → event rows), `LiveEventsCommit.ts` (the transaction, the retry one
 * by one, the counts), `LiveEventsRepository.ts` (the SQL).
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
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Classifier } from "../classification/Classifier.ts"
import { Encryption } from "../encryption/Encryption.ts"
import { Lists } from "../lists/Lists.ts"
import { AppConfig } from "../platform/Config.ts"
import type { DatabaseError } from "../platform/Errors.ts"
import { VoluumClient } from "../voluum/VoluumClient.ts"
import { prepareMessages, type Prepared } from "./LiveEventRows.ts"
import { batchOutcome, makeBatchCommit, type BatchOutcome } from "./LiveEventsCommit.ts"
import type { IncomingMessage } from "./LiveEventSchemas.ts"
import { LiveEventsRepository, type EventRow, type NamesSaved } from "./LiveEventsRepository.ts"

// The parts' names, importable from here as before the split.
export { eventRow, type FailedMessage } from "./LiveEventRows.ts"
export {
  LIVE_EVENTS_ACTOR,
  LIVE_EVENTS_SOURCE,
  sqlStateOf,
  type BatchCounts,
  type BatchOutcome
} from "./LiveEventsCommit.ts"

export interface LiveEventsOptions {
  /** At most one Voluum refresh of offer/campaign names per interval (across consumers). Default 10 minutes. */
  readonly namesRefreshInterval?: Duration.Input
}

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
          return yield* repository.saveNames(fits(offers), fits(campaigns))
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

        const commit = makeBatchCommit({ sql, repository, lists, classifier })

        const commitBatch = Effect.fn("LiveEvents.commitBatch")(function* (messages: ReadonlyArray<IncomingMessage>) {
          const { prepared, failed } = yield* prepareMessages(encryption, messages)

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

          const written = yield* commit.write(unique)
          const outcome = batchOutcome(messages.length, prepared, failed, sameAs, written)
          for (const f of outcome.failed) {
            yield* Effect.logWarning("live-event message not stored; it stays on the queue").pipe(
              Effect.annotateLogs({ messageId: f.messageId, reason: f.reason })
            )
          }
          return outcome
        })

        return LiveEvents.of({ commitBatch })
      })
    )

  /** Needs `Lists`, `Classifier`, `Encryption`, `VoluumClient`, `AppConfig` and the SQL client from the app. */
  static readonly layerNoDeps = LiveEvents.layerWith()
  static readonly layer = LiveEvents.layerNoDeps.pipe(Layer.provide(LiveEventsRepository.layer))
}
