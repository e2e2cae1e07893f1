/**
 * HlrClient against the fake hlrlookup batch API over real HTTP: the batch flow, statuses over polls,
 * a FAILED batch, 429 with Retry-After, results that are not CSV, a results body broken off, the credentials kept out of errors,
 * and the not-configured path.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Result } from "effect"
import { HlrClient, type HlrClientOptions } from "../../src/hlr/HlrClient.ts"
import { AppConfig, type Env } from "../../src/platform/Config.ts"
import type { UpstreamError } from "../../src/platform/Errors.ts"
import { LIVE_STATUSES, RESULT_HEADERS, startFakeHlr, type FakeHlr } from "../../../../test/fakes/hlrlookup.ts"

const FAST: HlrClientOptions = { baseDelay: "5 millis", maxDelay: "20 millis", timeout: "2 seconds", maxRetries: 3 }

const fakeHlr = Effect.acquireRelease(
  Effect.promise(() => startFakeHlr()),
  (fake) => Effect.promise(() => fake.close())
)

const envFor = (fake: FakeHlr): Env => ({
  HLRLOOKUP_APIKEY: fake.state.credentials.apiKey,
  HLRLOOKUP_SECRET: fake.state.credentials.secret,
  HLR_API_URL: fake.url
})

const withClient =
  (env: Env, options: HlrClientOptions = {}) =>
  <A, E>(effect: Effect.Effect<A, E, HlrClient>) =>
    effect.pipe(
      Effect.provide(HlrClient.layerWith({ ...FAST, ...options }).pipe(Layer.provide(AppConfig.layerFrom(env))))
    )

/** `results` read to the end into a string (a failed read is the effect's failure). */
const resultsText = (hlr: HlrClient["Service"], id: string) =>
  Effect.scoped(
    hlr.results(id).pipe(
      Effect.flatMap((body) =>
        Effect.tryPromise({
          try: async () => {
            let text = ""
            const decoder = new TextDecoder()
            for await (const chunk of body) text += decoder.decode(chunk, { stream: true })
            return text
          },
          catch: (cause) => cause as UpstreamError
        })
      )
    )
  )

const NUMBERS = LIVE_STATUSES.map((_, i) => `4477009000${String(i).padStart(2, "0")}`)

