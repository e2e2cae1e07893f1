/**
 * A worker in a process of its own (`node test/support/workerProcess.ts`, settings from the
 * environment: DATABASE_URL, STORAGE_DIR, …), for tests that SIGKILL a worker mid-job. Prints
 * "ready" once its job handlers are registered.
 */
import { startTestWorker } from "./worker.ts"

await startTestWorker(process.env)
process.stdout.write("ready\n")
