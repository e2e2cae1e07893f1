/**
 * Logs: JSON lines in production, logfmt-style lines in a terminal (`LOG_FORMAT=auto` picks by
 * whether stderr is a TTY). Logs go to stderr so that CLI output on stdout stays machine-readable.
 * Every line passes through `maskPhones`: phone numbers never reach a log in clear.
 */
import { Formatter, Layer, Logger, References } from "effect"
import type { AppSettings } from "./Config.ts"
import { traceIdsOf } from "./Tracing.ts"

/** `447700900123` → `4477****0123`; keeps enough to correlate, not enough to dial. */
export const maskPhone = (phone: string): string => {
  const digits = phone.replace(/\D/g, "")
  if (digits.length < 8) return "****"
  return `${digits.slice(0, 4)}****${digits.slice(-4)}`
}

// A run of 8–15 digits with up to two spaces or dashes between digits, optionally after a `+` or a
// bracketed country code (`(+44) 7400 …`), and not part of a longer token: not glued to a word or a
// dotted/dashed word before it (uuids, versions, hostnames), not followed by a letter or digit, nor by a
// dot and a digit (a decimal). A sentence's full stop or a leading minus still ends or starts a number.
// A calendar date (`2025-05-01`, the day of a sync or a snapshot) is not a number: it stays readable.
const PHONE_LIKE =
  /(?<![\w.]|[\w.]-)(?!(?:19|20)\d\d-[01]\d-[0-3]\d(?![\d -]*\d))(?:\(\+?\d{1,4}\)[ -]{0,2}|\+)?(?:\d[ -]{0,2}){7,14}\d(?!\w|\.\d)/g

/** Masks everything in a log line that looks like a phone number. */
export const maskPhones = (line: string): string => line.replace(PHONE_LIKE, (m) => maskPhone(m))

const write = (line: string) => {
  process.stderr.write(maskPhones(line) + "\n")
}

/** JSON lines; a line written inside a span carries its `trace_id` and `span_id`. */
export const jsonLogger = Logger.make((options) => {
  const entry = Logger.formatStructured.log(options)
  const ids = traceIdsOf(options.fiber.context)
  write(Formatter.formatJson(ids === undefined ? entry : { ...entry, ...ids }))
})
/** logfmt lines; inside a span, ending with `trace_id=… span_id=…`. */
export const prettyLogger = Logger.make((options) => {
  const line = Logger.formatLogFmt.log(options)
  const ids = traceIdsOf(options.fiber.context)
  write(ids === undefined ? line : `${line} trace_id=${ids.trace_id} span_id=${ids.span_id}`)
})

/** The process's loggers and minimum level from the settings. */
export const loggingLayer = (settings: Pick<AppSettings, "logFormat" | "logLevel">) => {
  const pretty = settings.logFormat === "pretty" || (settings.logFormat === "auto" && process.stderr.isTTY === true)
  return Layer.mergeAll(
    Logger.layer([pretty ? prettyLogger : jsonLogger]),
    Layer.succeed(References.MinimumLogLevel, settings.logLevel)
  )
}
