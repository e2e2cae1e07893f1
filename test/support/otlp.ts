/**
 * An OTLP/HTTP trace receiver on loopback (what a collector is to the processes): a plain node HTTP
 * server decoding the JSON protocol of `POST /v1/traces`, keeping every span with its service name.
 *
 *   const otlp = await startOtlpReceiver()
 *   // OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url
 *   otlp.spans.filter((s) => s.traceId === id)
 *   afterAll(() => otlp.close())
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export interface ReceivedSpan {
  readonly service: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
}

export interface OtlpReceiver {
  readonly url: string
  readonly spans: Array<ReceivedSpan>
  /** Requests that were not a valid OTLP/JSON trace export (should stay empty). */
  readonly rejected: Array<string>
  readonly close: () => Promise<void>
}

interface AnyValue {
  readonly stringValue?: string
  readonly intValue?: number | string
  readonly doubleValue?: number
  readonly boolValue?: boolean
}
interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}

const valueOf = (v: AnyValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue))

const attributesOf = (list: ReadonlyArray<KeyValue> | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, valueOf(kv.value)]))

export const startOtlpReceiver = async (): Promise<OtlpReceiver> => {
  const spans: Array<ReceivedSpan> = []
  const rejected: Array<string> = []
  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      if (req.method !== "POST" || req.url !== "/v1/traces" || !req.headers["content-type"]?.includes("json")) {
        rejected.push(`${req.method} ${req.url} ${req.headers["content-type"]}`)
        res.writeHead(404).end()
        return
      }
      try {
        const data = JSON.parse(body) as {
          resourceSpans: Array<{
            resource: { attributes: Array<KeyValue> }
            scopeSpans: Array<{
              spans: Array<{
                traceId: string
                spanId: string
                parentSpanId?: string
                name: string
                kind: number
                attributes?: Array<KeyValue>
              }>
            }>
          }>
        }
        for (const rs of data.resourceSpans) {
          const service = String(attributesOf(rs.resource.attributes)["service.name"])
          for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
              spans.push({
                service,
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId === "" ? undefined : s.parentSpanId,
                name: s.name,
                kind: s.kind,
                attributes: attributesOf(s.attributes)
              })
            }
          }
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      } catch (error) {
        rejected.push(`unparsable body: ${String(error)}`)
        res.writeHead(400).end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    rejected,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
