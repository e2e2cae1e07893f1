/** The command tree. Each domain adds its commands in `commands/<domain>.ts`. */
import { Command } from "effect/cli"
import { keysCommand } from "./commands/keys.ts"
import { migrateCommand } from "./commands/migrate.ts"
import { jobsCommand } from "./commands/jobs.ts"
import { schedulerCommand, serveCommand, startCommand, workerCommand } from "./commands/processes.ts"

export { VERSION } from "./version.ts"

export const rootCommand = Command.make("optimizer").pipe(
  Command.withDescription(
    "optimizer: phone lists, list cleaning, HLR, Voluum, MessageWhiz and Ongage for SMS marketing"
  ),
  Command.withSubcommands([
    startCommand,
    serveCommand,
    workerCommand,
    schedulerCommand,
    migrateCommand,
    keysCommand,
    jobsCommand
  ])
)
