/**
 * The long-running processes: `start` (the quick start: migrate + HTTP + worker + scheduler in one
 * process, on the embedded PostgreSQL when nothing is configured) and `serve` (HTTP only).
 * SIGTERM/SIGINT interrupt the command: the server stops accepting, drains, and every resource
 * is released before exit.
 */
import { Console, Effect, Exit, Option, Redacted, Scope } from "effect"
import { Command, Flag } from "effect/cli"
import {
  ApiKeys,
  makeRuntime,
  processMetrics,
  tracingEnabled,
  runWorkers,
  Scheduler,
  type AppRuntime,
  type AppSettings,
  type ProcessRole
} from "@optimizer/core"
import { startHttpServer } from "@optimizer/adapters-http"
import { runMigrations } from "./migrate.ts"
import { isHttpWorker, superviseHttpWorkers } from "../httpWorkers.ts"
import { settingsWithDatabase } from "../runtime.ts"
import { VERSION } from "../version.ts"

/** More HTTP processes than this is a typo, not a deployment. */
const MAX_HTTP_WORKERS = 64

/** A runtime holding every core service for the life of the scope. */
const scopedRuntime = (settings: AppSettings, role: ProcessRole) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const runtime = makeRuntime(settings, { role })
      // Build the layers now, so a bad setting or an unreachable database fails start-up, not the first request.
      yield* Effect.tryPromise({ try: () => runtime.runPromise(Effect.void), catch: (cause) => cause })
      return runtime
    }),
    (runtime) => Effect.promise(() => runtime.dispose())
  )

const httpServer = (runtime: AppRuntime, settings: AppSettings) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        startHttpServer(runtime, {
          port: settings.port,
          corsOrigins: settings.corsOrigins,
          version: VERSION,
          log: httpLogOptions(settings),
          http: settings.http,
          metrics: !settings.observability.metricsEnabled
            ? "off"
            : settings.observability.metricsPort !== undefined && !isHttpWorker()
              ? "elsewhere"
              : "here",
          tracing: tracingEnabled(settings)
        }),
      catch: (cause) =>
        new Error(`could not listen on port ${settings.port}: ${(cause as Error)?.message ?? String(cause)}`)
    }),
    (server) =>
      Effect.gen(function* () {
        yield* Effect.logInfo("HTTP server stopping: draining in-flight requests")
        yield* Effect.promise(() => server.close())
      })
  )

const httpLogOptions = (settings: AppSettings) => ({
  pretty: settings.logFormat === "pretty" || (settings.logFormat === "auto" && process.stderr.isTTY === true),
  level: settings.logLevel
})

/** Registers every job handler on the runtime; they stop (and hand back unfinished jobs) when the scope closes. */
const workers = (runtime: AppRuntime) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const scope = await runtime.runPromise(Scope.make())
        const queues = await runtime.runPromise(runWorkers().pipe(Scope.provide(scope)))
        return { scope, queues }
      },
      catch: (cause) => new Error(`could not start the worker: ${(cause as Error)?.message ?? String(cause)}`)
    }),
    ({ scope }) => Effect.promise(() => runtime.runPromise(Scope.close(scope, Exit.void)))
  ).pipe(Effect.map(({ queues }) => queues))

/** Registers the cron schedules and runs their jobs here; any number of processes may do so, each tick runs once. */
const schedules = (runtime: AppRuntime) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const scope = await runtime.runPromise(Scope.make())
        const definitions = await runtime.runPromise(Scheduler.use((s) => s.start).pipe(Scope.provide(scope)))
        return { scope, definitions }
      },
      catch: (cause) => new Error(`could not start the scheduler: ${(cause as Error)?.message ?? String(cause)}`)
    }),
    ({ scope }) => Effect.promise(() => runtime.runPromise(Scope.close(scope, Exit.void)))
  ).pipe(Effect.map(({ definitions }) => definitions))

