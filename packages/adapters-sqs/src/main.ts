/**
 * The consumer process (`optimizer-consume`, `npx optimizer consume`). SIGTERM/SIGINT interrupt it:
 * it stops receiving, commits and deletes what it has in hand, and exits 0 — a stop, not a failure.
 * A bad setting or an unreachable queue exits 1 with the reason on stderr.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { runConsumer } from "./RunConsumer.ts"

NodeRuntime.runMain(
  runConsumer.pipe(
    Effect.catch((e) =>
      Effect.sync(() => {
        process.stderr.write(`error: ${(e as { message?: string }).message ?? String(e)}\n`)
        process.exitCode = 1
      })
    )
  ),
  {
    disableErrorReporting: true,
    teardown: (exit, onExit) =>
      onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? (process.exitCode === 1 ? 1 : 0) : 1)
  }
)
