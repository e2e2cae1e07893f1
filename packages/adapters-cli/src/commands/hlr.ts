/**
 * HLR from the command line (`docs/hlr.md`), over the same core operations as the HTTP API:
 *
 * - `optimizer hlr start <file_id> [--wait] [--json]`: queues the run (as POST /{file_id}/hlr); a
 *   worker runs it. `--wait` follows it, showing the batch's progress on stderr, and prints its counts.
 * - `optimizer hlr status <file_id> [--json]`: as GET /{file_id}/hlr.
 * - `optimizer hlr download <file_id> [--raw] [--out file.csv]`: the clean result, or the provider's
 *   raw results with `--raw`, to a file or stdout.
 */
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Hlr, UpstreamError, type HlrStatus } from "@optimizer/core"
import { switchFlag, writeDownload } from "../fileCommands.ts"
import { printJson, printLines } from "../output.ts"
import { followJob } from "../jobWait.ts"
import { progressFlag, withProgress } from "../progress.ts"
import { withServices } from "../runtime.ts"

const json = switchFlag("json", "print the result as JSON")
const fileId = Argument.String("file-id").pipe(Argument.withDescription("the processed file's id (from `files list`)"))

const statusLines = (s: HlrStatus) => {
  const result = s.result as { sent?: number; counts?: Record<string, unknown> } | null
  const counts = result?.counts as
    { reused?: number; categories?: Record<string, number>; statuses?: Record<string, number> } | undefined
  return [
    `file          ${s.file_id}`,
    `hlr status    ${s.hlr_status ?? "never run"}`,
    `batch         ${s.hlr_batch_id ?? "-"}`,
    `progress      ${s.hlr_num_complete ?? "?"} / ${s.hlr_num_items ?? "?"}`,
    `started       ${s.hlr_started_at?.toISOString() ?? "-"}`,
    `completed     ${s.hlr_completed_at?.toISOString() ?? "-"}`,
    ...(s.hlr_error_message === null ? [] : [`error         ${s.hlr_error_message}`]),
    ...(result === null
      ? []
      : [
          `sent          ${result.sent ?? 0}`,
          `reused        ${counts?.reused ?? 0} (cached results)`,
          ...Object.entries(counts?.categories ?? {}).map(([k, v]) => `  ${k.padEnd(12)}${v}`),
          ...Object.entries(counts?.statuses ?? {}).map(([k, v]) => `  ${(k || "(blank)").padEnd(28)}${v}`)
        ])
  ]
}

const start = Command.make(
  "start",
  {
    id: fileId,
    wait: switchFlag("wait", "wait until a worker has finished the run (its progress on stderr), then print it"),
    json,
    progress: progressFlag
  },
  ({ id, wait, json, progress }) =>
    withServices(
      Effect.gen(function* () {
        const hlr = yield* Hlr
        const started = yield* hlr.start(id)
        if (!wait) {
          if (json) return yield* printJson(started)
          return yield* printLines(`HLR of ${started.file_id} queued as job ${started.job_id} (a worker runs it)`)
        }
        yield* withProgress({ label: "hlr", unit: "numbers", mode: progress, json }, (p) =>
          followJob(started.job_id, p)
        )
        const status = yield* hlr.status(id)
        if (status.hlr_status !== "complete") {
          return yield* new UpstreamError({
            service: "hlrlookup",
            retryable: false,
            message: `the HLR run ended ${status.hlr_status}: ${status.hlr_error_message ?? ""}`
          })
        }
        if (json) return yield* printJson(status)
        yield* printLines(...statusLines(status))
      })
    )
).pipe(Command.withDescription("Check a processed file's numbers with hlrlookup.com (as POST /{file_id}/hlr)"))

const status = Command.make("status", { id: fileId, json }, ({ id, json }) =>
  withServices(
    Effect.gen(function* () {
      const s = yield* Hlr.use((hlr) => hlr.status(id))
      if (json) return yield* printJson(s)
      yield* printLines(...statusLines(s))
    })
  )
).pipe(Command.withDescription("A file's HLR run: status, progress and counts (as GET /{file_id}/hlr)"))

const download = Command.make(
  "download",
  {
    id: fileId,
    raw: switchFlag("raw", "the provider's raw results instead of the clean list"),
    out: Flag.String("out").pipe(Flag.optional, Flag.withDescription("where to write it (default: stdout)"))
  },
  ({ id, raw, out }) =>
    withServices(
      Effect.flatMap(
        Hlr.use((hlr) => hlr.download(id, raw ? "raw" : "clean")),
        (file) => writeDownload(file, out)
      )
    )
).pipe(Command.withDescription("Download the HLR clean list (phone_number header) or, with --raw, the raw results"))

export const hlrCommand = Command.make("hlr").pipe(
  Command.withDescription("HLR lookups of processed files (hlrlookup.com batches)"),
  Command.withSubcommands([start, status, download])
)
