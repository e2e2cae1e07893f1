/**
 * OngageClient against the fake Ongage over real HTTP: batches, 412 partial failures per email,
 * 429 back-off, the parallelism cap, and the not-configured path.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { AppConfig, type Env } from "../../src/platform/Config.ts"
import { UpstreamError, ValidationError } from "../../src/platform/Errors.ts"
import { OngageClient, type OngageClientOptions, type OngageContact } from "../../src/ongage/OngageClient.ts"
import { startFakeOngage, type FakeOngage } from "../../../../test/fakes/ongage.ts"

const FAST: OngageClientOptions = { baseDelay: "5 millis", maxDelay: "20 millis", timeout: "2 seconds", maxRetries: 3 }

const fakeOngage = Effect.acquireRelease(
  Effect.promise(() => startFakeOngage()),
  (fake) => Effect.promise(() => fake.close())
)

const envFor = (fake: FakeOngage, extra: Env = {}): Env => ({
  LIST_ID: fake.state.credentials.listId,
  X_USERNAME: fake.state.credentials.username,
  X_PASSWORD: fake.state.credentials.password,
  X_ACCOUNT_CODE: fake.state.credentials.accountCode,
  ONGAGE_API_URL: fake.url,
  ...extra
})

const clientLayer = (env: Env, options: OngageClientOptions = {}) =>
  OngageClient.layerWith({ ...FAST, ...options }).pipe(Layer.provide(AppConfig.layerFrom(env)))

const withClient =
  (fake: FakeOngage, options: OngageClientOptions = {}, env: Env = {}) =>
  <A, E>(effect: Effect.Effect<A, E, OngageClient>) =>
    effect.pipe(Effect.provide(clientLayer(envFor(fake, env), options)))

const contact = (phone: string, extra: Record<string, string> = {}): OngageContact => ({
  email: `+${phone}@yourmobile.com`,
  fields: {
    mobile: phone,
    country: "United Kingdom",
    source: "GB_FTD",
    conversion_type: "FTD",
    is_ftd: "true",
    ...extra
  }
})

const upsert = (contacts: ReadonlyArray<OngageContact>) => OngageClient.use((o) => o.upsertContacts(contacts))

describe("OngageClient.upsertContacts", () => {
  it.live("a 200 batch: every contact succeeded, sent once with the auth headers", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      const batch = [contact("447700900001"), contact("447700900002"), contact("447700900003")]
      const outcome = yield* withClient(fake)(upsert(batch))
      assert.deepStrictEqual(outcome, { succeeded: batch.map((c) => c.email), failed: [] })
      assert.strictEqual(fake.state.received.length, 3)
      assert.deepStrictEqual(fake.state.contacts.get("+447700900002@yourmobile.com")?.fields, batch[1]!.fields)
      assert.isTrue(fake.state.received.every((c) => c.overwrite))
      const request = fake.state.requests[0]!
      assert.strictEqual(request.path, `/${fake.state.credentials.listId}/api/v2/contacts`)
      assert.strictEqual(request.headers.get("x_account_code"), fake.state.credentials.accountCode)
    })
  )

  it.live("a 412 partial failure is read per email", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      fake.state.failures.set("+447700900002@yourmobile.com", "Email already exists")
      fake.state.failures.set("+447700900004@yourmobile.com", "Invalid email")
      const batch = ["447700900001", "447700900002", "447700900003", "447700900004"].map((p) => contact(p))
      const outcome = yield* withClient(fake)(upsert(batch))
      assert.deepStrictEqual(outcome.succeeded, ["+447700900001@yourmobile.com", "+447700900003@yourmobile.com"])
      assert.deepStrictEqual(outcome.failed, [
        { email: "+447700900002@yourmobile.com", reason: "Email already exists" },
        { email: "+447700900004@yourmobile.com", reason: "Invalid email" }
      ])
      assert.strictEqual(fake.state.requests[0]!.status, 412)
      assert.strictEqual(fake.state.count(`/${fake.state.credentials.listId}/api/v2/contacts`), 1) // not retried
    })
  )

  it.live("emails are matched case-insensitively and returned as sent", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      fake.state.failures.set("mixed@example.com", "Blocked domain")
      const outcome = yield* withClient(fake)(
        upsert([
          { email: "Mixed@Example.com", fields: {} },
          { email: "Other@Example.com", fields: {} }
        ])
      )
      assert.deepStrictEqual(outcome, {
        succeeded: ["Other@Example.com"],
        failed: [{ email: "Mixed@Example.com", reason: "Blocked domain" }]
      })
    })
  )

  it.live("a 412 without per-email detail fails every contact with Ongage's message", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      fake.state.inject({
        status: 412,
        count: 1,
        body: {
          metadata: { error: true },
          payload: { code: 412, errors: [], message: "Field 'mobile' does not exist" }
        }
      })
      const outcome = yield* withClient(fake)(upsert([contact("447700900001"), contact("447700900002")]))
      assert.deepStrictEqual(outcome.succeeded, [])
      assert.strictEqual(outcome.failed.length, 2)
      assert.include(outcome.failed[0]!.reason, "Field 'mobile' does not exist")
    })
  )

  it.live("429s are retried with back-off; the contacts reach Ongage once", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      fake.state.inject({ status: 429, count: 2, retryAfter: "0" })
      const batch = [contact("447700900001"), contact("447700900002")]
      const outcome = yield* withClient(fake)(upsert(batch))
      assert.strictEqual(outcome.succeeded.length, 2)
      assert.strictEqual(fake.state.requests.length, 3)
      assert.strictEqual(fake.state.received.length, 2)
    })
  )

  it.live("a 429 storm past the budget is a retryable UpstreamError", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      fake.state.inject({ status: 429, count: 20 })
      const error = (yield* withClient(fake)(upsert([contact("447700900001")])).pipe(Effect.flip)) as UpstreamError
      assert.instanceOf(error, UpstreamError)
      assert.strictEqual(error.service, "ongage")
      assert.strictEqual(error.status, 429)
      assert.isTrue(error.retryable)
      assert.include(error.message, "Calls per minute exceeded")
      assert.strictEqual(fake.state.requests.length, 4)
      assert.strictEqual(fake.state.received.length, 0)
    })
  )

  it.live("at most 10 requests are in flight", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      fake.state.responseDelayMs = 40
      const outcomes = yield* withClient(fake)(
        Effect.all(
          Array.from({ length: 25 }, (_, i) => upsert([contact(`4477009001${String(i).padStart(2, "0")}`)])),
          { concurrency: "unbounded" }
        )
      )
      assert.strictEqual(outcomes.filter((o) => o.succeeded.length === 1).length, 25)
      assert.strictEqual(fake.state.maxInFlight, 10)
    })
  )

  it.live("bad credentials fail at once, naming the variables", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      const error = (yield* withClient(
        fake,
        {},
        { X_PASSWORD: "wrong" }
      )(upsert([contact("447700900001")])).pipe(Effect.flip)) as UpstreamError
      assert.strictEqual(error.status, 401)
      assert.isFalse(error.retryable)
      assert.include(error.message, "X_USERNAME/X_PASSWORD/X_ACCOUNT_CODE")
      assert.strictEqual(fake.state.requests.length, 1)
    })
  )

  it.live("an empty batch sends nothing; a contact without an email is a ValidationError", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOngage
      const client = withClient(fake)
      assert.deepStrictEqual(yield* client(upsert([])), { succeeded: [], failed: [] })
      const error = yield* client(upsert([contact("447700900001"), { email: "", fields: {} }])).pipe(Effect.flip)
      assert.instanceOf(error, ValidationError)
      assert.strictEqual((error as ValidationError).field, "contacts[1].email")
      assert.strictEqual(fake.state.requests.length, 0)
    })
  )

  it.live("not configured: the layer builds and the call fails NotConfigured naming the variables", () =>
    Effect.gen(function* () {
      const error = yield* upsert([contact("447700900001")]).pipe(
        Effect.flip,
        Effect.provide(clientLayer({ X_USERNAME: "someone" }))
      )
      assert.strictEqual(error._tag, "NotConfigured")
      if (error._tag === "NotConfigured") {
        assert.deepStrictEqual([...error.missing], ["LIST_ID", "X_PASSWORD", "X_ACCOUNT_CODE"])
        assert.include(error.message, "X_ACCOUNT_CODE")
      }
    })
  )
})
