/**
 * Every error core's services can fail with, as one union: the shared vocabulary
 * (platform/Errors.ts) and the domains' own. An adapter maps each tag once — the HTTP status table
 * (adapters-http/src/errors.ts) is a `Record<CoreErrorTag, ...>` — so a new error gets its mapping
 * there or that file does not compile.
 *
 * The union is kept complete by `UnlistedServiceErrors` below: it collects the error channel of
 * every member of every service in `AppServices` (their own signatures) and must be empty. A
 * service that starts failing with an error class not listed here fails the type-check of this
 * file, e.g. `Type 'Teapot' does not satisfy the constraint 'never'`; list it here, then give it
 * its status in the HTTP table.
 */
import type { Effect, Stream } from "effect"
import type { AppServices } from "./AppLayer.ts"
import type { DecryptionFailed, InvalidToken } from "./encryption/Encryption.ts"
import type { HlrBatchFailed } from "./hlr/HlrClient.ts"
import type { CommonError, Forbidden } from "./platform/Errors.ts"
import type { OperationUnavailable } from "./scheduler/ScheduledOperations.ts"
import type { SyncJobFailed } from "./voluum/VoluumJobs.ts"

export type CoreError =
  CommonError | Forbidden | InvalidToken | DecryptionFailed | SyncJobFailed | OperationUnavailable | HlrBatchFailed

export type CoreErrorTag = CoreError["_tag"]

/**
 * The error of a service member: an Effect's or a Stream's, or that of what a method returns. A
 * generic pass-through error (`<E>(stream: Stream<A, E>) => Effect<B, E | ...>`) infers as
 * `unknown`: it is the caller's, not core's, so it is left out.
 */
type MemberError<M> =
  M extends Effect.Effect<infer _A, infer E, infer _R>
    ? unknown extends E
      ? never
      : E
    : M extends Stream.Stream<infer _A, infer E, infer _R>
      ? unknown extends E
        ? never
        : E
      : M extends (...args: ReadonlyArray<never>) => infer Out
        ? MemberError<Out>
        : never

/** The errors of every member of a class-style service (`Context.Service<Self, Shape>()`), distributed over a union of services. */
export type ServiceError<S> = S extends { readonly Service: infer Shape }
  ? { [K in keyof Shape]-?: MemberError<Shape[K]> }[keyof Shape]
  : never

type MustBeNever<T extends never> = T

/** Errors some service can fail with that `CoreError` does not list: none, or this does not compile. */
export type UnlistedServiceErrors = MustBeNever<Exclude<ServiceError<AppServices>, CoreError>>
