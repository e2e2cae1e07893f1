/** Constants and small helpers that every part of the embedded PostgreSQL shares. */

/** Where progress lines go (never the password). */
export type Log = (line: string) => void

export const DATABASE = "optimizer"
export const SUPERUSER = "postgres"
export const HOST = "127.0.0.1"
export const START_TIMEOUT_MS = 60_000
export const STOP_TIMEOUT_MS = 30_000
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024

export const defaultLog = (line: string): void => {
  process.stderr.write(`[embedded-postgres] ${line}\n`)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Whether <promise> settled within <ms>; the timer is cleared either way (no handle left behind). */
export const settlesWithin = (promise: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    void promise.then(
      () => {
        clearTimeout(timer)
        resolve(true)
      },
      () => {
        clearTimeout(timer)
        resolve(true)
      }
    )
  })

export const errnoCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined

export const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** Who the server runs as: the current user, or (as root) the OS user `postgres`. */
export interface RunAs {
  readonly uid: number
  readonly gid: number
  readonly name: string
  readonly switchUser: boolean
}
