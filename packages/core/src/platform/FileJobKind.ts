/**
 * What a kind of processed file tells the shared workflow (`FileJobs.ts`) about itself — its table,
 * queue, row schema and messages — and the types and small helpers the kinds and adapters share
 * (statuses, the start's answer, uploads, downloads, the status filter).
 */
import { Effect, type Option, type Schema } from "effect"
import type { Conflict, NotFound } from "./Errors.ts"
import { ValidationError } from "./Errors.ts"
import type { FileBody } from "./FileStore.ts"
import { DEFAULT_QUEUE_SETTINGS, isRetryableJobError, type RunningJob } from "./Jobs.ts"

export const FILE_JOB_STATUSES = ["uploaded", "processing", "processed", "failed", "archived"] as const
export type FileJobStatus = (typeof FILE_JOB_STATUSES)[number]

/** The columns the workflow itself reads; every kind's row has them. */
export interface FileJobRow {
  readonly status: string
  readonly processing_started_at: Date | null
  readonly job_id: string | null
}

/** What a start answers (the original's keys plus the job). */
export interface FileJobStarted {
  readonly ok: true
  readonly file_id: string
  readonly status: "processing"
  readonly job_id: string
}

/** An upload of a kind: stored as it comes (`UPLOAD_MAX_BYTES` unless `maxBytes`) and checked as text. */
export type FileUpload<A, E> = (
  filename: string,
  body: FileBody,
  options?: { readonly maxBytes?: number }
) => Effect.Effect<A, E>

/** A processed file, ready to stream to a client. */
export interface FileDownload {
  readonly filename: string
  readonly body: ReadableStream<Uint8Array>
}

/** What `beginRun` found: the run to do, or why this job has nothing to do. */
export type RunClaim<Row> =
  | { readonly _tag: "Run"; readonly fileId: string; readonly run: Date; readonly row: Row }
  /** `row` is none when the file was deleted; otherwise another run owns it, or it is no longer processing. */
  | { readonly _tag: "Stale"; readonly fileId: string; readonly run: Date; readonly row: Option.Option<Row> }

export interface FileJobKind<S extends Schema.Top> {
  readonly table: string
  readonly queue: string
  /** Prefix of the spans and logs, e.g. "Cleaning". */
  readonly name: string
  /** The SELECT list of a row (static SQL). */
  readonly columns: string
  readonly row: S
  /** Statuses from which a run may start. */
  readonly startFrom: ReadonlyArray<FileJobStatus>
  /** Retries after the first attempt; the queue's default when absent. */
  readonly retryLimit?: number
  /** At most one queued job per file (the jobs engine's singleton key). */
  readonly singletonKey?: (id: string) => string
  /** Extra `SET` assignments when a run starts / fails (static SQL, each starting with a comma). */
  readonly onStart?: string
  readonly onFail?: string
  /** When set, the row has `progress_processed` / `progress_total` columns that `progress` writes. */
  readonly progressColumns?: boolean
  readonly messages: {
    readonly notFound: (id: string) => string
    /** The 409 of a second file starting while one is processing. */
    readonly conflict: string
    /** The file could not start: it is missing (`status` undefined) or in a status that does not allow it. */
    readonly notEligible: (id: string, status: string | undefined) => NotFound | ValidationError | Conflict
    /** The 400 of a download before the file is processed. */
    readonly notProcessed: (row: S["Type"]) => string
    /** Prefix of `error_message` when the job could not be queued. */
    readonly queueFailed: string
    /** Set when a processing file may not be archived (409). */
    readonly archiveWhileProcessing?: string
  }
  /** Set when some rows may not be deleted (409): the SQL condition that blocks it, and the message. */
  readonly deleteBlocked?: { readonly where: string; readonly message: (row: S["Type"]) => string }
  /** Every stored file a row names (upload and outputs): what `delete` removes and a stale run keeps. */
  readonly storedKeys: (row: S["Type"]) => ReadonlyArray<string | null>
}

/**
 * The store key of an output of one run of a file. Each run writes its own keys: a job presumed dead
 * but only slow (its run failed and the file started again) may still be writing, and must not write
 * over the new run's output; what it wrote is deleted when its fenced finish is refused.
 */
export const runOutputKey = (folder: string, fileId: string, run: Date, extension = "csv"): string =>
  `${folder}/${fileId}.${run.getTime()}.${extension}`

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export const isFileId = (id: string): boolean => typeof id === "string" && UUID.test(id)

/** The message of any failure, for `error_message`. */
export const failureMessage = (error: unknown): string => {
  const message = (error as { message?: unknown } | null)?.message
  return typeof message === "string" && message !== "" ? message : String(error)
}

/** Whether a failed attempt is the run's last: not worth a retry, or the retries are used up. */
export const isFinalAttempt = (job: RunningJob, error: unknown, retryLimit = DEFAULT_QUEUE_SETTINGS.retryLimit) =>
  !isRetryableJobError(error) || job.attempt > retryLimit

/** `?status=a,b` split and checked; `describe` words the refusal of an unknown status. */
export const statusFilter = (
  raw: string | undefined,
  describe: (unknown: string) => string
): Effect.Effect<ReadonlyArray<FileJobStatus>, ValidationError> => {
  const wanted = (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
  const statuses: Array<FileJobStatus> = []
  for (const s of wanted) {
    const known = FILE_JOB_STATUSES.find((k) => k === s)
    if (known === undefined) return Effect.fail(new ValidationError({ message: describe(s), field: "status" }))
    statuses.push(known)
  }
  return Effect.succeed(statuses)
}
