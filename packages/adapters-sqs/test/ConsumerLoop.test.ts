/**
 * The consumer loop's back-pressure and shutdown, on the test clock: the real loop (`startConsumer`)
 * over an in-memory queue (support/InMemoryQueue.ts) and commits that end only when the test lets
 * them (support/GatedCommits.ts). Nothing here waits on real time; the fauxqs + PostgreSQL tests in
 * Consumer.test.ts cover the same behaviour end to end.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, References } from "effect"
import { TestClock } from "effect/testing"
import { DEFAULT_TUNING, inFlightLimit, startConsumer, type ConsumerTuning } from "../src/Consumer.ts"
import { makeGatedCommits } from "./support/GatedCommits.ts"
import { makeInMemoryQueue } from "./support/InMemoryQueue.ts"

const tuning: ConsumerTuning = {
  ...DEFAULT_TUNING,
  receivers: 2,
  receiveBatchSize: 10,
  waitTimeSeconds: 20,
  visibilityTimeoutSeconds: 300,
  maxMessagesPerCommit: 20,
  commitConcurrency: 2,
  statsIntervalSeconds: 3600,
  shutdownGraceSeconds: 20
}

const bodies = (n: number, prefix = "event") => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

/** Lets every fiber that can run do so (a few milliseconds of the test clock: no long poll ends). */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 100; i++) {
    yield* Effect.yieldNow
    if (i % 10 === 0) yield* TestClock.adjust("1 millis")
  }
})

/** The queue, the commits and the consumer over them, in the test's scope (closing it stops the consumer). */
const setUp = (options: { readonly tuning?: ConsumerTuning } = {}) =>
  Effect.gen(function* () {
    const queue = yield* makeInMemoryQueue()
    const commits = yield* makeGatedCommits
    const start = startConsumer(options.tuning ?? tuning).pipe(Effect.provide(Layer.merge(queue.layer, commits.layer)))
    return { queue, commits, start }
  })

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

describe("the consumer loop (in-memory queue, test clock)", () => {
  it.effect("stops receiving while its in-flight limit is reached, and resumes as batches commit", () =>
    Effect.gen(function* () {
      const { queue, commits, start } = yield* setUp()
      yield* queue.send(bodies(200))
      const consumer = yield* start
      yield* settle

      // Both committers hold a batch, the in-hand buffer is full, each receiver waits to hand one over.
      const limit = inFlightLimit(tuning)
      assert.strictEqual(limit, (2 * 2 + 2 + 2) * 10)
      const full = yield* queue.counts
      assert.deepStrictEqual(full, { visible: 200 - limit, inFlight: limit, deleted: 0, receiveCalls: limit / 10 })
      assert.strictEqual((yield* commits.counts).started, 2)

      // A minute passes (three long polls' worth): no receive is made while nothing commits.
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.deepStrictEqual(yield* queue.counts, full)

      // One commit ends: its messages are deleted, and receiving resumes for exactly that many.
      yield* commits.release(1)
      yield* settle
      assert.deepStrictEqual(yield* queue.counts, {
        visible: 200 - limit - 20,
        inFlight: limit,
        deleted: 20,
        receiveCalls: limit / 10 + 2
      })

      // Every commit may end: the queue drains.
      yield* commits.open
      yield* settle
      const drained = yield* queue.counts
      assert.deepStrictEqual([drained.visible, drained.inFlight, drained.deleted], [0, 0, 200])
      const stats = yield* consumer.stats
      assert.deepStrictEqual([stats.received, stats.committed, stats.deleted], [200, 200, 200])
    }).pipe(Effect.scoped, quiet)
  )

  it.effect("on stop: makes no more receives, commits and deletes what it holds, then returns", () =>
    Effect.gen(function* () {
      const { queue, commits, start } = yield* setUp({ tuning: { ...tuning, visibilityTimeoutSeconds: 30 } })
      // Two that the commit refuses (as it does an unparseable message), among the first held.
      yield* queue.send([...bodies(2, "poison"), ...bodies(98)])
      const consumer = yield* start
      yield* settle
      const held = yield* queue.counts
      assert.deepStrictEqual([held.inFlight, held.visible], [80, 20])

      const stopping = yield* Effect.forkChild(consumer.stop)
      yield* settle
      // Still finishing the commits in hand; not one receive more.
      assert.strictEqual(stopping.pollUnsafe(), undefined)
      assert.strictEqual((yield* queue.counts).receiveCalls, held.receiveCalls)

      yield* commits.open
      const final = yield* Fiber.join(stopping)
      assert.deepStrictEqual([final.received, final.committed, final.failed, final.deleted], [80, 78, 2, 78])
      const after = yield* queue.counts
      assert.deepStrictEqual(after, { visible: 20, inFlight: 2, deleted: 78, receiveCalls: held.receiveCalls })

      // The refused ones come back once their visibility timeout ends, for another consumer (or the DLQ).
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(yield* queue.counts, { ...after, visible: 22, inFlight: 0 })
    }).pipe(Effect.scoped, quiet)
  )

  it.effect("on stop: interrupts a waiting long poll at once", () =>
    Effect.gen(function* () {
      const { queue, commits, start } = yield* setUp()
      yield* commits.open
      yield* queue.send(bodies(15))
      const consumer = yield* start
      yield* settle
      const idle = yield* queue.counts
      assert.deepStrictEqual([idle.visible, idle.inFlight, idle.deleted], [0, 0, 15])
      // Both receivers are in a 20-second long poll; the stop does not wait for it.
      const final = yield* consumer.stop
      assert.deepStrictEqual([final.received, final.deleted], [15, 15])
      assert.strictEqual((yield* queue.counts).receiveCalls, idle.receiveCalls)
    }).pipe(Effect.scoped, quiet)
  )

  it.effect(
    "on stop with a database that never answers: gives up after the grace period, the held messages visible again",
    () =>
      Effect.gen(function* () {
        const { queue, start } = yield* setUp({ tuning: { ...tuning, visibilityTimeoutSeconds: 30 } })
        yield* queue.send(bodies(30))
        const consumer = yield* start
        yield* settle
        assert.deepStrictEqual((yield* queue.counts).inFlight, 30)

        const stopping = yield* Effect.forkChild(consumer.stop)
        yield* settle
        assert.strictEqual(stopping.pollUnsafe(), undefined)
        yield* TestClock.adjust(`${tuning.shutdownGraceSeconds} seconds`)
        const final = yield* Fiber.join(stopping)
        assert.deepStrictEqual([final.received, final.committed, final.deleted], [30, 0, 0])

        // Nothing was deleted: once the visibility timeout (30 s from the receive) ends, all 30 are back.
        yield* TestClock.adjust("10 seconds")
        const after = yield* queue.counts
        assert.deepStrictEqual([after.visible, after.inFlight, after.deleted], [30, 0, 0])
      }).pipe(Effect.scoped, quiet)
  )
})
