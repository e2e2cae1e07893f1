/**
 * An in-memory SQS queue behind the `SqsQueue` service: the project's own fake of AWS for tests of
 * the consumer loop on the test clock. It keeps what the consumer relies on: a receive hides what it
 * returns for the visibility timeout (then it is visible again, with a new receipt handle on its
 * next receive), a long poll waits up to `waitTimeSeconds` for a message, a delete needs the latest
 * receipt handle, and an interrupted poll takes nothing. Time is the effect clock (`TestClock`).
 */
import { Clock, Deferred, Effect, Layer } from "effect"
import { SqsQueue, type ReceivedMessage, type ReceiveRequest } from "../../src/SqsQueue.ts"

interface Stored {
  readonly messageId: string
  readonly body: string
  readonly sentAt: number
  visibleAt: number
  receives: number
}

export interface QueueCounts {
  /** Receivable now. */
  readonly visible: number
  /** Received, not deleted, visibility timeout running. */
  readonly inFlight: number
  readonly deleted: number
  /** Receive calls made so far (long polls included). */
  readonly receiveCalls: number
}

export interface InMemoryQueue {
  readonly layer: Layer.Layer<SqsQueue>
  readonly send: (bodies: ReadonlyArray<string>) => Effect.Effect<void>
  readonly counts: Effect.Effect<QueueCounts>
}

const handleOf = (m: Stored) => `${m.messageId}#${m.receives}`

export const makeInMemoryQueue = (options: { readonly deadLetterQueue?: boolean } = {}) =>
  Effect.gen(function* () {
    const messages = new Map<string, Stored>()
    let nextId = 0
    let deleted = 0
    let receiveCalls = 0
    /** Completed (and replaced) on every send: wakes the long polls. */
    let arrival = yield* Deferred.make<void>()

    const take = (now: number, request: ReceiveRequest): Array<ReceivedMessage> => {
      const out: Array<ReceivedMessage> = []
      for (const m of messages.values()) {
        if (out.length === request.maxMessages) break
        if (m.visibleAt > now) continue
        m.visibleAt = now + request.visibilityTimeoutSeconds * 1000
        m.receives++
        out.push({ messageId: m.messageId, receiptHandle: handleOf(m), body: m.body, sentAt: m.sentAt })
      }
      return out
    }

    const receive = (request: ReceiveRequest) =>
      Effect.gen(function* () {
        receiveCalls++
        const until = (yield* Clock.currentTimeMillis) + request.waitTimeSeconds * 1000
        while (true) {
          const now = yield* Clock.currentTimeMillis
          // Taken in one step with no suspension: an interrupted poll has taken nothing.
          const got = take(now, request)
          if (got.length > 0 || now >= until) return got
          let wakeAt = until
          for (const m of messages.values()) if (m.visibleAt > now && m.visibleAt < wakeAt) wakeAt = m.visibleAt
          yield* Effect.raceFirst(Deferred.await(arrival), Effect.sleep(wakeAt - now))
        }
      })

    const deleteBatch = (receiptHandles: ReadonlyArray<string>) =>
      Effect.sync(() => {
        const failures: Array<string> = []
        for (const handle of receiptHandles) {
          const m = messages.get(handle.slice(0, handle.lastIndexOf("#")))
          if (m === undefined || handleOf(m) !== handle) failures.push(`ReceiptHandleIsInvalid: ${handle}`)
          else {
            messages.delete(m.messageId)
            deleted++
          }
        }
        return { deleted: receiptHandles.length - failures.length, failures }
      })

    const send = (bodies: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const body of bodies) {
          const messageId = `m-${nextId++}`
          messages.set(messageId, { messageId, body, sentAt: now, visibleAt: now, receives: 0 })
        }
        const woken = arrival
        arrival = yield* Deferred.make<void>()
        yield* Deferred.succeed(woken, undefined)
      })

    const counts = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      let visible = 0
      for (const m of messages.values()) if (m.visibleAt <= now) visible++
      return { visible, inFlight: messages.size - visible, deleted, receiveCalls }
    })

    const layer = Layer.succeed(
      SqsQueue,
      SqsQueue.of({
        url: "memory://live-events",
        hasDeadLetterQueue: Effect.succeed(options.deadLetterQueue ?? true),
        receive,
        deleteBatch
      })
    )
    return { layer, send, counts } satisfies InMemoryQueue
  })
