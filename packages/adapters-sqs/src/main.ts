import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { runConsumer } from "./Consumer.ts"

NodeRuntime.runMain(
  runConsumer.pipe(
    Effect.catch((e) =>
      Effect.sync(() => {
        process.stderr.write(`error: ${(e as { message?: string }).message ?? String(e)}\n`)
        process.exitCode = 1
      })
    )
  ),
  { disableErrorReporting: true }
)
