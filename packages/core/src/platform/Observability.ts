/**
 * The process's Prometheus metrics (docs/observability.md lists each one with its labels). They are
 * Effect `Metric`s in the process-wide default registry, so any code — an Effect or a plain callback
 * on the request path — updates them synchronously through the helpers below, and `renderMetrics`
 * prints them in Prometheus's text format for `GET /metrics` (the HTTP process) or the small metrics
 * server of the other processes (`METRICS_PORT`, see `serveMetrics`).
 *
 * Labels are closed sets chosen by the code: a route pattern, a queue, a client, an outcome. Never a
 * raw path, a phone number, a key or a file name: a label value comes from `label`, which refuses
 * anything that is not a short identifier.
 *
 * Values that live in the database (jobs waiting, list sizes, connections) are read when the
 * metrics are rendered, at most once per `SAMPLE_EVERY_MS` (see `sampleDatabase`).
 */
import { createServer, type Server } from "node:http"
import { Context, Effect, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"

/** The default registry's context: metrics updated from plain code land where `renderMetrics` reads. */
const registry = Context.empty() as Context.Context<never>

const SAFE_LABEL = /^[A-Za-z0-9_:/.{}*-]{1,120}$/

/** A label value the code chose; anything else (user input that slipped through) becomes "other". */
export const label = (value: string): string => (SAFE_LABEL.test(value) && !/\d{6,}/.test(value) ? value : "other")

/** Seconds, for latency histograms: 1 ms to 60 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** Seconds, for jobs: 0.1 s to 6 h. */
const JOB_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600]
/** Rows of one run: 1 to 100 million. */
const ROW_BUCKETS = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]

/** One metric and its series per label values, each series made once (the request path asks per request). */
class Family<M extends Metric.Metric<any, any>> {
  private readonly series = new Map<string, M>()
  readonly metric: M
  readonly labels: ReadonlyArray<string>
  constructor(metric: M, labels: ReadonlyArray<string>) {
    this.metric = metric
    this.labels = labels
  }
  of(values: ReadonlyArray<string>): M {
    const key = values.join("\u0000")
    let m = this.series.get(key)
    if (m === undefined) {
      const attributes: Record<string, string> = {}
      this.labels.forEach((name, i) => (attributes[name] = label(values[i] ?? "")))
      m = Metric.withAttributes(this.metric, attributes) as M
      this.series.set(key, m)
    }
    return m
  }
  inc(values: ReadonlyArray<string>, by = 1): void {
    this.of(values).updateUnsafe(by, registry)
  }
  /** A histogram's observation, or a gauge's new value. */
  set(values: ReadonlyArray<string>, value: number): void {
    this.of(values).updateUnsafe(value, registry)
  }
  /** A gauge moved by `delta`. */
  add(values: ReadonlyArray<string>, delta: number): void {
    this.of(values).modifyUnsafe(delta, registry)
  }
}

const counter = (name: string, description: string, labels: ReadonlyArray<string> = []) =>
  new Family(Metric.counter(name, { description, incremental: true }), labels)
const gauge = (name: string, description: string, labels: ReadonlyArray<string> = []) =>
  new Family(Metric.gauge(name, { description }), labels)
const histogram = (
  name: string,
  description: string,
  boundaries: ReadonlyArray<number>,
  labels: ReadonlyArray<string>
) => new Family(Metric.histogram(name, { description, boundaries }), labels)

