/**
 * The SQS consumer end to end: fauxqs over the wire (queues with a dead-letter queue and a
 * RedrivePolicy, SNS fan-out enveloped and raw), a real PostgreSQL database, the consumer in this
 * process or as a child process (`bin/optimizer-consume.js`) stopped by SIGTERM. What is checked is
 * what an operator would: which events are in the tables, which messages are still on the queue or
 * in the dead-letter queue, and that no message was deleted without its events being stored.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import { fileURLToPath } from "node:url"
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns"
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient
} from "@aws-sdk/client-sqs"
import { Exit, ManagedRuntime, Result, Scope } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { consumerLayer, parseSettings, type Env } from "@optimizer/core"
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.ts"
import { startFauxqs, type Fauxqs } from "../../../test/support/fauxqs.ts"
import { adminUrl } from "../../../test/support/pgUrls.ts"
import { clickEvent, phoneAt, snsBody, TEST_AES_KEY } from "../../core/test/live-events/fixtures.ts"
import { DEFAULT_TUNING, makeConsumer, type ConsumerTuning } from "../src/Consumer.ts"
import { makeSqsClient } from "../src/SqsQueue.ts"

let aws: Fauxqs
let sqs: SQSClient
let sns: SNSClient
let db: TestDatabase
let client: pg.Client

beforeAll(async () => {
  aws = await startFauxqs()
  sqs = new SQSClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials })
  sns = new SNSClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials })
  db = await createTestDatabase()
  client = new pg.Client({ connectionString: db.url })
  await client.connect()
})

afterAll(async () => {
  sqs?.destroy()
  sns?.destroy()
  await client?.end()
  await db?.drop()
  await aws?.stop()
})

const envFor = (queueUrl: string, databaseUrl: string): Env => ({
  DATABASE_URL: databaseUrl,
  SQS_QUEUE_URL: queueUrl,
  SQS_ENDPOINT: aws.endpoint,
  AWS_REGION: aws.region,
  AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
  AES_KEY: TEST_AES_KEY,
  LOG_LEVEL: "Error"
})

/** The consumer in this process, on its own runtime (as `runConsumer` builds it). */
const startConsumer = async (
  queueUrl: string,
  options: { readonly databaseUrl?: string; readonly tuning?: Partial<ConsumerTuning> } = {}
) => {
  const parsed = parseSettings(envFor(queueUrl, options.databaseUrl ?? db.url))
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  const settings = parsed.success
  if (!settings.sqs.configured) throw new Error("SQS not configured")
  const runtime = ManagedRuntime.make(consumerLayer(settings))
  const scope = await runtime.runPromise(Scope.make())
  const sqsClient = makeSqsClient(settings.sqs.value)
  const tuning: ConsumerTuning = {
    ...DEFAULT_TUNING,
    receivers: 2,
    visibilityTimeoutSeconds: 5,
    waitTimeSeconds: 1,
    statsIntervalSeconds: 3600,
    retryInitialMs: 100,
    retryMaxMs: 500,
    ...options.tuning
  }
  const handle = await runtime.runPromise(makeConsumer(sqsClient, queueUrl, tuning).pipe(Scope.provide(scope)))
  return {
    handle,
    stats: () => runtime.runPromise(handle.stats),
    stop: async () => {
      const final = await runtime.runPromise(handle.stop)
      await runtime.runPromise(Scope.close(scope, Exit.void))
      sqsClient.destroy()
      await runtime.dispose()
      return final
    }
  }
}

const waitFor = async <A>(
  what: string,
  check: () => Promise<A | undefined | false>,
  timeoutMs = 20_000
): Promise<A> => {
  const until = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const queueCounts = async (queueUrl: string) => {
  const a = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    })
  )
  return {
    visible: Number(a.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  }
}

const isEmpty = async (queueUrl: string) => {
  const c = await queueCounts(queueUrl)
  return c.visible === 0 && c.inFlight === 0
}

/** Every message now visible on a queue (each receive hides it again for `visibility` seconds). */
const receiveAll = async (queueUrl: string, visibility = 30) => {
  const bodies: Array<string> = []
  for (;;) {
    const r = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: visibility
      })
    )
    const got = r.Messages ?? []
    if (got.length === 0) return bodies
    bodies.push(...got.map((m) => m.Body ?? ""))
  }
}

