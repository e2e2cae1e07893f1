/**
 * MessageWhiz ("MMD") as the service adapters call (`docs/mmd.md`): the daily cost push to Voluum
 * (`MmdCosts.ts`). Days are UTC `YYYY-MM-DD`; without one, yesterday (UTC) as the original.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { AppConfig } from "../platform/Config.ts"
import type { ValidationError } from "../platform/Errors.ts"
import { VoluumClient, type VoluumError } from "../voluum/VoluumClient.ts"
import { MessageWhizClient, validDay, type MessageWhizError } from "./MessageWhizClient.ts"
import { pushCosts, type CostPushOptions, type CostPushResult } from "./MmdCosts.ts"

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
  }
>()("@optimizer/core/mmd/Mmd") {
  /** Needs `MessageWhizClient` and `VoluumClient`. */
  static readonly layerWithoutClients = Layer.effect(
    Mmd,
    Effect.gen(function* () {
      const settings = yield* AppConfig
      const messageWhiz = yield* MessageWhizClient
      const voluum = yield* VoluumClient
      const currency = settings.mmd.configured
        ? settings.mmd.value.costCurrency
        : settings.voluum.configured
          ? settings.voluum.value.costCurrency
          : "USD"
      const costs = pushCosts(messageWhiz, voluum, currency)
      return Mmd.of({
        pushCosts: (day, options) => Effect.flatMap(dayOrYesterday(day), (d) => costs(d, options ?? {}))
      })
    })
  )
  static readonly layer = Mmd.layerWithoutClients.pipe(
    Layer.provide(Layer.mergeAll(MessageWhizClient.layer, VoluumClient.layer))
  )
}
