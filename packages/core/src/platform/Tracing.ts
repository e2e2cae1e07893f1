/**
 * Traces (docs/observability.md). Every service method already runs in a span (`Effect.fn`); with
 * `OTEL_EXPORTER_OTLP_ENDPOINT` set, `tracingLayer` sends them to that collector over OTLP/HTTP
 * (JSON) under the process's service name (`optimizer-api`, `optimizer-worker`, …). Without it the
 * spans stay in memory and nothing is sent.
 *
 * A trace crosses processes in W3C `traceparent` form: from an HTTP client into the API (the
 * adapter reads the header), and from the request that enqueues a job into the job's span (the
 * enqueue stores it in the job's payload under `TRACE_KEY`; the worker continues it).
 */
import { Context, Effect, Layer, Option, Tracer } from "effect"
import { FetchHttpClient } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"
import type { AppSettings } from "./Config.ts"

export type ServiceRole = "api" | "worker" | "scheduler" | "all" | "consumer"

/** The trace's service name of a process role (OTEL_SERVICE_NAME replaces it). */
export const serviceNameOf = (role: ServiceRole): string =>
  role === "all" ? "optimizer" : role === "consumer" ? "optimizer-consumer" : `optimizer-${role}`

/** Whether spans are exported in a process of these settings. */
export const tracingEnabled = (settings: Pick<AppSettings, "observability">): boolean =>
  settings.observability?.otlpEndpoint !== undefined

/**
 * The OTLP/HTTP span exporter for the settings, or nothing. Spans are sent in batches (every 5 s,
 * or `OTEL_BSP_SCHEDULE_DELAY`-like `exportIntervalMs`) and flushed when the layer is released.
 */
export const tracingLayer = (
  settings: Pick<AppSettings, "observability">,
  role: ServiceRole,
  options: { readonly exportIntervalMs?: number; readonly version?: string } = {}
): Layer.Layer<never> => {
  const endpoint = settings.observability?.otlpEndpoint
  if (endpoint === undefined) return Layer.empty
  const base = endpoint.endsWith("/") ? endpoint.slice(0, -1) : endpoint
  return OtlpTracer.layer({
    url: `${base}/v1/traces`,
    resource: {
      serviceName: settings.observability.serviceName ?? serviceNameOf(role),
      ...(options.version !== undefined ? { serviceVersion: options.version } : {})
    },
    exportInterval: `${options.exportIntervalMs ?? 5000} millis`,
    shutdownTimeout: "3 seconds"
  }).pipe(
    Layer.provide(Layer.mergeAll(FetchHttpClient.layer, OtlpSerialization.layerJson))
  ) as unknown as Layer.Layer<never>
}

/** The key under which a job's payload carries the trace of the request that queued it. */
export const TRACE_KEY = "_trace"

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** `traceparent` of a span. */
export const traceparentOf = (span: Tracer.AnySpan): string =>
  `00-${span.traceId.padStart(32, "0")}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The span a W3C `traceparent` header names (a remote parent), or undefined when absent or malformed. */
export const parseTraceparent = (header: string | null | undefined): Tracer.ExternalSpan | undefined => {
  if (header === undefined || header === null) return undefined
  const match = TRACEPARENT.exec(header.trim().toLowerCase())
  if (match === null || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined
  return Tracer.externalSpan({
    traceId: match[1]!,
    spanId: match[2]!,
    sampled: (parseInt(match[3]!, 16) & 1) === 1
  })
}

/** The current span's `traceparent`, when the effect runs in a span. */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.map(
  Effect.option(Effect.currentParentSpan),
  (span) => (Option.isSome(span) ? traceparentOf(span.value) : undefined)
)

/** A job payload with the current trace added (nothing added outside a span). */
export const withTraceContext = (data: Record<string, unknown>): Effect.Effect<Record<string, unknown>> =>
  Effect.map(currentTraceparent, (traceparent) =>
    traceparent === undefined ? data : { ...data, [TRACE_KEY]: traceparent }
  )

/** A job payload without its trace context, and the span it names. */
export const takeTraceContext = (
  data: Record<string, unknown>
): { readonly data: Record<string, unknown>; readonly parent: Tracer.ExternalSpan | undefined } => {
  if (!(TRACE_KEY in data)) return { data, parent: undefined }
  const { [TRACE_KEY]: trace, ...rest } = data
  return { data: rest, parent: typeof trace === "string" ? parseTraceparent(trace) : undefined }
}

/** `trace_id` and `span_id` of the span a log line is written in (for the JSON and logfmt loggers). */
export const traceIdsOf = (context: Context.Context<never>): { trace_id: string; span_id: string } | undefined => {
  const span = Context.getOrUndefined(context, Tracer.ParentSpan)
  return span === undefined ? undefined : { trace_id: span.traceId, span_id: span.spanId }
}