const send = async (queueUrl: string, bodies: ReadonlyArray<string>) => {
  for (let i = 0; i < bodies.length; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body }))
      })
    )
  }
}

const count = async (text: string, values: ReadonlyArray<unknown> = []) =>
  Number((await client.query(text, [...values])).rows[0]!.n)

/** Phones of their own per test: the tests share one database. */
let nextPhone = 0
const phones = (n: number) => Array.from({ length: n }, () => phoneAt(nextPhone++))

describe("SQS consumer (fauxqs + PostgreSQL)", () => {
  it("consumes an SNS fan-out, enveloped and raw: every event in both tables, every message deleted", async () => {
    const topicArn = await aws.createTopic()
    const wrapped = await aws.createQueueWithDeadLetter(undefined, { maxReceiveCount: 3 })
    const raw = await aws.createQueueWithDeadLetter(undefined, { maxReceiveCount: 3 })
    await aws.subscribeQueue(topicArn, wrapped.queueArn)
    await aws.subscribeQueue(topicArn, raw.queueArn, { raw: true })
    const numbers = phones(25)
    const batchTag = randomUUID()
    for (let i = 0; i < numbers.length; i += 5) {
      // Voluum publishes an array of events per notification, or a single event.
      const events = numbers
        .slice(i, i + 5)
        .map((phone) => clickEvent({ phone, clickId: `fan-${i}`, extra: { externalId: batchTag } }))
      await sns.send(new PublishCommand({ TopicArn: topicArn, Message: JSON.stringify(i === 0 ? events[0] : events) }))
    }
    // 1 + 4×5 = 21 events per subscription.
    const consumers = [await startConsumer(wrapped.queueUrl), await startConsumer(raw.queueUrl)]
    try {
      await waitFor(
        "both queues drained",
        async () => (await isEmpty(wrapped.queueUrl)) && (await isEmpty(raw.queueUrl))
      )
      await waitFor(
        "42 raw rows",
        async () =>
          (await count("SELECT count(*) AS n FROM raw_live_voluum_sns_data WHERE external_id = $1", [batchTag])) === 42
      )
    } finally {
      for (const c of consumers) await c.stop()
    }
    expect(await count("SELECT count(*) AS n FROM voluum_live_events WHERE external_id = $1", [batchTag])).toBe(21)
    // Enveloped messages are recorded under their SNS MessageId, raw ones under their SQS id.
    expect(
      await count(
        "SELECT count(DISTINCT sns_message_id) AS n FROM raw_live_voluum_sns_data WHERE external_id = $1 AND sns_message_id LIKE 'sqs:%'",
        [batchTag]
      )
    ).toBe(5)
    expect(await receiveAll(wrapped.deadLetterQueueUrl)).toEqual([])
    expect(await receiveAll(raw.deadLetterQueueUrl)).toEqual([])
  })

  it("sends a poison message to the dead-letter queue after maxReceiveCount and loses nothing else", async () => {
    const queue = await aws.createQueueWithDeadLetter(undefined, { maxReceiveCount: 2 })
    const numbers = phones(12)
    const tag = randomUUID()
    const good = numbers.map((phone) => snsBody(clickEvent({ phone, extra: { externalId: tag } })))
    const poison = ["{ this is not json", snsBody(clickEvent({ timestamp: "last tuesday" }))]
    await send(queue.queueUrl, [...good.slice(0, 6), ...poison, ...good.slice(6)])
    const consumer = await startConsumer(queue.queueUrl, { tuning: { visibilityTimeoutSeconds: 1 } })
    try {
      await waitFor("the main queue drained", () => isEmpty(queue.queueUrl), 30_000)
    } finally {
      const final = await consumer.stop()
      expect(final.failed).toBeGreaterThanOrEqual(4) // each poison message received twice
    }
    expect(await count("SELECT count(*) AS n FROM voluum_live_events WHERE external_id = $1", [tag])).toBe(12)
    expect(await count("SELECT count(*) AS n FROM raw_live_voluum_sns_data WHERE external_id = $1", [tag])).toBe(12)
    expect((await receiveAll(queue.deadLetterQueueUrl)).sort()).toEqual([...poison].sort())
  })

  it("acknowledges a redelivered message without changing anything", async () => {
    const queue = await aws.createQueueWithDeadLetter()
    const [phone] = phones(1)
    const tag = randomUUID()
    const body = snsBody(clickEvent({ phone: phone!, extra: { externalId: tag } }))
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: body }))
    const consumer = await startConsumer(queue.queueUrl)
    try {
      await waitFor(
        "the first copy",
        async () =>
          (await count("SELECT count(*) AS n FROM raw_live_voluum_sns_data WHERE external_id = $1", [tag])) === 1
      )
      const stored = await client.query("SELECT * FROM voluum_live_events WHERE custom_variable_1 = $1", [phone])
      // SNS retried the publish: the same notification (same MessageId) arrives again, twice.
      await send(queue.queueUrl, [body, body])
      await waitFor(
        "the copies deleted",
        async () => (await consumer.stats()).duplicates === 2 && (await isEmpty(queue.queueUrl))
      )
      expect(await count("SELECT count(*) AS n FROM raw_live_voluum_sns_data WHERE external_id = $1", [tag])).toBe(1)
      expect(
        (await client.query("SELECT * FROM voluum_live_events WHERE custom_variable_1 = $1", [phone])).rows
      ).toEqual(stored.rows)
    } finally {
      await consumer.stop()
    }
  })

  it("commits two events for one phone in a batch once, with the newest", async () => {
    const queue = await aws.createQueueWithDeadLetter()
    const [phone] = phones(1)
    await send(queue.queueUrl, [
      snsBody([
        clickEvent({ phone: phone!, clickId: "noon", timestamp: "2026-02-07T12:00:00Z" }),
        clickEvent({ phone: phone!, clickId: "morning", timestamp: "2026-02-07T08:00:00Z" })
      ]),
      snsBody(clickEvent({ phone: phone!, clickId: "evening", timestamp: "2026-02-07T18:00:00Z" })),
      snsBody(clickEvent({ phone: phone!, clickId: "night", timestamp: "2026-02-07T02:00:00Z" }))
    ])
    const consumer = await startConsumer(queue.queueUrl)
    try {
      await waitFor("the queue drained", () => isEmpty(queue.queueUrl))
    } finally {
      await consumer.stop()
    }
    const rows = await client.query("SELECT click_id, timestamp FROM voluum_live_events WHERE custom_variable_1 = $1", [
      phone
    ])
    expect(rows.rows).toEqual([{ click_id: "evening", timestamp: new Date("2026-02-07T18:00:00Z") }])
    expect(
      await count(
        "SELECT count(*) AS n FROM raw_live_voluum_sns_data WHERE custom_variables[2] = 'bc_20260207' AND click_id IN ('noon','morning','evening','night')"
      )
    ).toBeGreaterThanOrEqual(4)
  })

  it("survives the database going away and coming back: receiving pauses, nothing is lost or deleted early", async () => {
    const own = await createTestDatabase()
    const admin = new pg.Client({ connectionString: adminUrl(own.url) })
    await admin.connect()
    const queue = await aws.createQueueWithDeadLetter()
    const consumer = await startConsumer(queue.queueUrl, {
      databaseUrl: own.url,
      tuning: { visibilityTimeoutSeconds: 60 }
    })
    try {
      const tag = randomUUID()
      const numbers = phones(40)
      await send(
        queue.queueUrl,
        numbers.slice(0, 10).map((phone) => snsBody(clickEvent({ phone, extra: { externalId: tag } })))
      )
      await waitFor("the first 10 deleted", async () => (await consumer.stats()).deleted === 10)

      // The database goes away: no new connections, every open one killed.
      await admin.query(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS false`)
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [own.name])
      await send(
        queue.queueUrl,
        numbers.slice(10).map((phone) => snsBody(clickEvent({ phone, extra: { externalId: tag } })))
      )
      const during = await waitFor("commit retries", async () => {
        const s = await consumer.stats()
        return s.commitRetries >= 3 ? s : undefined
      })
      expect(during.deleted).toBe(10) // nothing deleted while nothing commits
      await new Promise((r) => setTimeout(r, 1500))
      const paused = await consumer.stats()
      expect(paused.deleted).toBe(10)
      expect(paused.received).toBe(during.received) // receiving paused

      await admin.query(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS true`)
      await waitFor("all 40 deleted", async () => (await consumer.stats()).deleted === 40, 30_000)
      const check = new pg.Client({ connectionString: own.url })
      await check.connect()
      try {
        const live = await check.query("SELECT count(*)::int AS n FROM voluum_live_events WHERE external_id = $1", [
          tag
        ])
        const raw = await check.query(
          "SELECT count(*)::int AS n FROM raw_live_voluum_sns_data WHERE external_id = $1",
          [tag]
        )
        expect([live.rows[0].n, raw.rows[0].n]).toEqual([40, 40])
      } finally {
        await check.end()
      }
      expect(await isEmpty(queue.queueUrl)).toBe(true)
    } finally {
      await admin.query(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS true`).catch(() => undefined)
      await consumer.stop()
      await admin.end()
      await own.drop()
    }
  }, 60_000)
})

describe("the consumer process", () => {
  const BIN = fileURLToPath(new URL("../bin/optimizer-consume.js", import.meta.url))

  const startProcess = (env: Env): ChildProcess =>
    spawn(process.execPath, [BIN], {
      env: { PATH: process.env.PATH, ...env, LOG_LEVEL: "Info", LOG_FORMAT: "json", SQS_MAX_CONCURRENCY: "2" },
      stdio: ["ignore", "ignore", "pipe"]
    })

  const exitOf = (child: ChildProcess) =>
    new Promise<number | null>((resolve) =>
      child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))
    )

  it("refuses to start without SQS_QUEUE_URL, naming it", async () => {
    const child = spawn(process.execPath, [BIN], {
      env: { PATH: process.env.PATH, DATABASE_URL: db.url },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()))
    expect(await exitOf(child)).toBe(1)
    expect(stderr).toMatch(/SQS is not configured: set SQS_QUEUE_URL/)
  })

  it("on SIGTERM mid-batch: commits what it holds, deletes only committed messages, exits 0", async () => {
    const queue = await aws.createQueueWithDeadLetter(undefined, { maxReceiveCount: 5 })
    const tag = randomUUID()
    const ids = Array.from({ length: 60 }, () => randomUUID())
    const numbers = phones(60)
    await send(
      queue.queueUrl,
      ids.map((id, i) => snsBody(clickEvent({ phone: numbers[i]!, extra: { externalId: tag } }), id))
    )
    // Hold every commit inside its transaction: the consumer will be mid-batch when SIGTERM comes.
    const blocker = new pg.Client({ connectionString: db.url })
    await blocker.connect()
    await blocker.query("BEGIN")
    await blocker.query("LOCK TABLE processed_sns_messages IN EXCLUSIVE MODE")
    // Long enough for the held messages' receipt handles to stay valid on a busy machine (their delete), short
    // enough to see the messages of the aborted polls come back.
    const child = startProcess({ ...envFor(queue.queueUrl, db.url), SQS_VISIBILITY_TIMEOUT: "8" })
    let stderr = ""
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()))
    try {
      await waitFor(
        "a commit blocked on the lock",
        async () =>
          (await count(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%processed_sns_messages%'"
          )) > 0
      )
      child.kill("SIGTERM")
      await new Promise((r) => setTimeout(r, 500))
      expect(child.exitCode).toBe(null) // still finishing the batch in hand
      await blocker.query("COMMIT")
      expect(await exitOf(child)).toBe(0)
    } finally {
      await blocker.end()
      if (child.exitCode === null) child.kill("SIGKILL")
    }
    if (!/live-events consumer stopped/.test(stderr)) console.log(stderr) // what the process said, when it did not stop cleanly
    expect(stderr).toMatch(/live-events consumer stopped/)

    const committed = new Set(
      (await client.query("SELECT message_id FROM processed_sns_messages WHERE message_id = ANY($1)", [ids])).rows.map(
        (r: { message_id: string }) => r.message_id
      )
    )
    expect(committed.size).toBeGreaterThan(0)
    expect(await count("SELECT count(*) AS n FROM raw_live_voluum_sns_data WHERE external_id = $1", [tag])).toBe(
      committed.size
    )
    // What is left on the queue (once the aborted polls' messages are visible again) is exactly what was not committed.
    await new Promise((r) => setTimeout(r, 8500))
    const left = (await receiveAll(queue.queueUrl)).map((body) => (JSON.parse(body) as { MessageId: string }).MessageId)
    expect(left.filter((id) => committed.has(id))).toEqual([])
    expect(new Set([...left, ...committed])).toEqual(new Set(ids))
  }, 60_000)
})
