/**
 * The embedded PostgreSQL as a scoped Effect resource: started (or reused) when acquired, stopped
 * when its scope closes. `EmbeddedPostgres.layer(options)` provides it as a service;
 * `EmbeddedPostgres.start(options)` acquires it in the caller's scope.
 *
 *   const program = Effect.gen(function* () {
 *     const { url } = yield* EmbeddedPostgres
 *     // ... connect with Redacted.value(url)
 *   }).pipe(Effect.provide(EmbeddedPostgres.layer({ dataDir: ".optimizer/pg", port: 54320 })))
 */
import { Context, Effect, Layer, Redacted, Schema, type Scope } from "effect"
import { message } from "./common.ts"
import { startEmbeddedPostgres, type EmbeddedPostgresOptions } from "./start.ts"

/** The server could not be started; `message` says why and what to do. */
export class EmbeddedPostgresError extends Schema.TaggedError<EmbeddedPostgresError>()("EmbeddedPostgresError", {
  message: Schema.String
}) {}

/** A running server as the service offers it (the URL carries the password, hence Redacted). */
export interface EmbeddedPostgresServer {
  /** postgres://postgres:<password>@127.0.0.1:<port>/optimizer */
  readonly url: Redacted.Redacted<string>
  /** The data directory in use: the requested one, or its relocation under /var/tmp. */
  readonly dataDir: string
  /** The port the server listens on (the running server's when reused). */
  readonly port: number
  /** True when a server that another live process runs was reused: it is left running on release. */
  readonly reused: boolean
}

const start = (
  options: EmbeddedPostgresOptions
): Effect.Effect<EmbeddedPostgresServer, EmbeddedPostgresError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startEmbeddedPostgres(options),
      catch: (cause) => new EmbeddedPostgresError({ message: message(cause) })
    }),
    (server) => Effect.promise(() => server.stop())
  ).pipe(
    Effect.map((server): EmbeddedPostgresServer => ({
      url: Redacted.make(server.url),
      dataDir: server.dataDir,
      port: server.port,
      reused: server.reused
    }))
  )

export class EmbeddedPostgres extends Context.Service<EmbeddedPostgres, EmbeddedPostgresServer>()(
  "@optimizer/embedded-postgres/EmbeddedPostgres"
) {
  /** Starts (or reuses) the server in the current scope; stops it when the scope closes. */
  static readonly start = start
  /** The server as a service for the layer's lifetime. */
  static readonly layer = (options: EmbeddedPostgresOptions): Layer.Layer<EmbeddedPostgres, EmbeddedPostgresError> =>
    Layer.effect(EmbeddedPostgres, start(options))
}
