/**
 * Starts a job worker in a process of its own (`workerProcess.ts`) with exactly `env` (plus PATH),
 * resolving once it printed "ready" — for tests that SIGKILL a worker mid-job. The caller kills what
 * it started (`children` collects every process, for an `afterAll`).
 */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"

const WORKER = fileURLToPath(new URL("./workerProcess.ts", import.meta.url))

export const spawnWorker = async (
  env: Record<string, string | undefined>,
  children: Array<ChildProcess>
): Promise<ChildProcess> => {
  // The sources through the workspace's condition: a fresh clone has no dist.
  const child = spawn(process.execPath, ["--conditions=@optimizer/source", WORKER], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "inherit"]
  })
  children.push(child)
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve()
    })
    child.on("exit", (code) => reject(new Error(`worker exited with ${code} before it was ready`)))
  })
  return child
}
