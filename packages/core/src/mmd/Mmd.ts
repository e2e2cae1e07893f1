/**
 * MessageWhiz ("MMD") as the service adapters call (`docs/mmd.md`): the daily cost push to Voluum
 * (`MmdCosts.ts`), the day snapshots and their files (`MmdSnapshots.ts`), the live stream
 * (`MmdLive.ts`). Days are UTC `YYYY-MM-DD`; without one, yesterday (UTC) as the original.
 */
import { Clock, Context, Effect, Layer, type Stream } from "effect"
import { SqlClient } from "effect/sql"
import { AppConfig } from "../platform/Config.ts"
import type { DatabaseError, NotFound, PayloadTooLarge, StorageError, ValidationError } from "../platform/Errors.ts"
import { FileStore } from "../platform/FileStore.ts"
import { VoluumClient, type VoluumError } from "../voluum/VoluumClient.ts"
import { MessageWhizClient, validDay, type MessageWhizError } from "./MessageWhizClient.ts"
import { pushCosts, type CostPushOptions, type CostPushResult } from "./MmdCosts.ts"
import { makeLive, type BroadcastEvent } from "./MmdLive.ts"
import { makeSnapshots, type BroadcastsFile, type SnapshotResult } from "./MmdSnapshots.ts"

export type MmdError = MessageWhizError | VoluumError | ValidationError

/** Yesterday, UTC, as `YYYY-MM-DD`. */
export const yesterdayUtc: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, (now) =>
  new Date(now - 86_400_000).toISOString().slice(0, 10)
)

/** The given day (checked) or yesterday (UTC). */
export const dayOrYesterday = (day: string | undefined, field = "date"): Effect.Effect<string, ValidationError> =>
  day === undefined || day.trim() === "" ? yesterdayUtc : validDay(day.trim(), field)

export class Mmd extends Context.Service<
  Mmd,
  {
    /** A day's MessageWhiz costs set as the Voluum campaigns' costs (default yesterday UTC). */
    readonly pushCosts: (day?: string, options?: CostPushOptions) => Effect.Effect<CostPushResult, MmdError>
    /**
     * A day's snapshot (default yesterday UTC): the file, its record and the stats; a re-run replaces.
     * `NotFound` when MessageWhiz has no sent broadcast that day.
     */
    readonly snapshot: (
      day?: string
    ) => Effect.Effect<SnapshotResult, MmdError | NotFound | StorageError | DatabaseError | PayloadTooLarge>
    /**
     * Today's (UTC) sent broadcasts as live events (`MmdLive.ts`), optionally filtered on the name.
     * Fails before the stream when MessageWhiz cannot list them; the stream itself does not fail.
     */
    readonly live: (search?: string) => Effect.Effect<Stream.Stream<BroadcastEvent>, MessageWhizError>
    /** The snapshot files, newest first. */
    readonly files: () => Effect.Effect<ReadonlyArray<BroadcastsFile>, DatabaseError>
    /** A snapshot file's name and bytes. */
    readonly download: (
      fileId: string
    ) => Effect.Effect<
      { readonly filename: string; readonly body: ReadableStream<Uint8Array> },
      ValidationError | NotFound | StorageError | DatabaseError
    >
  }
>()("@optimizer/core/mmd/Mmd") {
  /** Needs `MessageWhizClient`, `VoluumClient`, the database and the `FileStore`. */
  static readonly layerWithoutClients = Layer.effect(
    Mmd,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const messageWhiz = yield* MessageWhizClient
      const voluum = yield* VoluumClient
      const sql = yield* SqlClient.SqlClient
      const files = yield* FileStore
      const snapshots = makeSnapshots(sql, files, messageWhiz, voluum)
      const currency = settings.mmd.configured
        ? settings.mmd.value.costCurrency
        : settings.voluum.configured
          ? settings.voluum.value.costCurrency
          : "USD"
      const costs = pushCosts(messageWhiz, voluum, currency)
      return Mmd.of({
        pushCosts: (day, options) => Effect.flatMap(dayOrYesterday(day), (d) => costs(d, options ?? {})),
        snapshot: (day) => Effect.flatMap(dayOrYesterday(day, "previous_date"), snapshots.snapshot),
        live: makeLive(messageWhiz, voluum),
        files: snapshots.list,
        download: snapshots.download
      })
    })
  )
  static readonly layer = Mmd.layerWithoutClients.pipe(
    Layer.provide(Layer.mergeAll(MessageWhizClient.layer, VoluumClient.layer))
  )
}
