/**
 * The SQS live-events consumer end to end: messages pre-loaded into a fauxqs queue (the emulator in
 * a process of its own, so it does not share this process's event loop), then consumed by the real
 * consumer with every commit — parse, decrypt the phone token, raw insert, live upsert, classification
 * into the lists, idempotency record — and every delete. Figures: messages/s from the consumer's
 * start to the last delete, for messages of 1 event and of 10 events (each event a phone of its own,
 * an encrypted custom variable 1 and an OS version, as Voluum sends them).
 *
 * Target (issue "The SQS live-events consumer and the scheduler"): >= 1,500 messages/s of 1 event.
 * Runs with 8 receive loops (SQS_MAX_CONCURRENCY=8) unless SQS_MAX_CONCURRENCY says otherwise.
 * Reference: fauxqs's own receive + delete ceiling on this machine is ~5.1k messages/s (`docs/performance.md` "Reference measurements").
 */
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs"
import { Effect, Exit, ManagedRuntime, Result, Scope } from "effect"
import pg from "pg"
import { DEFAULT_TUNING, makeConsumer, makeSqsClient } from "@optimizer/adapters-sqs"
import { consumerLayer, parseSettings } from "@optimizer/core"
import { clickEvent, snsBody, TEST_AES_KEY, tokenFor } from "../../packages/core/test/live-events/fixtures.ts"
import { startFauxqs } from "../../test/support/fauxqs.ts"
import { perSecond, withPeakRss, type Benchmark, type BenchServer } from "./support.ts"

const OS_VERSIONS = ["IOS 18.7", "Android 14", "Android 8.0", "Android 6.0", "Windows 10", "Mac OS X 10.15"]

/** The i-th GB mobile (07400 000000 onwards): distinct, valid numbers. */
const phone = (i: number) => `44${7_400_000_000 + i}`

interface Case {
  readonly messages: number
  readonly eventsPerMessage: number
  readonly receivers: number
}

const runCase = async (server: BenchServer, c: Case, firstPhone: number) => {
  const url = await server.freshDatabase()
  const aws = await startFauxqs({ separateProcess: true })
  const sqs = new SQSClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials })
  try {
    const { queueUrl } = await aws.createQueueWithDeadLetter(undefined, { maxReceiveCount: 5 })

    // Pre-load: tokens made once per phone; SendMessageBatch, 8 in flight.
    const bodies: Array<string> = []
    let p = firstPhone
    for (let m = 0; m < c.messages; m++) {
      const events = Array.from({ length: c.eventsPerMessage }, () => {
        const n = p++
        return clickEvent({
          cv1: tokenFor(phone(n)),
          osVersion: OS_VERSIONS[n % OS_VERSIONS.length]!,
          clickId: `bench-${n}`,
          timestamp: new Date(Date.UTC(2026, 1, 7, 0, 0, 0) + n).toISOString()
        })
      })
      bodies.push(snsBody(c.eventsPerMessage === 1 ? events[0] : events))
    }
    const chunks = Array.from({ length: Math.ceil(bodies.length / 10) }, (_, i) => bodies.slice(i * 10, i * 10 + 10))
    for (let i = 0; i < chunks.length; i += 8) {
      await Promise.all(
        chunks.slice(i, i + 8).map((chunk) =>
          sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: chunk.map((body, j) => ({ Id: String(j), MessageBody: body }))
            })
          )
        )
      )
    }

    const parsed = parseSettings({
      DATABASE_URL: url,
      SQS_QUEUE_URL: queueUrl,
      SQS_ENDPOINT: aws.endpoint,
      AWS_REGION: aws.region,
      AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
      AES_KEY: TEST_AES_KEY,
      LOG_LEVEL: "Warn"
    })
    if (Result.isFailure(parsed)) throw parsed.failure
    const settings = parsed.success
    if (!settings.sqs.configured) throw new Error("SQS not configured")
    const runtime = ManagedRuntime.make(consumerLayer(settings))
    const client = makeSqsClient(settings.sqs.value)
    try {
      await runtime.runPromise(Effect.void)
      const scope = await runtime.runPromise(Scope.make())
      const started = performance.now()
      const { value: final, peakRssMb } = await withPeakRss(async () => {
        const consumer = await runtime.runPromise(
          makeConsumer(client, queueUrl, {
            ...DEFAULT_TUNING,
            receivers: c.receivers,
            visibilityTimeoutSeconds: 60,
            statsIntervalSeconds: 3600
          }).pipe(Scope.provide(scope))
        )
        for (;;) {
          const stats = await runtime.runPromise(consumer.stats)
          if (stats.deleted >= c.messages) break
          await new Promise((r) => setTimeout(r, 20))
        }
        const stats = await runtime.runPromise(consumer.stats)
        await runtime.runPromise(Scope.close(scope, Exit.void))
        return stats
      })
      const ms = performance.now() - started

      const check = new pg.Client({ connectionString: url })
      await check.connect()
      const db = (
        await check.query<{ live: number; raw: number; listed: number }>(
          `SELECT (SELECT count(*) FROM voluum_live_events)::int AS live, (SELECT count(*) FROM raw_live_voluum_sns_data)::int AS raw,
                  (SELECT count(*) FROM blacklist)::int + (SELECT count(*) FROM whitelist)::int + (SELECT count(*) FROM monitor)::int AS listed`
        )
      ).rows[0]!
      await check.end()
      return {
        messagesPerSecond: perSecond(c.messages, ms),
        eventsPerSecond: perSecond(c.messages * c.eventsPerMessage, ms),
        seconds: Number((ms / 1000).toFixed(2)),
        avgCommitMs: final.commits === 0 ? 0 : Math.round(final.totalCommitMs / final.commits),
        messagesPerCommit: final.commits === 0 ? 0 : Math.round(final.committed / final.commits),
        peakRssMb,
        live: db.live,
        raw: db.raw,
        listed: db.listed
      }
    } finally {
      client.destroy()
      await runtime.dispose()
    }
  } finally {
    sqs.destroy()
    await aws.stop()
  }
}

export const sqsBenchmark: Benchmark = {
  name: "sqs",
  description:
    "live events consumed from fauxqs end to end (commit + classification + delete): 1-event and 10-event messages",
  run: async (server) => {
    // 8 receive loops: with the default 4, the receive side (one long poll = 10 messages per round trip)
    // is what limits 1-event messages; `SQS_MAX_CONCURRENCY=4 npm run bench -- sqs` measures the default.
    const receivers = Number(process.env.SQS_MAX_CONCURRENCY ?? 8)
    const one = await runCase(server, { messages: 20_000, eventsPerMessage: 1, receivers }, 0)
    const ten = await runCase(server, { messages: 3_000, eventsPerMessage: 10, receivers }, 100_000)
    return {
      "receive loops (SQS_MAX_CONCURRENCY)": receivers,
      "1-event messages": 20_000,
      "1-event messages/s (target >= 1,500)": one.messagesPerSecond,
      "1-event avg commit ms / messages per commit": `${one.avgCommitMs} / ${one.messagesPerCommit}`,
      "1-event peak RSS MB": one.peakRssMb,
      "1-event rows: live / raw / listed": `${one.live} / ${one.raw} / ${one.listed}`,
      "10-event messages": 3_000,
      "10-event messages/s": ten.messagesPerSecond,
      "10-event events/s": ten.eventsPerSecond,
      "10-event avg commit ms / messages per commit": `${ten.avgCommitMs} / ${ten.messagesPerCommit}`,
      "10-event rows: live / raw / listed": `${ten.live} / ${ten.raw} / ${ten.listed}`
    }
  }
}
