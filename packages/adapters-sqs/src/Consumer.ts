/**
 * The SQS live-events consumer loop: receive → commit (core `LiveEvents.commitBatch`) → delete,
 * over the `SqsQueue` service (SqsQueue.ts); its counters are in ConsumerStats.ts and the process's
 * main in RunConsumer.ts.
 *
 * - `receivers` loops (SQS_MAX_CONCURRENCY) long-poll the queue (`WaitTimeSeconds` 20, 10 messages
 *   per call) into a small in-hand buffer; a committer takes what is in hand (up to
 *   `maxMessagesPerCommit`, 500) and commits it in one transaction, then `DeleteMessageBatch` deletes
 *   exactly the messages the commit reports committed, while the next commit runs. Two committers
 *   (`commitConcurrency`) overlap one batch's parsing and decryption with the other's database work.
 *   The buffer holds at most one commit's worth, so a slow database stops receiving (nothing piles
 *   up in memory with its visibility timeout running): see `inFlightLimit`. Bigger transactions are
 *   what makes the throughput: a commit's fixed cost (the list writes' staging) is paid per batch,
 *   not per message.
 * - A message that fails (unparseable, refused) is NOT deleted: it comes back after its visibility
 *   timeout and reaches the queue's dead-letter queue after maxReceiveCount.
 * - The database unreachable: receiving pauses, the batch in hand is retried with exponential backoff
 *   (0.25 s doubling to 30 s) until it commits, then receiving resumes. Nothing is deleted before its
 *   commit.
 * - Stop (SIGTERM/SIGINT interrupt the scope, or `stop`): the long polls are interrupted (a message SQS
 *   had already handed to an aborted poll stays invisible until its timeout, then comes back), what
 *   is in hand is committed and deleted, then the consumer returns. `shutdownGraceSeconds` bounds the
 *   wait (a database that stays down): whatever did not commit by then is left on the queue.
 * - Counters (received, committed, failed, deleted, duplicates, commit latency, age of the oldest
 *   message processed from its SentTimestamp) are logged every `statsIntervalSeconds` and on exit.
 *
 * Nothing runs at import: `startConsumer` / `makeConsumer` (scoped) start it.
 */
import type { SQSClient } from "@aws-sdk/client-sqs"
import {
  Cause,
  Clock,
  Deferred,
  Effect,
  Exit,
  Fiber,
  FiberSet,
  Latch,
  Option,
  Queue,
  Result,
  Schema,
  type Scope
} from "effect"
import { InvalidConfig, LiveEvents, prometheusMetrics, type BatchOutcome, type SqsSettings } from "@optimizer/core"
import { Counters, describeStats, zeroStats, type ConsumerStats } from "./ConsumerStats.ts"
import { SqsError, SqsQueue, type ReceivedMessage } from "./SqsQueue.ts"

export type { ConsumerStats } from "./ConsumerStats.ts"

/** The committer died (a defect): the consumer stopped; nothing it held was deleted. */
export class ConsumerFailed extends Schema.TaggedError<ConsumerFailed>()("ConsumerFailed", {
  message: Schema.String
}) {}

export interface ConsumerTuning {
  /** Concurrent long polls (SQS_MAX_CONCURRENCY). */
  readonly receivers: number
  /** Messages per ReceiveMessage (SQS allows 1–10). */
  readonly receiveBatchSize: number
  readonly waitTimeSeconds: number
  /** How long a received message stays invisible to other receivers (SQS_VISIBILITY_TIMEOUT). */
  readonly visibilityTimeoutSeconds: number
  /** Messages committed in one transaction, at most. */
  readonly maxMessagesPerCommit: number
  /** Transactions at once: one prepares its batch while the other waits on the database. */
  readonly commitConcurrency: number
  readonly statsIntervalSeconds: number
  readonly shutdownGraceSeconds: number
  readonly retryInitialMs: number
  readonly retryMaxMs: number
}

export const DEFAULT_TUNING: Omit<ConsumerTuning, "receivers" | "visibilityTimeoutSeconds"> = {
  receiveBatchSize: 10,
  waitTimeSeconds: 20,
  maxMessagesPerCommit: 500,
  commitConcurrency: 2,
  statsIntervalSeconds: 60,
  shutdownGraceSeconds: 20,
  retryInitialMs: 250,
  retryMaxMs: 30_000
}

export interface ConsumerHandle {
  readonly stats: Effect.Effect<ConsumerStats>
  /** Stops receiving, commits and deletes what is in hand; returns the final totals. Idempotent. */
  readonly stop: Effect.Effect<ConsumerStats>
  /** Completes when the consumer has stopped by `stop`; fails when it stopped because the committer failed (a bug). */
  readonly stopped: Effect.Effect<void, ConsumerFailed>
}

