/**
 * The consumer's access to its queue, as a service: describe (at start), receive (a long poll),
 * delete a batch. `SqsQueue.layer(settings)` is the real queue over `@aws-sdk/client-sqs`;
 * `SqsQueue.fromClient(client, queueUrl)` wraps a client the caller owns. The consumer loop
 * (`Consumer.ts`) only sees this interface, so its tests can run it over an in-memory queue on the
 * test clock (packages/adapters-sqs/test/support/InMemoryQueue.ts).
 *
 * Every call is interruptible: interrupting a receive aborts its HTTP request (the consumer does so
 * on stop). A message SQS had already handed to an aborted poll stays invisible until its
 * visibility timeout, then comes back.
 */
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message
} from "@aws-sdk/client-sqs"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import type { SqsSettings } from "@optimizer/core"

/** A call to SQS failed (network, credentials, throttling, an aborted poll). */
export class SqsError extends Schema.TaggedError<SqsError>()("SqsError", {
  message: Schema.String
}) {}

/** A message taken from the queue: invisible to other receivers until deleted or its timeout ends. */
export interface ReceivedMessage {
  readonly messageId: string
  readonly receiptHandle: string
  readonly body: string
  /** SentTimestamp (epoch milliseconds), when SQS gave one. */
  readonly sentAt: number | undefined
  /** ApproximateReceiveCount: 1 on the first delivery. */
  readonly receiveCount?: number | undefined
}

export interface ReceiveRequest {
  /** 1–10. */
  readonly maxMessages: number
  /** How long the poll waits for a first message. */
  readonly waitTimeSeconds: number
  /** How long the received messages stay invisible. */
  readonly visibilityTimeoutSeconds: number
}

/** The outcome of one DeleteMessageBatch: how many went, and why the others did not. */
export interface DeleteOutcome {
  readonly deleted: number
  readonly failures: ReadonlyArray<string>
}

export const messageOf = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : typeof error === "string" ? error : String(error)

export class SqsQueue extends Context.Service<
  SqsQueue,
  {
    /** The queue's URL, for logs. */
    readonly url: string
    /** Whether the queue has a dead-letter queue (a RedrivePolicy); fails on a wrong URL or credentials. */
    readonly hasDeadLetterQueue: Effect.Effect<boolean, SqsError>
    /** The RedrivePolicy's maxReceiveCount, once `hasDeadLetterQueue` has read it (undefined: none). */
    readonly maxReceiveCount?: () => number | undefined
    readonly receive: (request: ReceiveRequest) => Effect.Effect<ReadonlyArray<ReceivedMessage>, SqsError>
    /** Deletes up to 10 messages by their receipt handles in one call. */
    readonly deleteBatch: (receiptHandles: ReadonlyArray<string>) => Effect.Effect<DeleteOutcome, SqsError>
  }
>()("@optimizer/adapters-sqs/SqsQueue") {
  /** The queue at `queueUrl` through a client the caller creates and destroys. */
  static readonly fromClient = (sqs: SQSClient, queueUrl: string): SqsQueue["Service"] => {
    const send = <A>(f: (signal: AbortSignal) => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (cause) => new SqsError({ message: messageOf(cause) }) })
    let maxReceiveCount: number | undefined
    return SqsQueue.of({
      url: queueUrl,
      hasDeadLetterQueue: send((signal) =>
        sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["VisibilityTimeout", "RedrivePolicy"] }),
          { abortSignal: signal }
        )
      ).pipe(
        Effect.map((a) => {
          const policy = a.Attributes?.RedrivePolicy
          if (policy === undefined) return false
          try {
            const count = Number((JSON.parse(policy) as { maxReceiveCount?: unknown }).maxReceiveCount)
            maxReceiveCount = Number.isInteger(count) && count > 0 ? count : undefined
          } catch {
            maxReceiveCount = undefined
          }
          return true
        })
      ),
      maxReceiveCount: () => maxReceiveCount,
      receive: (request) =>
        send((signal) =>
          sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: request.maxMessages,
              WaitTimeSeconds: request.waitTimeSeconds,
              VisibilityTimeout: request.visibilityTimeoutSeconds,
              MessageSystemAttributeNames: ["SentTimestamp", "ApproximateReceiveCount"]
            }),
            { abortSignal: signal }
          )
        ).pipe(
          Effect.map((result) =>
            (result.Messages ?? []).flatMap((m: Message): Array<ReceivedMessage> => {
              if (m.MessageId === undefined || m.ReceiptHandle === undefined) return []
              const sent = Number(m.Attributes?.SentTimestamp)
              const received = Number(m.Attributes?.ApproximateReceiveCount)
              return [
                {
                  messageId: m.MessageId,
                  receiptHandle: m.ReceiptHandle,
                  body: m.Body ?? "",
                  sentAt: Number.isFinite(sent) ? sent : undefined,
                  receiveCount: Number.isFinite(received) ? received : undefined
                }
              ]
            })
          )
        ),
      deleteBatch: (receiptHandles) =>
        send(() =>
          sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: receiptHandles.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle }))
            })
          )
        ).pipe(
          Effect.map((response) => ({
            deleted: response.Successful?.length ?? 0,
            failures: (response.Failed ?? []).map((f) => `${f.Code}: ${f.Message}`)
          }))
        )
    })
  }

  /** The queue of the settings, with a client of its own for the life of the layer. */
  static readonly layer = (settings: SqsSettings): Layer.Layer<SqsQueue> =>
    Layer.effect(
      SqsQueue,
      Effect.acquireRelease(
        Effect.sync(() => makeSqsClient(settings)),
        (client) => Effect.sync(() => client.destroy())
      ).pipe(Effect.map((client) => SqsQueue.fromClient(client, settings.queueUrl)))
    )
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
