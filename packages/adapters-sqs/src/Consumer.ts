/**
 * The SQS live-events consumer: receive → commit (core `LiveEvents.commitBatch`) → delete.
 *
 * - `receivers` loops (SQS_MAX_CONCURRENCY) long-poll the queue (`WaitTimeSeconds` 20, 10 messages
 *   per call) into a small in-hand buffer; a committer takes what is in hand (up to
 *   `maxMessagesPerCommit`, 500) and commits it in one transaction, then `DeleteMessageBatch` deletes
 *   exactly the messages the commit reports committed, while the next commit runs. Two committers
 *   (`commitConcurrency`) overlap one batch's parsing and decryption with the other's database work.
 *   The buffer holds at most one commit's worth, so a slow database stops receiving (nothing piles
 *   up in memory with its visibility timeout running). Bigger transactions are what makes the
 *   throughput: a commit's fixed cost (the list writes' staging) is paid per batch, not per message.
 * - A message that fails (unparseable, refused) is NOT deleted: it comes back after its visibility
 *   timeout and reaches the queue's dead-letter queue after maxReceiveCount.
 * - The database unreachable: receiving pauses, the batch in hand is retried with exponential backoff
 *   (0.25 s doubling to 30 s) until it commits, then receiving resumes. Nothing is deleted before its
 *   commit.
 * - Stop (SIGTERM/SIGINT interrupt the scope, or `stop`): the long polls are aborted (a message SQS
 *   had already handed to an aborted poll stays invisible until its timeout, then comes back), what
 *   is in hand is committed and deleted, then the consumer returns. `shutdownGraceSeconds` bounds the
 *   wait (a database that stays down): whatever did not commit by then is left on the queue.
 * - Counters (received, committed, failed, deleted, duplicates, commit latency, age of the oldest
 *   message processed from its SentTimestamp) are logged every `statsIntervalSeconds` and on exit.
 *
 * Nothing runs at import: `makeConsumer` (scoped) starts it; `runConsumer` is the process's main.
 */
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message
} from "@aws-sdk/client-sqs"
import {
  Cause,
  Effect,
  Exit,
  Fiber,
  FiberSet,
  Latch,
  Option,
  Queue,
  Redacted,
  Result,
  Schema,
  type Scope
} from "effect"
import {
  consumerLayer,
  InvalidConfig,
  LiveEvents,
  parseSettings,
  requireDatabase,
  requireIntegration,
  type BatchOutcome,
  type SqsSettings
} from "@optimizer/core"

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

/** Running totals since the consumer started. */
export interface ConsumerStats {
  readonly received: number
  readonly committed: number
  readonly failed: number
  readonly deleted: number
  readonly deleteFailures: number
  readonly duplicates: number
  readonly events: number
  readonly commits: number
  /** Commit attempts that failed because the database could not be used. */
  readonly commitRetries: number
  /** Milliseconds of the slowest commit so far. */
  readonly maxCommitMs: number
  /** Sum of commit durations, for an average. */
  readonly totalCommitMs: number
  /** Seconds between SentTimestamp and commit of the oldest message processed so far. */
  readonly oldestMessageAgeSeconds: number | null
}

export interface ConsumerHandle {
  readonly stats: Effect.Effect<ConsumerStats>
  /** Stops receiving, commits and deletes what is in hand; returns the final totals. Idempotent. */
  readonly stop: Effect.Effect<ConsumerStats>
  /** Completes when the consumer has stopped by `stop`; fails when it stopped because the committer failed (a bug). */
  readonly stopped: Effect.Effect<void, ConsumerFailed>
}

/** The AWS client of the settings: SQS_ENDPOINT for emulators, explicit keys when given, else the SDK's chain. */
export const makeSqsClient = (settings: SqsSettings): SQSClient =>
  new SQSClient({
    region: settings.region,
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    ...(settings.accessKeyId !== undefined && settings.secretAccessKey !== undefined
      ? {
          credentials: {
            accessKeyId: settings.accessKeyId,
            secretAccessKey: Redacted.value(settings.secretAccessKey)
          }
        }
      : {})
  })

interface Received {
  readonly messageId: string
  readonly receiptHandle: string
  readonly body: string
  readonly sentAt: number | undefined
}

const messageOf = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : typeof error === "string" ? error : String(error)

class Counters implements ConsumerStats {
  received = 0
  committed = 0
  failed = 0
  deleted = 0
  deleteFailures = 0
  duplicates = 0
  events = 0
  commits = 0
  commitRetries = 0
  maxCommitMs = 0
  totalCommitMs = 0
  oldestMessageAgeSeconds: number | null = null

  snapshot(): ConsumerStats {
    return { ...this }
  }
}

const zero: ConsumerStats = {
  received: 0,
  committed: 0,
  failed: 0,
  deleted: 0,
  deleteFailures: 0,
  duplicates: 0,
  events: 0,
  commits: 0,
  commitRetries: 0,
  maxCommitMs: 0,
  totalCommitMs: 0,
  oldestMessageAgeSeconds: null
}