/** Every metric the code exports, by name (the deploy manifests' test checks their names against this). */
export const metrics = {
  // -- HTTP ------------------------------------------------------------------------------------------
  httpRequests: counter(
    "optimizer_http_requests_total",
    "HTTP requests answered, by route pattern, method and status",
    ["route", "method", "status"]
  ),
  httpDuration: histogram(
    "optimizer_http_request_duration_seconds",
    "Time to answer an HTTP request (until the response starts), by route pattern and method",
    LATENCY_BUCKETS,
    ["route", "method"]
  ),
  // -- jobs ------------------------------------------------------------------------------------------
  jobsEnqueued: counter("optimizer_jobs_enqueued_total", "Jobs queued, by queue", ["queue"]),
  jobsStarted: counter("optimizer_jobs_started_total", "Job attempts started in this process, by queue", ["queue"]),
  jobsCompleted: counter("optimizer_jobs_completed_total", "Jobs completed in this process, by queue", ["queue"]),
  jobsRetried: counter("optimizer_jobs_retried_total", "Job attempts that failed and will be retried, by queue", [
    "queue"
  ]),
  jobsFailed: counter("optimizer_jobs_failed_total", "Jobs failed for good (no retry left), by queue", ["queue"]),
  jobsRunning: gauge("optimizer_jobs_running", "Jobs running in this process, by queue", ["queue"]),
  jobDuration: histogram(
    "optimizer_job_duration_seconds",
    "Duration of a job attempt, by queue and outcome (completed, retried, failed)",
    JOB_BUCKETS,
    ["queue", "outcome"]
  ),
  jobsInState: gauge(
    "optimizer_jobs",
    "Jobs in the database by queue and state (queued, running), all processes together",
    ["queue", "state"]
  ),
  jobOldestQueuedAge: gauge(
    "optimizer_job_oldest_queued_age_seconds",
    "Age of the oldest queued job, by queue (0 when none waits)",
    ["queue"]
  ),
  // -- runs (cleaning, list import, HLR) ---------------------------------------------------------------
  rowsProcessed: counter(
    "optimizer_rows_processed_total",
    "Rows processed by cleaning runs, list imports and HLR runs, by operation",
    ["operation"]
  ),
  runRows: histogram("optimizer_run_rows", "Rows processed by one run, by operation", ROW_BUCKETS, ["operation"]),
  listRows: gauge(
    "optimizer_list_rows",
    "Rows of each list table (PostgreSQL's estimate from its statistics), by list",
    ["list"]
  ),
  // -- SQS live events -----------------------------------------------------------------------------------
  sqsReceived: counter("optimizer_sqs_messages_received_total", "SQS messages received"),
  sqsCommitted: counter("optimizer_sqs_messages_committed_total", "SQS messages committed to the database"),
  sqsFailed: counter(
    "optimizer_sqs_messages_failed_total",
    "SQS messages that could not be stored (left on the queue)"
  ),
  sqsDeadLettered: counter(
    "optimizer_sqs_messages_dead_lettered_total",
    "Failed SQS messages on their last receive before the queue moves them to its dead-letter queue"
  ),
  sqsDeleted: counter("optimizer_sqs_messages_deleted_total", "SQS messages deleted after their commit"),
  sqsCommitRetries: counter(
    "optimizer_sqs_commit_retries_total",
    "SQS batch commits retried because the database could not be used"
  ),
  sqsCommitDuration: histogram(
    "optimizer_sqs_batch_commit_duration_seconds",
    "Time to commit one batch of SQS messages",
    LATENCY_BUCKETS,
    []
  ),
  sqsOldestAge: gauge(
    "optimizer_sqs_oldest_message_age_seconds",
    "Age (from its SentTimestamp) of the oldest message of the last committed batch: the consumer's lag"
  ),
  // -- external APIs -------------------------------------------------------------------------------------
  externalRequests: counter(
    "optimizer_external_requests_total",
    "Attempts of calls to external APIs, by client and outcome (ok, client_error, rate_limited, server_error, timeout, network_error)",
    ["client", "outcome"]
  ),
  externalRetries: counter(
    "optimizer_external_retries_total",
    "External API attempts retried after a failure, by client",
    ["client"]
  ),
  externalDuration: histogram(
    "optimizer_external_request_duration_seconds",
    "Duration of one attempt of an external API call, by client",
    LATENCY_BUCKETS,
    ["client"]
  ),
  // -- database ------------------------------------------------------------------------------------------
  dbPoolConnections: gauge(
    "optimizer_db_pool_connections",
    "Connections of this process's bulk (COPY) pool, by state (in_use, idle)",
    ["pool", "state"]
  ),
  dbPoolWaiting: gauge("optimizer_db_pool_waiting", "Callers waiting for a connection of the pool", ["pool"]),
  dbConnections: gauge(
    "optimizer_db_connections",
    "The database's connections of this product (all processes), by state (active, idle, idle_in_transaction)",
    ["state"]
  ),
  // -- scheduler -----------------------------------------------------------------------------------------
  scheduledRuns: counter(
    "optimizer_scheduler_runs_total",
    "Scheduled operations run, by schedule and outcome (success, failure)",
    ["schedule", "outcome"]
  ),
  scheduleLastSuccess: gauge(
    "optimizer_scheduler_last_success_timestamp_seconds",
    "When each schedule last ran successfully (Unix time)",
    ["schedule"]
  ),
  scheduleNextRun: gauge(
    "optimizer_scheduler_next_run_timestamp_seconds",
    "When each schedule is due next (Unix time), as of its last run or registration",
    ["schedule"]
  ),
  // -- process -------------------------------------------------------------------------------------------
  processInfo: gauge("optimizer_process_info", "1, labelled with the process's role and version", ["role", "version"])
}

/** One answered request's two series, made once per (route, method, status). */
const httpSeries = new Map<
  string,
  { readonly count: Metric.Metric<number, unknown>; readonly latency: Metric.Metric<number, unknown> }
>()

/**
 * Counts an answered HTTP request and records its latency: the request path's fast path (one map
 * lookup, two updates, no allocation once the series exist).
 */
export const observeHttpRequest = (route: string, method: string, status: number, seconds: number): void => {
  const key = `${method} ${status} ${route}`
  let series = httpSeries.get(key)
  if (series === undefined) {
    series = {
      count: metrics.httpRequests.of([route, method, String(status)]),
      latency: metrics.httpDuration.of([route, method])
    }
    httpSeries.set(key, series)
  }
  series.count.updateUnsafe(1, registry)
  series.latency.updateUnsafe(seconds, registry)
}

