/**
 * An S3 + SQS (+ SNS) emulator for tests: fauxqs on a free loopback port, spoken to over real HTTP
 * with the AWS SDK.
 *
 *   const aws = await startFauxqs()            // ~0.25 s in-process
 *   afterAll(() => aws.stop())
 *   const bucket = await aws.createBucket()
 *   const { queueUrl, deadLetterQueueUrl } = await aws.createQueueWithDeadLetter("jobs", { maxReceiveCount: 2 })
 *   const topicArn = await aws.createTopic()
 *   await aws.subscribeQueue(topicArn, queueArn, { raw: true })   // SNS → SQS fan-out, enveloped or raw
 *   new SQSClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials })
 *   new S3Client({ ..., forcePathStyle: true })   // fauxqs serves buckets by path only
 *
 * While it runs, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY hold dummy values (restored by `stop`),
 * so code that reads credentials from the standard AWS chain works unchanged.
 *
 * `separateProcess: true` runs the emulator in a child process. fauxqs keeps whole objects in
 * memory, so use it when a test measures this process's memory.
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3"
import { CreateTopicCommand, SNSClient, SubscribeCommand } from "@aws-sdk/client-sns"
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { once } from "node:events"
import { createInterface } from "node:readline"

export interface FauxqsOptions {
  /** Run the emulator in a child process (default: in this process). */
  readonly separateProcess?: boolean
  /** Region the clients sign for (default us-east-1). */
  readonly region?: string
}

export interface QueueAttributes {
  /** Default 30 (the SQS default). */
  readonly visibilityTimeoutSeconds?: number
  /** Any other SQS attribute, e.g. `{ ReceiveMessageWaitTimeSeconds: "1" }`. */
  readonly attributes?: Record<string, string>
}

export interface Queue {
  readonly queueUrl: string
  readonly queueArn: string
}

export interface QueueWithDeadLetter extends Queue {
  readonly deadLetterQueueUrl: string
  readonly deadLetterQueueArn: string
}

export interface Fauxqs {
  /** http://127.0.0.1:<port> — the endpoint for S3, SQS and SNS clients. */
  readonly endpoint: string
  readonly region: string
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** Creates a bucket (a unique name when none is given) and returns its name. */
  readonly createBucket: (name?: string) => Promise<string>
  /** Creates a queue (a unique name when none is given). */
  readonly createQueue: (name?: string, options?: QueueAttributes) => Promise<Queue>
  /**
   * Creates `<name>-dlq` and `<name>` whose RedrivePolicy moves a message to the dead-letter queue
   * after `maxReceiveCount` receives (default 3).
   */
  readonly createQueueWithDeadLetter: (
    name?: string,
    options?: QueueAttributes & { readonly maxReceiveCount?: number }
  ) => Promise<QueueWithDeadLetter>
  /** Creates an SNS topic (a unique name when none is given) and returns its ARN. */
  readonly createTopic: (name?: string) => Promise<string>
  /** Subscribes a queue to a topic: SNS envelopes in the body, or the bare message with `raw` (RawMessageDelivery). */
  readonly subscribeQueue: (topicArn: string, queueArn: string, options?: { readonly raw?: boolean }) => Promise<void>
  readonly stop: () => Promise<void>
}

const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" } as const

const uniqueName = (base: string) => `${base}-${randomBytes(4).toString("hex")}`

/** Starts fauxqs in a child process; resolves with its port once it listens. */
const startChild = async (): Promise<{ port: number; stop: () => Promise<void> }> => {
  const fauxqsUrl = import.meta.resolve("fauxqs")
  const script = [
    `const { startFauxqs } = await import(${JSON.stringify(fauxqsUrl)})`,
    `const server = await startFauxqs({ port: 0, logger: false })`,
    `console.log(JSON.stringify({ port: server.port }))`,
    // Ends with the parent: its end of stdin closes when it exits or calls stop().
    `process.stdin.on("close", () => server.stop().finally(() => process.exit(0)))`,
    `process.stdin.resume()`
  ].join("\n")
  const child = spawn(process.execPath, ["--input-type=module", "--no-warnings", "-e", script], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  const lines = createInterface({ input: child.stdout })
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`fauxqs exited with code ${code} before listening`)))
    child.once("error", reject)
    lines.once("line", (line) => resolve((JSON.parse(line) as { port: number }).port))
  })
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, "exit")
      child.stdin.end()
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(timer)
    }
  }
}

