/**
 * `npx optimizer <command>`: the operator's entry point. Prints data on stdout (JSON with
 * `--json`), logs and errors on stderr; exits 1 when a command fails, 2 on a usage error.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Option, Result } from "effect"
import { loggingLayer, parseSettings } from "@optimizer/core"
import { Command } from "effect/cli"
import { existsSync } from "node:fs"
import { rootCommand, VERSION } from "./cli.ts"

// Operators keep settings in ./.env (see .env.example); variables already in the environment win.
if (existsSync(".env")) process.loadEnvFile(".env")

// The command's own logs (start-up, shutdown) use the product's masked logger; a bad setting is
// reported by the command itself, so fall back to defaults here.
const parsed = parseSettings(process.env)
const logging = loggingLayer(Result.isSuccess(parsed) ? parsed.success : { logFormat: "auto", logLevel: "Info" })

const program = Command.run(rootCommand, { version: VERSION }).pipe(
  Effect.provide(NodeServices.layer),
  Effect.provide(logging),
  Effect.catchCause((cause) =>
    Effect.sync(() => {
      if (Cause.hasInterruptsOnly(cause)) return
      const error = Cause.findErrorOption(cause)
      const e = Option.getOrUndefined(error) as { _tag?: string; message?: string } | undefined
      if (e?._tag?.startsWith("Cli") || e?._tag === "ShowHelp") {
        process.exitCode = 2
        return
      }
      process.stderr.write(`error: ${e?.message ?? Cause.pretty(cause)}\n`)
      process.exitCode = 1
    })
  )
)

// SIGTERM/SIGINT interrupt the command, which then stops gracefully (drains, commits what it holds):
// that is a clean stop, exit 0 (the default would be 130).
NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) =>
    onExit(Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause) ? 1 : Number(process.exitCode ?? 0))
})