export const startCommand = Command.make("start", {}, () =>
  Effect.scoped(
    Effect.gen(function* () {
      const settings = yield* settingsWithDatabase
      const migration = yield* runMigrations(Redacted.value(settings.database!.url))
      if (migration.applied.length > 0) yield* Console.error(`applied migrations: ${migration.applied.join(", ")}`)
      const runtime = yield* scopedRuntime(settings, "all")
      yield* processMetrics(settings.observability, "all", VERSION)
      const bootstrap = yield* Effect.tryPromise(() => runtime.runPromise(ApiKeys.use((k) => k.ensureBootstrapAdmin)))
      if (Option.isSome(bootstrap)) {
        yield* Console.log(
          [
            "",
            "No API key existed, so an admin key was created. It is shown only now — store it:",
            "",
            `  ${bootstrap.value.key}`,
            "",
            "Use it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'; create more with 'npx optimizer keys create --role viewer'.",
            ""
          ].join("\n")
        )
      }
      const queues = yield* workers(runtime)
      const definitions = yield* schedules(runtime)
      const server = yield* httpServer(runtime, settings)
      yield* Console.log(`optimizer ${VERSION} listening on ${server.url} (docs: ${server.url}/docs)`)
      yield* Console.error(
        `worker: ${queues.length} job queues; scheduler: ${definitions.length === 0 ? "no schedule (Voluum/MessageWhiz not configured)" : definitions.map((d) => d.name).join(", ")}`
      )
      return yield* Effect.never
    })
  )
).pipe(Command.withDescription("Quick start: migrate, then serve HTTP with the worker and scheduler in one process"))

export const serveCommand = Command.make(
  "serve",
  {
    migrate: Flag.Boolean("migrate").pipe(
      Flag.withDefault(false),
      Flag.withDescription("apply pending migrations before serving")
    ),
    workers: Flag.Int("workers").pipe(
      Flag.withDefault(1),
      Flag.withDescription(
        "HTTP processes sharing the port (node:cluster); one process uses one core, so up to one per core"
      )
    )
  },
  ({ migrate, workers }) =>
    Effect.scoped(
      Effect.gen(function* () {
        if (!Number.isInteger(workers) || workers < 1 || workers > MAX_HTTP_WORKERS) {
          return yield* Effect.fail(
            new Error(`--workers must be a whole number from 1 to ${MAX_HTTP_WORKERS}, got ${workers}`)
          )
        }
        const settings = yield* settingsWithDatabase
        // A worker is this command started again by the primary, which has already migrated.
        if (migrate && !isHttpWorker()) yield* runMigrations(Redacted.value(settings.database!.url))
        if (workers > 1 && !isHttpWorker()) return yield* superviseHttpWorkers(workers)
        const runtime = yield* scopedRuntime(settings, "api")
        // Under --workers N each process would need a port of its own: the metrics stay on the API port.
        if (!isHttpWorker()) yield* processMetrics(settings.observability, "api", VERSION)
        else yield* processMetrics({ ...settings.observability, metricsPort: undefined }, "api", VERSION)
        const server = yield* httpServer(runtime, settings)
        yield* Console.log(
          `optimizer ${VERSION} listening on ${server.url}${isHttpWorker() ? ` (HTTP worker, pid ${process.pid})` : ""}`
        )
        return yield* Effect.never
      })
    )
).pipe(Command.withDescription("Serve the HTTP API (stateless; run as many as you like, or --workers N)"))

export const workerCommand = Command.make("worker", {}, () =>
  Effect.scoped(
    Effect.gen(function* () {
      const settings = yield* settingsWithDatabase
      const runtime = yield* scopedRuntime(settings, "worker")
      yield* processMetrics(settings.observability, "worker", VERSION)
      const queues = yield* workers(runtime)
      yield* Console.error(
        `optimizer ${VERSION} worker running: ${queues.length === 0 ? "no job queues" : queues.join(", ")}`
      )
      return yield* Effect.never
    })
  )
).pipe(
  Command.withDescription(
    "Run durable jobs (cleaning, HLR, encryption files, exports, Voluum syncs, smart cleaning, REG search) and the Ongage CSV drip; run as many as you like"
  )
)

export const schedulerCommand = Command.make("scheduler", {}, () =>
  Effect.scoped(
    Effect.gen(function* () {
      const settings = yield* settingsWithDatabase
      const runtime = yield* scopedRuntime(settings, "scheduler")
      yield* processMetrics(settings.observability, "scheduler", VERSION)
      const definitions = yield* schedules(runtime)
      yield* Console.error(
        `optimizer ${VERSION} scheduler running (one active across all scheduler processes): ${
          definitions.length > 0
            ? definitions.map((d) => `${d.name} "${d.cron}"`).join(", ")
            : settings.schedules.enabled
              ? "no schedule registered (Voluum and MessageWhiz are not configured)"
              : "disabled (SCHEDULER_ENABLED=false)"
        }`
      )
      return yield* Effect.never
    })
  )
).pipe(Command.withDescription("Run the cron schedules; any number may run, each tick fires once"))
