/** The command tree. Each domain adds its commands in `commands/<domain>.ts`. */
import { Command } from "effect/cli"
import { cleanCommand, filesCommand } from "./commands/cleaning.ts"
import { keysCommand } from "./commands/keys.ts"
import { listsCommand } from "./commands/lists.ts"
import { migrateCommand } from "./commands/migrate.ts"
import { jobsCommand } from "./commands/jobs.ts"
import { classifyCommand } from "./commands/classify.ts"
import { decryptCommand, encryptCommand } from "./commands/encryption.ts"
import { exportCommand } from "./commands/export.ts"
import { hlrCommand } from "./commands/hlr.ts"
import { schedulerCommand, serveCommand, startCommand, workerCommand } from "./commands/processes.ts"
import { consumeCommand } from "./commands/consume.ts"
import { runsCommand } from "./commands/runs.ts"
import { ongageJobsCommand } from "./commands/ongageJobs.ts"
import { regSearchCommand, smartCleaningCommand, voluumCommand } from "./commands/voluum.ts"
import { mmdCommand } from "./commands/mmd.ts"
import { findRecordsCommand, metricsCommand } from "./commands/records.ts"
import { encryptionFilesCommand } from "./commands/encryptionFiles.ts"
import { doctorCommand } from "./commands/doctor.ts"

export { VERSION } from "./version.ts"

export const rootCommand = Command.make("optimizer").pipe(
  Command.withDescription(
    "optimizer: phone lists, list cleaning, HLR, Voluum, MessageWhiz, Ongage, encryption and live events for SMS marketing"
  ),
  Command.withSubcommands([
    startCommand,
    serveCommand,
    workerCommand,
    schedulerCommand,
    consumeCommand,
    runsCommand,
    migrateCommand,
    doctorCommand,
    keysCommand,
    listsCommand,
    jobsCommand,
    cleanCommand,
    filesCommand,
    hlrCommand,
    encryptCommand,
    decryptCommand,
    encryptionFilesCommand,
    classifyCommand,
    exportCommand,
    voluumCommand,
    smartCleaningCommand,
    regSearchCommand,
    mmdCommand,
    ongageJobsCommand,
    metricsCommand,
    findRecordsCommand
  ])
)
