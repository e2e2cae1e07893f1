/**
 * Progress of long work (clean, list import, export, encryption files, HLR, job wait), on stderr:
 *
 * - on a terminal (`--progress auto`, the default, when stderr is a TTY and `--json` is not given):
 *   one line redrawn in place (`\r`) — a bar, count / total, rate and ETA;
 * - `--progress json`: one JSON line per update (`{"progress": label, "processed", "total", "rate",
 *   "eta_seconds"}`) for scripts;
 * - on a pipe, with `--json`, or `--progress none`: nothing (the command's answer is its one output).
 *
 * Every long command makes its progress here (`makeProgress` or `withProgress`), so they all look
 * and behave the same.
 */
import { createReadStream } from "node:fs"
import { Effect, type Scope } from "effect"
import { Flag } from "effect/cli"

export const PROGRESS_MODES = ["auto", "bar", "json", "none"] as const
export type ProgressMode = (typeof PROGRESS_MODES)[number]

export const progressFlag = Flag.Literals("progress", PROGRESS_MODES).pipe(
  Flag.withDefault("auto" as const),
  Flag.withDescription(
    "progress on stderr: auto (a bar on a terminal, none on a pipe or with --json), bar, json (JSON lines) or none"
  )
)

export interface Progress {
  /** `processed` so far, of `total` when known. */
  readonly update: (processed: number, total?: number | null) => void
  /** A line of its own (e.g. "waiting for a worker"), kept above the bar. */
  readonly note: (text: string) => void
  /** The last state drawn and the line ended; idempotent. */
  readonly finish: () => void
}

export interface ProgressOptions {
  readonly label: string
  /** How counts are shown: rows (default), bytes, or a plain word (e.g. "numbers"). */
  readonly unit?: string
  readonly mode: ProgressMode
  /** `--json` was given: `auto` then shows nothing. */
  readonly json?: boolean
  /** Where to draw (default process.stderr). */
  readonly stream?: NodeJS.WriteStream
}

/** What `auto` means here: a bar on a terminal, nothing otherwise (or with --json). */
export const resolveMode = (mode: ProgressMode, json: boolean, isTTY: boolean): "bar" | "json" | "none" =>
  mode === "auto" ? (json || !isTTY ? "none" : "bar") : mode

const REDRAW_MS = 100
const JSON_EVERY_MS = 1000
const BAR_WIDTH = 24

const formatCount = (n: number, unit: string): string => {
  if (unit !== "bytes") return Math.round(n).toLocaleString("en-US")
  if (n < 1024) return `${Math.round(n)} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`
}

export const formatDuration = (seconds: number): string => {
  if (!Number.isFinite(seconds) || seconds < 0) return "?"
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = String(s % 60).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`
}

/** The bar's line, without `\r`. Pure. */
export const renderBar = (
  label: string,
  unit: string,
  processed: number,
  total: number | null,
  rate: number,
  elapsedSeconds: number
): string => {
  const known = total !== null && total > 0
  const ratio = known ? Math.min(1, processed / total) : 0
  const filled = Math.round(ratio * BAR_WIDTH)
  const bar = known
    ? `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`
    : "[?]"
  const count = known
    ? `${formatCount(processed, unit)} / ${formatCount(total, unit)}${unit === "bytes" ? "" : ` ${unit}`}`
    : `${formatCount(processed, unit)}${unit === "bytes" ? "" : ` ${unit}`}`
  const rateText = `${formatCount(rate, unit)}${unit === "bytes" ? "" : ` ${unit}`}/s`
  const eta = known && rate > 0 ? formatDuration((total - processed) / rate) : "?"
  return `${label} ${bar} ${count}  ${rateText}  ETA ${eta}  elapsed ${formatDuration(elapsedSeconds)}`
}

export const makeProgress = (options: ProgressOptions): Progress => {
  const stream = options.stream ?? process.stderr
  const mode = resolveMode(options.mode, options.json === true, stream.isTTY === true)
  const unit = options.unit ?? "rows"
  if (mode === "none") return { update: () => undefined, note: () => undefined, finish: () => undefined }

  const started = Date.now()
  let processed = 0
  let total: number | null = null
  let lastDraw = 0
  let finished = false
  let drawn = false
  const rate = () => {
    const seconds = (Date.now() - started) / 1000
    return seconds > 0 ? processed / seconds : 0
  }
  const draw = () => {
    const elapsed = (Date.now() - started) / 1000
    if (mode === "json") {
      const r = rate()
      stream.write(
        `${JSON.stringify({
          progress: options.label,
          processed,
          total,
          unit,
          rate: Math.round(r * 10) / 10,
          eta_seconds: total !== null && r > 0 ? Math.max(0, Math.round((total - processed) / r)) : null,
          elapsed_seconds: Math.round(elapsed * 10) / 10
        })}\n`
      )
    } else {
      // `\r` back to the line's start, the line, then erase what a longer previous line left.
      stream.write(`\r${renderBar(options.label, unit, processed, total, rate(), elapsed)}\x1b[K`)
      drawn = true
    }
    lastDraw = Date.now()
  }
  return {
    update: (p, t) => {
      if (finished) return
      processed = p
      if (t !== undefined && t !== null) total = t
      if (Date.now() - lastDraw >= (mode === "json" ? JSON_EVERY_MS : REDRAW_MS)) draw()
    },
    note: (text) => {
      if (finished) return
      if (mode === "json") return void stream.write(`${JSON.stringify({ progress: options.label, note: text })}\n`)
      stream.write(`${drawn ? "\r\x1b[K" : ""}${text}\n`)
      if (drawn) draw()
    },
    finish: () => {
      if (finished) return
      draw()
      finished = true
      if (mode === "bar") stream.write("\n")
    }
  }
}

/** A progress for the scope: finished (its line ended) when the scope closes, however it ends. */
export const scopedProgress = (options: ProgressOptions): Effect.Effect<Progress, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => makeProgress(options)),
    (p) => Effect.sync(() => p.finish())
  )

/** Runs `use` with a progress that is finished when it ends. */
export const withProgress = <A, E, R>(options: ProgressOptions, use: (progress: Progress) => Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.flatMap(scopedProgress(options), use))

/** A local file read chunk by chunk, each chunk counted into `progress` (in bytes, of the file's `size`). */
export const readWithProgress = (file: string, size: number, progress: Progress): AsyncIterable<Uint8Array> => ({
  async *[Symbol.asyncIterator]() {
    let read = 0
    progress.update(0, size)
    for await (const chunk of createReadStream(file)) {
      read += (chunk as Buffer).byteLength
      progress.update(read, size)
      yield chunk as Buffer
    }
  }
})

/** The lines of a local file (its newlines, plus a last line without one), read fast; undefined when unreadable. */
export const countLines = (file: string): Effect.Effect<number | undefined> =>
  Effect.promise(async () => {
    try {
      let lines = 0
      let last = 10
      for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
        const bytes = chunk as Buffer
        for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) lines++
        if (bytes.length > 0) last = bytes[bytes.length - 1]!
      }
      return last === 10 ? lines : lines + 1
    } catch {
      return undefined
    }
  })
