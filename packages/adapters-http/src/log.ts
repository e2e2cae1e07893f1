/**
 * Request logs written straight to stderr as one JSON line (or logfmt in a terminal), masked like
 * every other log line. The per-request path avoids the Effect logger so that logging costs a
 * string build and a write, not a fiber.
 */
import { maskPhones } from "@optimizer/core"

let pretty = false
let minimumLevel = 2

const LEVELS: Record<string, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, fatal: 5, none: 6 }

export const configureHttpLog = (options: { pretty: boolean; level: string }) => {
  pretty = options.pretty
  minimumLevel = LEVELS[options.level.toLowerCase()] ?? 2
}

export const logLine = (
  level: "debug" | "info" | "warn" | "error",
  message: string,
  fields: Record<string, unknown>
) => {
  if ((LEVELS[level] ?? 2) < minimumLevel) return
  const line = pretty
    ? `${new Date().toISOString()} ${level.toUpperCase()} ${message} ${Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
        .join(" ")}`
    : JSON.stringify({ timestamp: new Date().toISOString(), level: level.toUpperCase(), message, ...fields })
  process.stderr.write(maskPhones(line) + "\n")
}