describe("HlrClient", () => {
  it.live("creates, uploads, starts, polls to COMPLETE and downloads the results CSV", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHlr
      LIVE_STATUSES.forEach((s, i) => fake.state.outcomes.set(NUMBERS[i]!, { live_status: s }))
      const outcome = yield* HlrClient.use((hlr) =>
        Effect.gen(function* () {
          const id = yield* hlr.createBatch("f.csv")
          yield* hlr.uploadSource(id, NUMBERS.join("\n") + "\n")
          yield* hlr.startBatch(id)
          const first = yield* hlr.status(id)
          const second = yield* hlr.status(id)
          const csv = yield* resultsText(hlr, id)
          return { id, first, second, csv }
        })
      ).pipe(withClient(envFor(fake)))
      assert.strictEqual(fake.state.batchesCreated, 1)
      assert.deepStrictEqual(fake.state.batches.get(outcome.id)!.batchArguments, {
        cache_days_private: 30,
        cache_days_global: 30,
        save_to_cache: "YES"
      })
      assert.strictEqual(outcome.first.status, "PROCESSING")
      assert.strictEqual(outcome.first.numItems, NUMBERS.length)
      assert.strictEqual(outcome.second.status, "COMPLETE")
      assert.strictEqual(outcome.second.numComplete, NUMBERS.length)
      const lines = outcome.csv.trim().split("\n")
      assert.strictEqual(lines[0], RESULT_HEADERS.join(","))
      assert.strictEqual(lines.length, NUMBERS.length + 1)
      assert.deepStrictEqual(fake.state.submitted, NUMBERS)
    })
  )

  it.live("a FAILED batch is an HlrBatchFailed naming the batch", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHlr
      fake.state.failBatches = true
      fake.state.pollsToComplete = 1
      const result = yield* HlrClient.use((hlr) =>
        Effect.gen(function* () {
          const id = yield* hlr.createBatch("f.csv")
          yield* hlr.uploadSource(id, "447700900001\n")
          yield* hlr.startBatch(id)
          return yield* hlr.status(id)
        })
      ).pipe(withClient(envFor(fake)), Effect.result)
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure._tag, "HlrBatchFailed")
        assert.include(result.failure.message, "FAILED")
      }
    })
  )

  it.live("429 with Retry-After is waited for and retried; creation is never repeated", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHlr
      fake.state.inject({ path: "/batches/1001", status: 429, count: 2, retryAfter: "0" })
      const batch = yield* HlrClient.use((hlr) =>
        Effect.gen(function* () {
          const id = yield* hlr.createBatch("f.csv")
          yield* hlr.startBatch(id)
          return yield* hlr.status(id)
        })
      ).pipe(withClient(envFor(fake)))
      assert.strictEqual(batch.id, "1001")
      assert.strictEqual(fake.state.count("GET", "/batches/1001"), 3)

      fake.state.inject({ path: "/batches/", status: 429, count: 1, retryAfter: "0" })
      const created = yield* HlrClient.use((hlr) => hlr.createBatch("g.csv")).pipe(
        withClient(envFor(fake)),
        Effect.result
      )
      assert.isTrue(Result.isFailure(created))
      assert.strictEqual(fake.state.count("POST", "/batches/"), 2)
      assert.strictEqual(fake.state.batchesCreated, 1)
    })
  )

  it.live("typed failures: no batch id, results that are not CSV; the secret never in a message", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHlr
      fake.state.createWithoutId = true
      const noId = yield* HlrClient.use((hlr) => hlr.createBatch("f.csv")).pipe(withClient(envFor(fake)), Effect.flip)
      assert.strictEqual(noId._tag, "UpstreamError")
      assert.include(noId.message, "no batch id")
      fake.state.createWithoutId = false
      fake.state.resultsNotCsv = true
      const notCsv = yield* HlrClient.use((hlr) =>
        Effect.gen(function* () {
          const id = yield* hlr.createBatch("f.csv")
          return yield* resultsText(hlr, id)
        })
      ).pipe(withClient(envFor(fake)), Effect.flip)
      assert.include(notCsv.message, "not a results CSV")
      const denied = yield* HlrClient.use((hlr) => hlr.status("1")).pipe(
        withClient({ ...envFor(fake), HLRLOOKUP_SECRET: "wrong-secret-value" }),
        Effect.flip
      )
      assert.strictEqual(denied._tag, "UpstreamError")
      for (const e of [noId, notCsv, denied]) {
        assert.notInclude(e.message, fake.state.credentials.secret)
        assert.notInclude(e.message, "wrong-secret-value")
      }
    })
  )

  it.live("a results body broken off half-way fails the read, retryable, and is not downloaded again", () =>
    Effect.gen(function* () {
      const fake = yield* fakeHlr
      fake.state.pollsToComplete = 1
      fake.state.cutResults = { afterRows: 2, times: 1 }
      const numbers = ["447700900001", "447700900002", "447700900003", "447700900004"]
      const broken = yield* HlrClient.use((hlr) =>
        Effect.gen(function* () {
          const id = yield* hlr.createBatch("f.csv")
          yield* hlr.uploadSource(id, numbers.join("\n"))
          yield* hlr.startBatch(id)
          yield* hlr.status(id)
          return yield* resultsText(hlr, id)
        })
      ).pipe(withClient(envFor(fake)), Effect.flip)
      assert.strictEqual(broken._tag, "UpstreamError")
      assert.isTrue(broken._tag === "UpstreamError" && broken.retryable)
      assert.include(broken.message, "broke off")
      assert.notInclude(broken.message, fake.state.credentials.secret)
      // The client handed the body on: it is the caller's to start over, not the client's to resume.
      assert.strictEqual(fake.state.count("GET", "/batches/1001/results"), 1)
      const again = yield* HlrClient.use((hlr) => resultsText(hlr, "1001")).pipe(withClient(envFor(fake)))
      assert.strictEqual(again.split("\n").length, numbers.length + 2)
    })
  )

  it.live(
    "a slow results download within the timeout succeeds; one beyond it fails (after the retries while no body came)",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeHlr
        fake.state.pollsToComplete = 1
        fake.state.downloadDelayMs = 300
        const ok = yield* HlrClient.use((hlr) =>
          Effect.gen(function* () {
            const id = yield* hlr.createBatch("f.csv")
            yield* hlr.uploadSource(id, "447700900001\n")
            yield* hlr.startBatch(id)
            yield* hlr.status(id)
            return yield* resultsText(hlr, id)
          })
        ).pipe(withClient(envFor(fake)))
        assert.include(ok, "447700900001")
        const slow = yield* HlrClient.use((hlr) => resultsText(hlr, "1001")).pipe(
          withClient(envFor(fake), { downloadTimeout: "100 millis", maxRetries: 1 }),
          Effect.flip
        )
        assert.strictEqual(slow._tag, "UpstreamError")
        assert.include(slow.message, "did not answer")
        // A body that starts in time but does not end within the timeout: not retried once handed on.
        fake.state.downloadDelayMs = 0
        fake.state.resultsChunkDelayMs = 400
        const before = fake.state.count("GET", "/batches/1001/results")
        const stalled = yield* HlrClient.use((hlr) => resultsText(hlr, "1001")).pipe(
          withClient(envFor(fake), { downloadTimeout: "150 millis", maxRetries: 1 }),
          Effect.flip
        )
        assert.strictEqual(stalled._tag, "UpstreamError")
        assert.include(stalled.message, "did not finish sending the results")
        assert.strictEqual(fake.state.count("GET", "/batches/1001/results"), before + 1)
      })
  )

  it.effect("not configured: every method fails with NotConfigured naming the variables", () =>
    Effect.gen(function* () {
      const error = yield* HlrClient.use((hlr) => hlr.createBatch("f.csv")).pipe(withClient({}), Effect.flip)
      assert.strictEqual(error._tag, "NotConfigured")
      if (error._tag === "NotConfigured")
        assert.deepStrictEqual(error.missing, ["HLRLOOKUP_APIKEY", "HLRLOOKUP_SECRET"])
    })
  )
})