/** What the logs show: the window since the previous line, and the totals. */
const describeStats = (now: ConsumerStats, previous: ConsumerStats, seconds: number) => ({
  received: now.received - previous.received,
  committed: now.committed - previous.committed,
  failed: now.failed - previous.failed,
  deleted: now.deleted - previous.deleted,
  duplicates: now.duplicates - previous.duplicates,
  messagesPerSecond: seconds > 0 ? Math.round((now.committed - previous.committed) / seconds) : 0,
  avgCommitMs:
    now.commits > previous.commits
      ? Math.round((now.totalCommitMs - previous.totalCommitMs) / (now.commits - previous.commits))
      : null,
  maxCommitMs: now.maxCommitMs,
  oldestMessageAgeSeconds: now.oldestMessageAgeSeconds,
  commitRetries: now.commitRetries,
  deleteFailures: now.deleteFailures,
  total: {
    received: now.received,
    committed: now.committed,
    failed: now.failed,
    deleted: now.deleted,
    duplicates: now.duplicates,
    events: now.events
  }
})

/**
 * Starts the consumer in the current scope; closing the scope stops it gracefully (commit and delete
 * what is in hand). Fails at start when the queue cannot be reached.
 */
export const makeConsumer = (
  sqs: SQSClient,
  queueUrl: string,
  tuning: ConsumerTuning
): Effect.Effect<ConsumerHandle, InvalidConfig, LiveEvents | Scope.Scope> =>
  Effect.gen(function* () {
    const live = yield* LiveEvents
    const counters = new Counters()
    const startedAt = Date.now()

    // Fail start-up on a wrong URL or credentials, rather than logging receive errors forever.
    const attributes = yield* Effect.tryPromise({
      try: (signal) =>
        sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["VisibilityTimeout", "RedrivePolicy"] }),
          { abortSignal: signal }
        ),
      catch: (cause) =>
        new InvalidConfig({
          message: `cannot reach the SQS queue ${queueUrl}: ${messageOf(cause)}`,
          variables: ["SQS_QUEUE_URL", "SQS_ENDPOINT", "AWS_REGION"]
        })
    })
    if (attributes.Attributes?.RedrivePolicy === undefined) {
      yield* Effect.logWarning(
        "the queue has no RedrivePolicy: a message that never commits comes back until the queue's retention ends; give it a dead-letter queue"
      )
    }

    // In hand at most: one commit's worth (or one receive per loop), so receiving stops when commits lag.
    const batchesPerCommit = Math.max(1, Math.floor(tuning.maxMessagesPerCommit / tuning.receiveBatchSize))
    const inbox = yield* Queue.bounded<ReadonlyArray<Received>, Cause.Done>(
      Math.max(tuning.receivers, batchesPerCommit)
    )
    /** Open while receiving is allowed; closed during a database outage. */
    const receiving = yield* Latch.make(true)
    const polls = new AbortController()
    let stopping = false
    let databaseDown = false

    const abortable = <A>(f: (signal: AbortSignal) => Promise<A>) =>
      Effect.tryPromise({
        try: (signal) => f(AbortSignal.any([signal, polls.signal])),
        catch: (cause) => cause
      })

    // -- receiving ---------------------------------------------------------------------------------

    const receiveLoop = Effect.gen(function* () {
      let delay = tuning.retryInitialMs
      while (!stopping) {
        yield* receiving.await
        if (stopping) break
        const result = yield* abortable((signal) =>
          sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: tuning.receiveBatchSize,
              WaitTimeSeconds: tuning.waitTimeSeconds,
              VisibilityTimeout: tuning.visibilityTimeoutSeconds,
              MessageSystemAttributeNames: ["SentTimestamp", "ApproximateReceiveCount"]
            }),
            { abortSignal: signal }
          )
        ).pipe(Effect.result)
        if (Result.isFailure(result)) {
          if (stopping) break
          yield* Effect.logError("SQS receive failed; retrying", messageOf(result.failure)).pipe(
            Effect.annotateLogs({ retryInMs: delay })
          )
          yield* Effect.sleep(delay)
          delay = Math.min(delay * 2, tuning.retryMaxMs)
          continue
        }
        delay = tuning.retryInitialMs
        const messages = (result.success.Messages ?? []).flatMap((m: Message): Array<Received> => {
          if (m.MessageId === undefined || m.ReceiptHandle === undefined) return []
          const sent = Number(m.Attributes?.SentTimestamp)
          return [
            {
              messageId: m.MessageId,
              receiptHandle: m.ReceiptHandle,
              body: m.Body ?? "",
              sentAt: Number.isFinite(sent) ? sent : undefined
            }
          ]
        })
        if (messages.length === 0) continue
        counters.received += messages.length
        // Offered even when stopping began meanwhile: these are in hand and get committed.
        yield* Queue.offer(inbox, messages)
      }
    })

    // -- deleting ----------------------------------------------------------------------------------

    const deleteMessages = (messages: ReadonlyArray<Received>) =>
      Effect.forEach(
        Array.from({ length: Math.ceil(messages.length / 10) }, (_, i) => messages.slice(i * 10, i * 10 + 10)),
        (chunk) =>
          Effect.tryPromise({
            try: () =>
              sqs.send(
                new DeleteMessageBatchCommand({
                  QueueUrl: queueUrl,
                  Entries: chunk.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receiptHandle }))
                })
              ),
            catch: (cause) => cause
          }).pipe(
            Effect.flatMap((response) =>
              Effect.gen(function* () {
                counters.deleted += response.Successful?.length ?? 0
                const failures = response.Failed ?? []
                counters.deleteFailures += failures.length
                if (failures.length > 0) {
                  // Committed already: when such a message comes back it is a duplicate, acknowledged again.
                  yield* Effect.logWarning(
                    "some committed messages could not be deleted; they will come back and be skipped"
                  ).pipe(Effect.annotateLogs({ failures: failures.map((f) => `${f.Code}: ${f.Message}`).slice(0, 3) }))
                }
              })
            ),
            Effect.catch((cause) =>
              Effect.sync(() => {
                counters.deleteFailures += chunk.length
              }).pipe(
                Effect.andThen(
                  Effect.logWarning(
                    "DeleteMessageBatch failed; the committed messages will come back and be skipped",
                    messageOf(cause)
                  )
                )
              )
            )
          ),
        { concurrency: 10, discard: true }
      )

    // -- committing --------------------------------------------------------------------------------

    const deletions = yield* FiberSet.make<void, never>()

    const commitWithRetry = (messages: ReadonlyArray<Received>) =>
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

    const record = (messages: ReadonlyArray<Received>, outcome: BatchOutcome) => {
      const committed = new Set(outcome.committed)
      const now = Date.now()
      for (const m of messages) {
        if (committed.has(m.messageId) && m.sentAt !== undefined) {
          const age = Math.max(0, Math.round((now - m.sentAt) / 1000))
          if (counters.oldestMessageAgeSeconds === null || age > counters.oldestMessageAgeSeconds) {
            counters.oldestMessageAgeSeconds = age
          }
        }
      }
      counters.committed += outcome.committed.length
      counters.failed += outcome.failed.length
      counters.duplicates += outcome.counts.duplicates
      counters.events += outcome.counts.events
      return messages.filter((m) => committed.has(m.messageId))
    }

    const commitLoop = Effect.gen(function* () {
      while (true) {
        const taken = yield* Queue.takeBetween(inbox, 1, batchesPerCommit).pipe(Effect.result)
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
        queueUrl,
        receivers: tuning.receivers,
        visibilityTimeoutSeconds: tuning.visibilityTimeoutSeconds,
        maxMessagesPerCommit: tuning.maxMessagesPerCommit
      })
    )

    let stopResult: Promise<ConsumerStats> | undefined
    const shutdown = Effect.gen(function* () {
      const deadline = Date.now() + tuning.shutdownGraceSeconds * 1000
      const remaining = () => Math.max(0, deadline - Date.now())
      stopping = true
      polls.abort()
      yield* receiving.open // wake receivers paused by an outage so that they see `stopping`
      // A receiver may be waiting to hand over its last receive: the committer, if alive, is still taking.
      const receiversDone =
        committer.pollUnsafe() === undefined
          ? yield* Fiber.awaitAll(receivers).pipe(Effect.timeoutOption(remaining()))
          : Option.none()
      if (Option.isNone(receiversDone)) yield* Fiber.interruptAll(receivers)
      yield* Queue.end(inbox)
      const drained = yield* Fiber.await(committer).pipe(Effect.timeoutOption(remaining()))
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
          ...describeStats(final, zero, (Date.now() - startedAt) / 1000),
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

export const tuningFrom = (sqs: SqsSettings): ConsumerTuning => ({
  ...DEFAULT_TUNING,
  receivers: sqs.maxConcurrency,
  visibilityTimeoutSeconds: sqs.visibilityTimeoutSeconds
})

/**
 * The consumer process: settings from the environment (SQS_QUEUE_URL, AWS_REGION, credentials,
 * SQS_ENDPOINT, SQS_MAX_CONCURRENCY, SQS_VISIBILITY_TIMEOUT, DATABASE_URL, AES_KEY, Voluum), runs
 * until interrupted (SIGTERM/SIGINT), then drains and returns.
 */
export const runConsumer = Effect.gen(function* () {
  const parsed = parseSettings(process.env)
  if (Result.isFailure(parsed)) return yield* parsed.failure
  const settings = parsed.success
  const sqsSettings = yield* requireIntegration("SQS", settings.sqs)
  yield* requireDatabase(settings)
  // The layer outlives the consumer's scope: the consumer's stop (a finalizer) still commits through it.
  yield* Effect.scoped(
    Effect.gen(function* () {
      const sqs = yield* Effect.acquireRelease(
        Effect.sync(() => makeSqsClient(sqsSettings)),
        (client) => Effect.sync(() => client.destroy())
      )
      const consumer = yield* makeConsumer(sqs, sqsSettings.queueUrl, tuningFrom(sqsSettings))
      yield* consumer.stopped
    })
  ).pipe(Effect.provide(consumerLayer(settings)))
})