export const tuningFrom = (sqs: SqsSettings): ConsumerTuning => ({
  ...DEFAULT_TUNING,
  receivers: sqs.maxConcurrency,
  visibilityTimeoutSeconds: sqs.visibilityTimeoutSeconds
})

/** Receives that fit one commit: the in-hand buffer holds that many (at least one per receiver). */
const batchesPerCommit = (tuning: ConsumerTuning) =>
  Math.max(1, Math.floor(tuning.maxMessagesPerCommit / tuning.receiveBatchSize))
const inboxCapacity = (tuning: ConsumerTuning) => Math.max(tuning.receivers, batchesPerCommit(tuning))

/**
 * The most messages the consumer holds received but not yet committed: each committer's batch, the
 * in-hand buffer, and one receive per receiver waiting to hand over. Once that many are in flight,
 * no receive is made until a commit ends.
 */
export const inFlightLimit = (tuning: ConsumerTuning): number =>
  (Math.max(1, tuning.commitConcurrency) * batchesPerCommit(tuning) +
    inboxCapacity(tuning) +
    Math.max(1, tuning.receivers)) *
  tuning.receiveBatchSize

/**
 * Starts the consumer on the `SqsQueue` in the current scope; closing the scope stops it gracefully
 * (commit and delete what is in hand). Fails at start when the queue cannot be reached.
 */