const startInProcess = async (): Promise<{ port: number; stop: () => Promise<void> }> => {
  const { startFauxqs: startEmulator } = await import("fauxqs")
  const server = await startEmulator({ port: 0, logger: false })
  return { port: server.port, stop: () => server.stop() }
}

export const startFauxqs = async (options: FauxqsOptions = {}): Promise<Fauxqs> => {
  const region = options.region ?? "us-east-1"
  const server = options.separateProcess === true ? await startChild() : await startInProcess()
  // fauxqs listens on every interface; the tests talk to it on loopback only.
  const endpoint = `http://127.0.0.1:${server.port}`

  const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY }
  process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId
  process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey

  const clientConfig = { endpoint, region, credentials: { ...CREDENTIALS } }
  const s3 = new S3Client({ ...clientConfig, forcePathStyle: true })
  const sqs = new SQSClient(clientConfig)
  const sns = new SNSClient(clientConfig)

  const createBucket = async (name = uniqueName("bucket")) => {
    await s3.send(new CreateBucketCommand({ Bucket: name }))
    return name
  }

  const createQueueWithAttributes = async (name: string, attributes: Record<string, string>): Promise<Queue> => {
    const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))
    const queueUrl = created.QueueUrl!
    const described = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] })
    )
    return { queueUrl, queueArn: described.Attributes!.QueueArn! }
  }

  const baseAttributes = (options: QueueAttributes | undefined): Record<string, string> => ({
    ...(options?.visibilityTimeoutSeconds === undefined
      ? {}
      : { VisibilityTimeout: String(options.visibilityTimeoutSeconds) }),
    ...options?.attributes
  })

  const createQueue = (name = uniqueName("queue"), options?: QueueAttributes) =>
    createQueueWithAttributes(name, baseAttributes(options))

  const createQueueWithDeadLetter = async (
    name = uniqueName("queue"),
    options?: QueueAttributes & { readonly maxReceiveCount?: number }
  ): Promise<QueueWithDeadLetter> => {
    const deadLetter = await createQueueWithAttributes(`${name}-dlq`, {})
    const queue = await createQueueWithAttributes(name, {
      ...baseAttributes(options),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: deadLetter.queueArn,
        maxReceiveCount: String(options?.maxReceiveCount ?? 3)
      })
    })
    return { ...queue, deadLetterQueueUrl: deadLetter.queueUrl, deadLetterQueueArn: deadLetter.queueArn }
  }

  const createTopic = async (name = uniqueName("topic")) =>
    (await sns.send(new CreateTopicCommand({ Name: name }))).TopicArn!

  const subscribeQueue = async (topicArn: string, queueArn: string, options?: { readonly raw?: boolean }) => {
    await sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: "sqs",
        Endpoint: queueArn,
        ...(options?.raw === true ? { Attributes: { RawMessageDelivery: "true" } } : {})
      })
    )
  }

  const restore = (name: "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY", value: string | undefined) => {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }

  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    s3.destroy()
    sqs.destroy()
    sns.destroy()
    restore("AWS_ACCESS_KEY_ID", savedEnv.id)
    restore("AWS_SECRET_ACCESS_KEY", savedEnv.secret)
    await server.stop()
  }

  return {
    endpoint,
    region,
    credentials: CREDENTIALS,
    createBucket,
    createQueue,
    createQueueWithDeadLetter,
    createTopic,
    subscribeQueue,
    stop
  }
}
