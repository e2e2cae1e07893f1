/** The fauxqs test helper: buckets and queues over real HTTP, dead-lettering, both ways of running it. */
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startFauxqs, type Fauxqs } from "./fauxqs.ts"

describe.each([
  { mode: "in this process", separateProcess: false },
  { mode: "in a child process", separateProcess: true }
])("fauxqs $mode", ({ separateProcess }) => {
  let aws: Fauxqs
  let s3: S3Client
  let sqs: SQSClient
  const savedKeyId = process.env.AWS_ACCESS_KEY_ID

  beforeAll(async () => {
    aws = await startFauxqs({ separateProcess })
    s3 = new S3Client({
      endpoint: aws.endpoint,
      region: aws.region,
      credentials: aws.credentials,
      forcePathStyle: true
    })
    // No explicit credentials: the helper put dummy ones in the environment.
    sqs = new SQSClient({ endpoint: aws.endpoint, region: aws.region })
  })
  afterAll(async () => {
    s3.destroy()
    sqs.destroy()
    await aws.stop()
    expect(process.env.AWS_ACCESS_KEY_ID).toBe(savedKeyId)
  })

  it("listens on loopback and stores objects in a new bucket", async () => {
    expect(aws.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const bucket = await aws.createBucket()
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "a/b.txt", Body: "hello" }))
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a/b.txt" }))
    expect(await got.Body!.transformToString()).toBe("hello")
  })

  it("moves a message to the dead-letter queue after maxReceiveCount receives", async () => {
    const queue = await aws.createQueueWithDeadLetter(undefined, { maxReceiveCount: 2 })
    expect(queue.deadLetterQueueArn).toMatch(/^arn:aws:sqs:/)
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: "poison" }))
    const receive = (url: string) =>
      sqs.send(new ReceiveMessageCommand({ QueueUrl: url, VisibilityTimeout: 0, WaitTimeSeconds: 0 }))
    expect((await receive(queue.queueUrl)).Messages?.[0]?.Body).toBe("poison")
    expect((await receive(queue.queueUrl)).Messages?.[0]?.Body).toBe("poison")
    expect((await receive(queue.queueUrl)).Messages ?? []).toHaveLength(0)
    expect((await receive(queue.deadLetterQueueUrl)).Messages?.[0]?.Body).toBe("poison")
  })

  it("creates a plain queue with attributes", async () => {
    const queue = await aws.createQueue("plain-queue", { visibilityTimeoutSeconds: 5 })
    expect(queue.queueUrl).toContain("plain-queue")
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: "one" }))
    const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.queueUrl }))
    expect(first.Messages?.[0]?.Body).toBe("one")
    // Invisible for 5 s after a receive.
    const second = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.queueUrl, WaitTimeSeconds: 0 }))
    expect(second.Messages ?? []).toHaveLength(0)
  })
})