export const startConsumer = (
  tuning: ConsumerTuning
): Effect.Effect<ConsumerHandle, InvalidConfig, SqsQueue | LiveEvents | Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* SqsQueue
    const live = yield* LiveEvents
    const counters = new Counters()
    const startedAt = Date.now()

    // Fail start-up on a wrong URL or credentials, rather than logging receive errors forever.
    const hasDeadLetterQueue = yield* queue.hasDeadLetterQueue.pipe(
      Effect.mapError(
        (e) =>
          new InvalidConfig({
            message: `cannot reach the SQS queue ${queue.url}: ${e.message}`,
            variables: ["SQS_QUEUE_URL", "SQS_ENDPOINT", "AWS_REGION"]
          })
      )
    )
    if (!hasDeadLetterQueue) {
      yield* Effect.logWarning(
        "the queue has no RedrivePolicy: a message that never commits comes back until the queue's retention ends; give it a dead-letter queue"
      )
    }

    // In hand at most: one commit's worth (or one receive per loop), so receiving stops when commits lag.
    const perCommit = batchesPerCommit(tuning)
    const inbox = yield* Queue.bounded<ReadonlyArray<ReceivedMessage>, Cause.Done>(inboxCapacity(tuning))
    /** Open while receiving is allowed; closed during a database outage. */
    const receiving = yield* Latch.make(true)
    /** Fails on stop: a long poll racing it is interrupted (its HTTP request aborted). */
    const pollsStopped = yield* Deferred.make<never, SqsError>()
    let stopping = false
    let databaseDown = false

    const receiveRequest = {
      maxMessages: tuning.receiveBatchSize,
      waitTimeSeconds: tuning.waitTimeSeconds,
      visibilityTimeoutSeconds: tuning.visibilityTimeoutSeconds
    }

    // -- receiving ---------------------------------------------------------------------------------

    const receiveLoop = Effect.gen(function* () {
      let delay = tuning.retryInitialMs
      while (!stopping) {
        yield* receiving.await
        if (stopping) break
        const result = yield* queue
          .receive(receiveRequest)
          .pipe(Effect.raceFirst(Deferred.await(pollsStopped)), Effect.result)
        if (Result.isFailure(result)) {
          if (stopping) break
          yield* Effect.logError("SQS receive failed; retrying", result.failure.message).pipe(
            Effect.annotateLogs({ retryInMs: delay })
          )
          yield* Effect.sleep(delay)
          delay = Math.min(delay * 2, tuning.retryMaxMs)
          continue
        }
        delay = tuning.retryInitialMs
        const messages = result.success
        if (messages.length === 0) continue
        counters.received += messages.length
        prometheusMetrics.sqsReceived.inc([], messages.length)
        // Offered even when stopping began meanwhile: these are in hand and get committed.
        yield* Queue.offer(inbox, messages)
      }
    })

    // -- deleting ----------------------------------------------------------------------------------

    const deleteMessages = (messages: ReadonlyArray<ReceivedMessage>) =>
      Effect.forEach(
        Array.from({ length: Math.ceil(messages.length / 10) }, (_, i) => messages.slice(i * 10, i * 10 + 10)),
        (chunk) =>
          queue.deleteBatch(chunk.map((m) => m.receiptHandle)).pipe(
            Effect.flatMap((response) =>
              Effect.gen(function* () {
                counters.deleted += response.deleted
                prometheusMetrics.sqsDeleted.inc([], response.deleted)
                counters.deleteFailures += response.failures.length
                if (response.failures.length > 0) {
                  // Committed already: when such a message comes back it is a duplicate, acknowledged again.
                  yield* Effect.logWarning(
                    "some committed messages could not be deleted; they will come back and be skipped"
                  ).pipe(Effect.annotateLogs({ failures: response.failures.slice(0, 3) }))
                }
              })
            ),
            Effect.catch((error) =>
              Effect.sync(() => {
                counters.deleteFailures += chunk.length
              }).pipe(
                Effect.andThen(
                  Effect.logWarning(
                    "DeleteMessageBatch failed; the committed messages will come back and be skipped",
                    error.message
                  )
                )
              )
            )
          ),
        { concurrency: 10, discard: true }
      )

    // -- committing --------------------------------------------------------------------------------

    const deletions = yield* FiberSet.make<void, never>()

    const commitWithRetry = (messages: ReadonlyArray<ReceivedMessage>) =>
      Effect.gen(function* () {
        let delay = tuning.retryInitialMs
        while (true) {
          const started = Date.now()
          const result = yield* live
            .commitBatch(messages.map((m) => ({ messageId: m.messageId, body: m.body })))
            .pipe(Effect.result)
          const elapsed = Date.now() - started
          if (Result.isSuccess(result)) {
            counters.commits++
            prometheusMetrics.sqsCommitDuration.set([], elapsed / 1000)
            counters.totalCommitMs += elapsed
            counters.maxCommitMs = Math.max(counters.maxCommitMs, elapsed)
            if (databaseDown) {
              databaseDown = false
              yield* Effect.logInfo("database reachable again; receiving resumes")
              yield* receiving.open
            }
            return result.success
          }
          counters.commitRetries++
          prometheusMetrics.sqsCommitRetries.inc([])
          if (!databaseDown) {
            databaseDown = true
            yield* receiving.close
            yield* Effect.logError(
              "database unavailable: receiving paused, retrying the batch in hand",
              result.failure.message
            )
          }
          yield* Effect.sleep(delay)
          delay = Math.min(delay * 2, tuning.retryMaxMs)
        }
      })

    const record = (messages: ReadonlyArray<ReceivedMessage>, outcome: BatchOutcome) => {
      const committed = new Set(outcome.committed)
      const failed = new Set(outcome.failed.map((f) => f.messageId))
      const maxReceiveCount = queue.maxReceiveCount?.()
      const now = Date.now()
      let batchOldest = 0
      let deadLettered = 0
      for (const m of messages) {
        if (committed.has(m.messageId) && m.sentAt !== undefined) {
          const age = Math.max(0, Math.round((now - m.sentAt) / 1000))
          batchOldest = Math.max(batchOldest, (now - m.sentAt) / 1000)
          if (counters.oldestMessageAgeSeconds === null || age > counters.oldestMessageAgeSeconds) {
            counters.oldestMessageAgeSeconds = age
          }
        }
        // Failed on its last allowed receive: the queue's redrive moves it to the dead-letter queue.
        if (
          failed.has(m.messageId) &&
          maxReceiveCount !== undefined &&
          m.receiveCount !== undefined &&
          m.receiveCount >= maxReceiveCount
        ) {
          deadLettered++
        }
      }
      counters.committed += outcome.committed.length
      counters.failed += outcome.failed.length
      prometheusMetrics.sqsCommitted.inc([], outcome.committed.length)
      prometheusMetrics.sqsFailed.inc([], outcome.failed.length)
      if (deadLettered > 0) prometheusMetrics.sqsDeadLettered.inc([], deadLettered)
      prometheusMetrics.sqsOldestAge.set([], batchOldest)
      counters.duplicates += outcome.counts.duplicates
      counters.events += outcome.counts.events
      return messages.filter((m) => committed.has(m.messageId))
    }

    const commitLoop = Effect.gen(function* () {
      while (true) {
        const taken = yield* Queue.takeBetween(inbox, 1, perCommit).pipe(Effect.result)
        if (Result.isFailure(taken)) return // the inbox ended (stopping) and is empty
        const messages = taken.success.flat()
        const outcome = yield* commitWithRetry(messages)
        const toDelete = record(messages, outcome)
        if (toDelete.length > 0) yield* FiberSet.run(deletions, deleteMessages(toDelete))
      }
    })

    // -- lifecycle ---------------------------------------------------------------------------------

    const receivers = yield* Effect.forEach(
      Array.from({ length: Math.max(1, tuning.receivers) }),
      () => Effect.forkDetach(receiveLoop),
      { concurrency: "unbounded" }
    )
    // One fiber for all commit loops: if one dies, the others are interrupted (their transactions roll back).
    const committer = yield* Effect.forkDetach(
      Effect.all(
        Array.from({ length: Math.max(1, tuning.commitConcurrency) }, () => commitLoop),
        { concurrency: "unbounded", discard: true }
      )
    )

    let previous = counters.snapshot()
    let previousAt = Date.now()
    const statsLoop = Effect.gen(function* () {
      while (true) {
        yield* Effect.sleep(`${tuning.statsIntervalSeconds} seconds`)
        const now = counters.snapshot()
        const at = Date.now()
        yield* Effect.logInfo("live-events consumer").pipe(
          Effect.annotateLogs(describeStats(now, previous, (at - previousAt) / 1000))
        )
        previous = now
        previousAt = at
      }
    })
    const statsFiber = yield* Effect.forkDetach(statsLoop)

    yield* Effect.logInfo("live-events consumer started").pipe(
      Effect.annotateLogs({
        queueUrl: queue.url,
        receivers: tuning.receivers,
        visibilityTimeoutSeconds: tuning.visibilityTimeoutSeconds,
        maxMessagesPerCommit: tuning.maxMessagesPerCommit
      })
    )

    let stopResult: Promise<ConsumerStats> | undefined
    const shutdown = Effect.gen(function* () {
      // The effect clock, not Date.now: the grace period then runs on the test clock in tests.
      const deadline = (yield* Clock.currentTimeMillis) + tuning.shutdownGraceSeconds * 1000
      const remaining = Clock.currentTimeMillis.pipe(Effect.map((now) => Math.max(0, deadline - now)))
      stopping = true
      yield* Deferred.fail(pollsStopped, new SqsError({ message: "the consumer is stopping" }))
      yield* receiving.open // wake receivers paused by an outage so that they see `stopping`
      // A receiver may be waiting to hand over its last receive: the committer, if alive, is still taking.
      const receiversDone =
        committer.pollUnsafe() === undefined
          ? yield* Fiber.awaitAll(receivers).pipe(Effect.timeoutOption(yield* remaining))
          : Option.none()
      if (Option.isNone(receiversDone)) yield* Fiber.interruptAll(receivers)
      yield* Queue.end(inbox)
      const drained = yield* Fiber.await(committer).pipe(Effect.timeoutOption(yield* remaining))
      if (drained._tag === "None") {
        yield* Effect.logWarning(
          "could not commit the messages in hand within the shutdown grace period; they stay on the queue"
        )
        yield* Fiber.interrupt(committer)
      } else if (drained.value._tag === "Failure" && !Cause.hasInterruptsOnly(drained.value.cause)) {
        yield* Effect.logError("the committer failed", drained.value.cause)
      }
      yield* FiberSet.awaitEmpty(deletions).pipe(Effect.timeoutOption("10 seconds"))
      yield* Fiber.interrupt(statsFiber)
      const final = counters.snapshot()
      yield* Effect.logInfo("live-events consumer stopped").pipe(
        Effect.annotateLogs({
          ...describeStats(final, zeroStats, (Date.now() - startedAt) / 1000),
          uptimeSeconds: Math.round((Date.now() - startedAt) / 1000)
        })
      )
      return final
    })

    const context = yield* Effect.context<never>()
    const stop: Effect.Effect<ConsumerStats> = Effect.promise(() => {
      stopResult ??= Effect.runPromiseWith(context)(Effect.uninterruptible(shutdown))
      return stopResult
    })
    yield* Effect.addFinalizer(() => stop)

    // The committer only ends on stop, or when it dies (a bug): then the receivers stop too.
    yield* Effect.forkDetach(
      Fiber.await(committer).pipe(
        Effect.flatMap((exit) =>
          Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause) && !stopping ? stop : Effect.void
        )
      )
    )
    const stopped = Fiber.await(committer).pipe(
      Effect.flatMap((exit) =>
        Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
          ? Effect.fail(
              new ConsumerFailed({ message: `the consumer stopped: ${Cause.pretty(exit.cause).split("\n")[0]}` })
            )
          : Effect.void
      )
    )
    return { stats: Effect.sync(() => counters.snapshot()), stop, stopped }
  })

/** `startConsumer` on the queue at `queueUrl` through a client the caller owns (and destroys after `stop`). */
export const makeConsumer = (
  sqs: SQSClient,
  queueUrl: string,
  tuning: ConsumerTuning
): Effect.Effect<ConsumerHandle, InvalidConfig, LiveEvents | Scope.Scope> =>
  startConsumer(tuning).pipe(Effect.provideService(SqsQueue, SqsQueue.fromClient(sqs, queueUrl)))