/** The names every exposition line may start with (histograms add `_bucket`, `_sum`, `_count`). */
export const exportedMetricNames = (): ReadonlyArray<string> =>
  Object.values(metrics).flatMap((f) => {
    const name = f.metric.id
    return f.metric.type === "Histogram" ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name]
  })

/** Seconds elapsed since `startedMs` (a `performance.now()` reading). */
export const secondsSince = (startedMs: number): number => (performance.now() - startedMs) / 1000

/** A database read whose results become gauges; run when metrics are rendered, at most every `SAMPLE_EVERY_MS`. */
export type Sampler = () => Promise<void>

const SAMPLE_EVERY_MS = 5_000
const SAMPLE_TIMEOUT_MS = 2_000
const samplers = new Set<Sampler>()
let lastSample = 0
let sampling: Promise<void> | undefined

/** Adds a sampler for this process; the returned function removes it (when its pool closes). */
export const addSampler = (sampler: Sampler): (() => void) => {
  samplers.add(sampler)
  return () => void samplers.delete(sampler)
}

const sampleAll = (): Promise<void> => {
  if (sampling !== undefined) return sampling
  if (Date.now() - lastSample < SAMPLE_EVERY_MS) return Promise.resolve()
  // A database that does not answer must not hold the scrape: after SAMPLE_TIMEOUT_MS the gauges
  // keep their last values (the queries finish or fail in the background).
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, SAMPLE_TIMEOUT_MS)
  })
  sampling = Promise.race([Promise.allSettled([...samplers].map((s) => s())), timeout])
    .then(() => clearTimeout(timer))
    .finally(() => {
      lastSample = Date.now()
      sampling = undefined
    })
  return sampling
}

/** The Prometheus text exposition of every metric of this process (samplers run first). */
export const renderMetrics = async (): Promise<string> => {
  await sampleAll()
  return PrometheusMetrics.formatUnsafe(registry)
}

/** Forces the next `renderMetrics` to sample again (tests). */
export const resetSampling = () => {
  lastSample = 0
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/**
 * A small HTTP server answering `GET /metrics` (and `/health`): the worker's, scheduler's and
 * consumer's metrics port. Closed with the scope.
 */
export const serveMetrics = (options: {
  readonly port: number
  readonly host: string
}): Effect.Effect<{ readonly port: number }, Error, import("effect").Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ server: Server; port: number }, Error>((resume) => {
      const server = createServer((req, res) => {
        if (req.method === "GET" && req.url?.split("?")[0] === "/metrics") {
          renderMetrics().then(
            (body) => {
              res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE })
              res.end(body)
            },
            (error) => {
              res.writeHead(500, { "content-type": "text/plain" })
              res.end(`could not render the metrics: ${String(error)}\n`)
            }
          )
          return
        }
        if (req.method === "GET" && req.url === "/health") {
          res.writeHead(200, { "content-type": "application/json" })
          res.end('{"status":"ok"}')
          return
        }
        res.writeHead(404, { "content-type": "text/plain" })
        res.end("not found: GET /metrics\n")
      })
      server.once("error", (e) =>
        resume(Effect.fail(new Error(`could not serve metrics on port ${options.port}: ${e.message}`)))
      )
      server.listen(options.port, options.host, () => {
        const address = server.address()
        resume(
          Effect.succeed({
            server,
            port: typeof address === "object" && address !== null ? address.port : options.port
          })
        )
      })
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map(({ port }) => ({ port })))

/**
 * A process's metrics port: `optimizer_process_info` set, and when `METRICS_PORT` is set (and
 * metrics are enabled) `GET /metrics` served on it for the scope. Returns the bound port, if any.
 */
export const processMetrics = (
  observability: {
    readonly metricsEnabled: boolean
    readonly metricsPort: number | undefined
    readonly metricsHost: string
  },
  role: string,
  version: string
): Effect.Effect<number | undefined, Error, import("effect").Scope.Scope> =>
  Effect.gen(function* () {
    metrics.processInfo.set([role, version], 1)
    if (!observability.metricsEnabled || observability.metricsPort === undefined) return undefined
    const { port } = yield* serveMetrics({ port: observability.metricsPort, host: observability.metricsHost })
    yield* Effect.logInfo(`metrics served on http://${observability.metricsHost}:${port}/metrics`)
    return port
  })

/** A finished run of `operation` (cleaning, import, hlr) that processed `rows` rows. */
export const recordRun = (operation: "cleaning" | "import" | "hlr", rows: number): void => {
  if (!Number.isFinite(rows) || rows < 0) return
  metrics.rowsProcessed.inc([operation], rows)
  metrics.runRows.set([operation], rows)
}
