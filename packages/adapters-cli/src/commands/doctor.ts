/**
 * `npx optimizer doctor [--online] [--json]`: what is wrong with this machine's setup, before the
 * first failing call says it. Each check prints ok / warn / fail, what it found and the fix: Node
 * version, configuration (every variable parsed), database reachable and migrated to this version,
 * file store writable, each integration configured or not (with `--online`, reached with its
 * credentials), scheduler active, workers seen recently, queue depths. Exit 1 on any fail.
 */
import { Console, Effect, Redacted, Result } from "effect"
import { Command } from "effect/cli"
import { databaseChecks, parseSettings, processChecks, type AppSettings, type Check, type Env } from "@optimizer/core"
import {
  configurationCheck,
  describeUrl,
  fileStoreCheck,
  integrationChecks,
  nodeCheck,
  onlineChecks
} from "../doctor/checks.ts"
import { switchFlag } from "../fileCommands.ts"
import { printJson } from "../output.ts"

/**
 * The settings the other checks run on: the parsed ones, or — when some variables are malformed —
 * those parsed without them (their defaults), so one bad variable does not hide the other problems.
 */
const settingsForChecks = (env: Env, parsed: AppSettings | undefined): AppSettings | undefined => {
  if (parsed !== undefined) return parsed
  let rest: Record<string, string | undefined> = { ...env }
  for (let attempt = 0; attempt < 5; attempt++) {
    const again = parseSettings(rest)
    if (Result.isSuccess(again)) return again.success
    const bad = again.failure.variables
    if (bad.length === 0) return undefined
    rest = Object.fromEntries(Object.entries(rest).filter(([k]) => !bad.includes(k)))
  }
  return undefined
}

const runChecks = (online: boolean) =>
  Effect.gen(function* () {
    const env = process.env as Env
    const checks: Array<Check> = [nodeCheck()]
    const configuration = configurationCheck(env)
    checks.push(configuration.check)
    const settings = settingsForChecks(env, configuration.settings)
    if (settings === undefined) return checks

    let client: Awaited<ReturnType<typeof databaseChecks>>["client"]
    if (settings.database === undefined) {
      checks.push({
        check: "database",
        status: "warn",
        message: "no DATABASE_URL: the CLI and the quick start use the embedded PostgreSQL (./.optimizer/pg)",
        fix: "set DATABASE_URL (or DB_HOST, DB_NAME, DB_USER, DB_PASSWORD) for a real deployment"
      })
    } else {
      const facts = yield* Effect.promise(() =>
        databaseChecks(Redacted.value(settings.database!.url), describeUrl(settings.database!.url))
      )
      checks.push(...facts.checks)
      client = facts.client
    }
    checks.push(yield* fileStoreCheck(settings))
    checks.push(...integrationChecks(settings))
    if (online) checks.push(...(yield* onlineChecks(settings)))
    if (client !== undefined) {
      const c = client
      checks.push(
        ...(yield* Effect.tryPromise(() => processChecks(c, settings)).pipe(
          Effect.catch((cause) =>
            Effect.succeed([
              {
                check: "processes",
                status: "warn",
                message: `could not read the processes and queues: ${String((cause as Error)?.message ?? cause)}`,
                fix: "npx optimizer migrate, then run doctor again"
              } satisfies Check
            ])
          )
        ))
      )
    }
    yield* Effect.promise(() => client?.end() ?? Promise.resolve())
    return checks
  })

const LABEL: Record<Check["status"], string> = { ok: "ok  ", warn: "warn", fail: "FAIL" }

export const doctorCommand = Command.make(
  "doctor",
  {
    online: switchFlag("online", "also reach the configured integrations with their credentials"),
    json: switchFlag("json", "print the checks as JSON")
  },
  ({ online, json }) =>
    Effect.gen(function* () {
      const checks = yield* runChecks(online)
      const failed = checks.filter((c) => c.status === "fail")
      if (json) {
        yield* printJson({ ok: failed.length === 0, checks })
      } else {
        const width = Math.max(...checks.map((c) => c.check.length))
        for (const c of checks) {
          yield* Console.log(`${LABEL[c.status]}  ${c.check.padEnd(width)}  ${c.message}`)
          if (c.fix !== undefined) yield* Console.log(`${" ".repeat(width + 8)}fix: ${c.fix}`)
        }
        const warnings = checks.filter((c) => c.status === "warn").length
        yield* Console.log(
          `\n${failed.length === 0 ? "no problem found" : `${failed.length} problem${failed.length === 1 ? "" : "s"}`}` +
            `${warnings > 0 ? `, ${warnings} warning${warnings === 1 ? "" : "s"}` : ""}`
        )
      }
      // Exit 1 on any fail: the message is the list above.
      if (failed.length > 0) process.exitCode = 1
    })
).pipe(
  Command.withDescription(
    "Check this machine's setup: Node, configuration, database and migrations, file store, integrations (--online: reached), scheduler, workers, queues"
  )
)
