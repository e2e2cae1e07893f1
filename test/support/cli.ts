/**
 * `npx optimizer …` as a shell runs it: the real CLI process (bin/optimizer.js) with only the given
 * settings, its exit code, stdout and stderr — on a pipe, or under a pseudo-terminal (`script`
 * from util-linux) to see what an operator's terminal shows.
 *
 *   const run = await runCli(["lists", "counts", "--json"], { env: { DATABASE_URL: db.url } })
 *   expect(run.code).toBe(0); JSON.parse(run.stdout)
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

export const CLI_BIN = fileURLToPath(new URL("../../packages/adapters-cli/bin/optimizer.js", import.meta.url))

export interface CliRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface CliOptions {
  /** Settings on top of PATH and LOG_LEVEL=Warn; nothing else of the test's environment leaks in. */
  readonly env?: Record<string, string>
  /** Working directory (the CLI reads ./.env and keeps the embedded server's data there). */
  readonly cwd?: string
  readonly timeoutMs?: number
}

const envOf = (options: CliOptions): Record<string, string> => ({
  PATH: process.env.PATH ?? "",
  LOG_LEVEL: "Warn",
  ...options.env
})

const exitCode = (error: (Error & { code?: unknown }) | null): number =>
  error === null ? 0 : typeof error.code === "number" ? error.code : 1

/** Runs `optimizer <args>` with stdout and stderr on pipes. */
export const runCli = (args: ReadonlyArray<string>, options: CliOptions = {}): Promise<CliRun> =>
  new Promise((resolve) =>
    execFile(
      process.execPath,
      [CLI_BIN, ...args],
      {
        env: envOf(options),
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd })
      },
      (error, stdout, stderr) => resolve({ code: exitCode(error), stdout, stderr })
    )
  )

/** `runCli`, then its stdout parsed; fails the test with stderr when the command failed. */
export const runCliJson = async <A = any>(args: ReadonlyArray<string>, options: CliOptions = {}): Promise<A> => {
  const run = await runCli(args, options)
  if (run.code !== 0) throw new Error(`optimizer ${args.join(" ")} exited ${run.code}: ${run.stderr}`)
  return JSON.parse(run.stdout) as A
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/**
 * Runs `optimizer <args>` under a pseudo-terminal (`script -qfec`): stdin, stdout and stderr are
 * the terminal, as in an operator's shell. `output` is what the terminal received (both streams).
 */
export const runCliInTerminal = (
  args: ReadonlyArray<string>,
  options: CliOptions = {}
): Promise<{ readonly code: number; readonly output: string }> =>
  new Promise((resolve) =>
    execFile(
      "script",
      ["-qfec", [process.execPath, CLI_BIN, ...args].map(shellQuote).join(" "), "/dev/null"],
      {
        env: { ...envOf(options), TERM: "xterm" },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd })
      },
      (error, stdout) => resolve({ code: exitCode(error), output: stdout })
    )
  )
