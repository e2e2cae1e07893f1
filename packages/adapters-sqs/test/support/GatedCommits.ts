/**
 * A stand-in for the database behind `LiveEvents.commitBatch`, for the consumer-loop tests: each
 * commit waits for a permit (`release(n)` lets n commits end, `open` lets every commit through), then
 * commits every message except those whose body starts with "poison" (reported failed, as an
 * unparseable message is). What it stores is not the point here: core's own tests cover that.
 */
import { Effect, Layer, Queue } from "effect"
import { emptyCounts, LiveEvents, type BatchOutcome } from "@optimizer/core"

export const makeGatedCommits = Effect.gen(function* () {
  const permits = yield* Queue.unbounded<true>()
  let open = false
  let started = 0
  let committed = 0

  const outcome = (messages: ReadonlyArray<{ readonly messageId: string; readonly body: string }>): BatchOutcome => {
    const ok = messages.filter((m) => !m.body.startsWith("poison"))
    const failed = messages.filter((m) => m.body.startsWith("poison"))
    return {
      committed: ok.map((m) => m.messageId),
      failed: failed.map((m) => ({ messageId: m.messageId, reason: "not JSON" })),
      counts: {
        messages: messages.length,
        committed: ok.length,
        failed: failed.length,
        duplicates: 0,
        ignored: 0,
        events: ok.length,
        rawRows: ok.length,
        liveWritten: ok.length,
        notNewer: 0,
        withoutPhone: 0,
        undecryptable: 0,
        classified: { blacklist: 0, whitelist: 0, monitor: 0, unknown: ok.length },
        lists: emptyCounts
      }
    }
  }

  const layer = Layer.succeed(
    LiveEvents,
    LiveEvents.of({
      commitBatch: (messages) =>
        Effect.gen(function* () {
          started++
          if (!open) yield* Queue.take(permits)
          committed += messages.length
          return outcome(messages)
        })
    })
  )

  return {
    layer,
    /** Lets `n` waiting (or future) commits end. */
    release: (n: number) =>
      Queue.offerAll(
        permits,
        Array.from({ length: n }, () => true as const)
      ),
    /** Lets every commit through from now on. */
    open: Effect.suspend(() => {
      open = true
      return Queue.offerAll(
        permits,
        Array.from({ length: 1000 }, () => true as const)
      )
    }),
    /** Commits begun, and messages in the commits that ended. */
    counts: Effect.sync(() => ({ started, committed }))
  }
})
