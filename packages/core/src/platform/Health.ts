/** Is the process able to serve? Today: does the database answer a ping within the time limit. */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

export class Health extends Context.Service<Health, { readonly databaseAnswers: Effect.Effect<boolean> }>()(
  "@optimizer/core/platform/Health"
) {
  static readonly layer = Layer.effect(
    Health,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const databaseAnswers = sql`SELECT 1`.pipe(
        Effect.timeout("2 seconds"),
        Effect.as(true),
        Effect.catchCause(() => Effect.succeed(false))
      )
      return Health.of({ databaseAnswers })
    })
  )
}
