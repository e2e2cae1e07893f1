/**
 * Logs: JSON lines in production, logfmt-style lines in a terminal (`LOG_FORMAT=auto` picks by
 * whether stderr is a TTY). Logs go to stderr so that CLI output on stdout stays machine-readable.
 * Every line passes through `maskPhones`: phone numbers never reach a log in clear.
 */
import { Layer, Logger, References } from "effect"
import type { AppSettings } from "./Config.ts"

/** `447700900123` → `4477****0123`; keeps enough to correlate, not enough to dial. */
export const maskPhone = (phone: string): string => {
  const digits = phone.replace(/\D/g, "")
  if (digits.length < 8) return "****"
  return `${digits.slice(0, 4)}****${digits.slice(-4)}`
}

// A run of 8–15 digits, optionally with a leading + or 00 and single spaces/dashes inside, not part of a longer
// token (uuid hex runs and timestamps are bounded by letters, ':' or '-' digit groups shorter than 8).
const PHONE_LIKE = /(?<![\w.-])\+?(?:\d[ -]?){7,14}\d(?![\w.])/g

/** Masks everything in a log line that looks like a phone number. */
export const maskPhones = (line: string): string => line.replace(PHONE_LIKE, (m) => maskPhone(m))

const write = (line: string) => {
  process.stderr.write(maskPhones(line) + "\n")
}

export const jsonLogger = Logger.map(Logger.formatJson, write)
export const prettyLogger = Logger.map(Logger.formatLogFmt, write)

/** The process's loggers and minimum level from the settings. */
export const loggingLayer = (settings: Pick<AppSettings, "logFormat" | "logLevel">) => {
  const pretty = settings.logFormat === "pretty" || (settings.logFormat === "auto" && process.stderr.isTTY === true)
  return Layer.mergeAll(
    Logger.layer([pretty ? prettyLogger : jsonLogger]),
    Layer.succeed(References.MinimumLogLevel, settings.logLevel)
  )
}
