// Runs fauxqs on FAUXQS_PORT [4566] with the queue FAUXQS_QUEUE [live-events] and its dead-letter
// queue (<name>-dlq, RedrivePolicy maxReceiveCount 5, as docs/deployment.md sets SQS up) and the
// bucket FAUXQS_BUCKET [optimizer-files], prints the queues' URLs, and stops cleanly (exit 0) on
// SIGTERM/SIGINT.
import { startFauxqs } from "fauxqs"

const region = process.env.AWS_REGION ?? "us-east-1"
const name = process.env.FAUXQS_QUEUE ?? "live-events"
const server = await startFauxqs({
  port: Number(process.env.FAUXQS_PORT ?? 4566),
  logger: false,
  defaultRegion: region
})
const dlq = server.createQueue(`${name}-dlq`, { region })
const queue = server.createQueue(name, {
  region,
  attributes: {
    VisibilityTimeout: "60",
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.queueArn, maxReceiveCount: "5" })
  }
})
server.setup({ buckets: [process.env.FAUXQS_BUCKET ?? "optimizer-files"] })
console.log(JSON.stringify({ port: server.port, queueUrl: queue.queueUrl, deadLetterQueueUrl: dlq.queueUrl }))
const stop = () => server.stop().finally(() => process.exit(0))
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
