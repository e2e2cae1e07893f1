/**
 * The workflow every processed file shares (cleaning, encryption files, smart cleaning, REG search):
 * a row per file in its own table, a durable job that does the per-kind work, and the files it wrote
 * in the FileStore. A kind describes its table, queue and messages (`FileJobKind.ts`); `makeFileJobs`
 * gives it:
 *
 * - the status machine: `uploaded` → `processing` (`start`) → `processed` | `failed`; a file in one
 *   of `startFrom` may start again; `archived` by `archive`; `delete` removes the row and its files;
 * - one file processing at a time: each table has a partial unique index on `status = 'processing'`,
 *   so a second start is `Conflict` (HTTP 409);
 * - the run marker: a start stamps `processing_started_at` (milliseconds, so it survives a JS Date)
 *   and gives it to the job as `run`; every write of a run is fenced by it, so a stale job — of an
 *   earlier run, or a worker presumed dead that was only slow — is skipped (`beginRun`) and can never
 *   overwrite the current run's state (`finish`, `failRun`, `progress`);
 * - enqueue: a queue failure marks the run `failed` with the reason at once;
 * - failures: a retryable one (database, crash) leaves the row `processing` for the jobs engine's
 *   retry; anything else, or the last attempt, marks the run `failed` (`guard`);
 * - `reconcile`: rows left `processing` by a job that can no longer finish them (failed, cancelled,
 *   or completed without finishing the row; never queued) become `failed`. It runs whenever files
 *   are listed or started, so no file stays `processing` forever.
 */
import { Effect, Option, type Schema } from "effect"
import { SqlClient, type Statement } from "effect/sql"
import { decodeOptionalRow, decodeRows, toDatabaseError } from "./Database.ts"
import { Conflict, type DatabaseError, NotFound, publicMessage, StorageError, ValidationError } from "./Errors.ts"
import {
  failureMessage,
  isFileId,
  isFinalAttempt,
  type FileDownload,
  type FileJobKind,
  type FileJobRow,
  type FileJobStarted,
  type RunClaim
} from "./FileJobKind.ts"
import { FileStore } from "./FileStore.ts"
import { DEFAULT_QUEUE_SETTINGS, Jobs, type RunningJob } from "./Jobs.ts"

export * from "./FileJobKind.ts"

const isUniqueViolation = (error: unknown): boolean =>
  (error as { reason?: { _tag?: string } }).reason?._tag === "UniqueViolation"

export const makeFileJobs = Effect.fnUntraced(function* <S extends Schema.Top & { readonly Type: FileJobRow }>(
  kind: FileJobKind<S>
) {
  type Row = S["Type"]
  /** What decoding a row needs: nothing for the kinds' plain structs. */
  type Needs = S["DecodingServices"]
  const sql = yield* SqlClient.SqlClient
  const files = yield* FileStore
  const jobs = yield* Jobs
  const table = sql.unsafe(kind.table)
  const columns = sql.unsafe(kind.columns)
  const retryLimit = kind.retryLimit ?? DEFAULT_QUEUE_SETTINGS.retryLimit
  const db = Effect.mapError((cause: unknown) => toDatabaseError(cause))
  const span = (what: string) => Effect.withSpan(`${kind.name}.${what}`)

  const decodeAll = decodeRows(kind.row)
  const decodeOne = decodeOptionalRow(kind.row)

  const find = (id: string): Effect.Effect<Option.Option<Row>, DatabaseError, Needs> =>
    isFileId(id)
      ? sql`SELECT ${columns} FROM ${table} WHERE id = ${id}::uuid`.pipe(decodeOne, span("find"))
      : Effect.succeed(Option.none())

  const get = (id: string): Effect.Effect<Row, NotFound | DatabaseError, Needs> =>
    find(id).pipe(
      Effect.flatMap((row) =>
        Option.isSome(row)
          ? Effect.succeed(row.value)
          : Effect.fail(new NotFound({ message: kind.messages.notFound(id) }))
      )
    )

  const reconcile: Effect.Effect<number, DatabaseError, Needs> = sql<{ id: string }>`
    UPDATE ${table} f SET
      status = 'failed',
      error_message = coalesce(f.error_message, CASE
        WHEN j.job_id IS NULL THEN 'the processing job was never queued'
        WHEN j.state = 'completed' THEN 'the processing job finished without completing the file'
        ELSE coalesce(j.error, 'the processing job ' || j.state)
      END)
      ${sql.unsafe(kind.onFail ?? "")}
    FROM ${table} f2
    LEFT JOIN job_status j ON j.job_id = f2.job_id
    WHERE f.id = f2.id AND f.status = 'processing' AND (
      j.state IN ('failed', 'cancelled', 'completed')
      OR (f2.job_id IS NULL AND f2.processing_started_at < now() - interval '10 minutes')
    )
    RETURNING f.id::text AS id`.pipe(
    Effect.map((rows) => rows.length),
    db,
    span("reconcile")
  )

  /** Newest first; all statuses when `statuses` is empty. Stuck rows are reconciled first. */
  const list = (statuses: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Row>, DatabaseError, Needs> =>
    Effect.gen(function* () {
      yield* reconcile.pipe(
        Effect.catch((error) => Effect.logWarning("could not reconcile processing files", error.message))
      )
      return yield* sql`
        SELECT ${columns} FROM ${table}
        ${statuses.length > 0 ? sql`WHERE status IN ${sql.in(statuses)}` : sql``}
        ORDER BY uploaded_at DESC, id`.pipe(decodeAll)
    }).pipe(span("list"))

  const failRun = (id: string, run: Date, message: string): Effect.Effect<void, DatabaseError, Needs> =>
    sql`
      UPDATE ${table} SET status = 'failed', error_message = ${message.slice(0, 2000)} ${sql.unsafe(kind.onFail ?? "")}
      WHERE id = ${id}::uuid AND processing_started_at = ${run} AND status = 'processing'`.pipe(
      Effect.asVoid,
      db,
      span("failRun")
    )

  const setJob = (id: string, run: Date, jobId: string): Effect.Effect<void, DatabaseError, Needs> =>
    sql`UPDATE ${table} SET job_id = ${jobId}::uuid WHERE id = ${id}::uuid AND processing_started_at = ${run}`.pipe(
      Effect.asVoid,
      db
    )

  /**
   * Marks the file `processing` with a new run and queues its job with `data` (plus `file_id` and
   * `run`); `set` adds the kind's own assignments (e.g. the run's options), starting with a comma.
   */
  const start = (
    id: string,
    data: Record<string, unknown>,
    set?: Statement.Fragment
  ): Effect.Effect<FileJobStarted, NotFound | ValidationError | Conflict | DatabaseError, Needs> =>
    Effect.gen(function* () {
      if (!isFileId(id)) return yield* kind.messages.notEligible(id, undefined)
      yield* reconcile
      const marked = yield* sql<{ run: Date }>`
        UPDATE ${table} SET
          status = 'processing',
          processing_started_at = date_trunc('milliseconds', now()),
          processed_at = NULL,
          error_message = NULL,
          job_id = NULL
          ${sql.unsafe(kind.onStart ?? "")}
          ${set ?? sql``}
        WHERE id = ${id}::uuid AND status IN ${sql.in(kind.startFrom)}
        RETURNING processing_started_at AS run`.pipe(
        Effect.catch((error): Effect.Effect<never, Conflict | DatabaseError, Needs> =>
          isUniqueViolation(error)
            ? Effect.fail(new Conflict({ message: kind.messages.conflict }))
            : Effect.fail(toDatabaseError(error))
        )
      )
      const run = marked[0]?.run
      if (run === undefined) {
        const existing = yield* find(id)
        return yield* kind.messages.notEligible(id, Option.isSome(existing) ? existing.value.status : undefined)
      }
      const jobId = yield* jobs
        .enqueue(
          kind.queue,
          { file_id: id, run: run.toISOString(), ...data },
          {
            ...(kind.retryLimit === undefined ? {} : { retryLimit: kind.retryLimit }),
            ...(kind.singletonKey === undefined ? {} : { singletonKey: kind.singletonKey(id) })
          }
        )
        .pipe(
          Effect.mapError((error) =>
            error._tag === "Conflict" ? new Conflict({ message: kind.messages.conflict }) : error
          ),
          Effect.tapError((error) =>
            failRun(id, run, `${kind.messages.queueFailed}: ${publicMessage(error)}`).pipe(Effect.ignore)
          )
        )
      yield* setJob(id, run, jobId)
      yield* Effect.logInfo("file processing queued").pipe(Effect.annotateLogs({ file_id: id, job_id: jobId }))
      return { ok: true as const, file_id: id, status: "processing" as const, job_id: jobId }
    }).pipe(
      // A start runs to its end even when its caller goes away (a client that disconnects, the request
      // deadline, which answers without waiting): interrupted between the mark and the enqueue, the file
      // would stay `processing` with no job, blocking its kind until reconcile's 10 minutes.
      Effect.uninterruptible,
      span("start")
    )

  /**
   * The start of a job's work: the file and its run, or `Stale` when the file was deleted (or the
   * job names none), is no
   * longer processing, or belongs to another run. A job queued without a run marker (before the
   * marker existed) takes the file's current run.
   */
  const beginRun = (job: RunningJob): Effect.Effect<RunClaim<Row>, DatabaseError, Needs> =>
    Effect.gen(function* () {
      const fileId = typeof job.data.file_id === "string" ? job.data.file_id : ""
      const row = yield* find(fileId)
      const current = Option.isSome(row) ? row.value.processing_started_at : null
      const run = typeof job.data.run === "string" ? new Date(job.data.run) : (current ?? new Date(Number.NaN))
      if (Option.isNone(row) || row.value.status !== "processing" || current?.getTime() !== run.getTime()) {
        return { _tag: "Stale" as const, fileId, run, row }
      }
      if (row.value.job_id === null) yield* setJob(fileId, run, job.id)
      return { _tag: "Run" as const, fileId, run, row: row.value }
    }).pipe(span("beginRun"))

  /** The run's work, its failure recorded on the row when it is the run's last attempt. */
  const guard =
    (job: RunningJob, fileId: string, run: Date) =>
    <A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Needs> =>
      work.pipe(
        Effect.tapError((error) =>
          isFinalAttempt(job, error, retryLimit)
            ? failRun(fileId, run, publicMessage(error)).pipe(Effect.ignore)
            : Effect.logWarning(`${kind.name} attempt failed; it will be retried`, failureMessage(error))
        )
      )

  /**
   * A job of the kind: `work` does the claimed run, its failure recorded by `guard`; a job with
   * nothing to do (`beginRun`'s `Stale`) answers what `stale` says.
   */
  const runJob = <A, E, R, B, E2, R2>(
    job: RunningJob,
    stale: (claim: Extract<RunClaim<Row>, { readonly _tag: "Stale" }>) => Effect.Effect<B, E2, R2>,
    work: (claim: Extract<RunClaim<Row>, { readonly _tag: "Run" }>) => Effect.Effect<A, E, R>
  ): Effect.Effect<A | B, E | E2 | DatabaseError, R | R2 | Needs> =>
    beginRun(job).pipe(
      Effect.flatMap((claim): Effect.Effect<A | B, E | E2, R | R2 | Needs> =>
        claim._tag === "Stale" ? stale(claim) : guard(job, claim.fileId, claim.run)(work(claim))
      )
    )

  /**
   * `processing` → `processed` with the kind's assignments, fenced by the run. The files of an
   * earlier run the row no longer names are deleted (a file may run again). False when the run is no
   * longer the file's, and then the run's `outputs` the row does not name are deleted (a file
   * deleted meanwhile names none: they belong to nobody).
   */
  const finish = (
    fileId: string,
    run: Date,
    set: Statement.Fragment,
    outputs: ReadonlyArray<string> = []
  ): Effect.Effect<boolean, DatabaseError | StorageError, Needs> =>
    Effect.gen(function* () {
      const before = yield* find(fileId)
      const done = yield* sql`
        UPDATE ${table} SET status = 'processed', processed_at = now(), error_message = NULL ${set}
        WHERE id = ${fileId}::uuid AND processing_started_at = ${run} AND status = 'processing'
        RETURNING ${columns}`.pipe(decodeOne)
      if (Option.isNone(done)) {
        yield* discardOutputs(fileId, outputs)
        return false
      }
      if (Option.isSome(before)) {
        const named = new Set(kind.storedKeys(done.value))
        const superseded = kind.storedKeys(before.value).filter((key): key is string => key !== null && !named.has(key))
        yield* Effect.forEach(superseded, deleteStored, { discard: true })
      }
      return true
    }).pipe(span("finish"))

  /**
   * Deletes the `outputs` of a run whose finish was refused, except those the file's row names (the
   * same run finished by another attempt of its job wrote the same keys).
   */
  const discardOutputs = (
    fileId: string,
    outputs: ReadonlyArray<string>
  ): Effect.Effect<void, DatabaseError | StorageError, Needs> =>
    Effect.gen(function* () {
      if (outputs.length === 0) return
      const row = yield* find(fileId)
      const named = new Set(Option.isSome(row) ? kind.storedKeys(row.value) : [])
      const orphans = outputs.filter((key) => !named.has(key))
      yield* Effect.forEach(orphans, deleteStored, { discard: true })
    })

  const progress = (
    fileId: string,
    run: Date,
    processed: number,
    total: number
  ): Effect.Effect<void, DatabaseError, Needs> =>
    kind.progressColumns === true
      ? sql`
          UPDATE ${table} SET progress_processed = ${processed}, progress_total = ${total}
          WHERE id = ${fileId}::uuid AND processing_started_at = ${run} AND status = 'processing'`.pipe(
          Effect.asVoid,
          db
        )
      : Effect.void

  /**
   * A stored output as a download, with the original's checks in its order: file missing (404), not
   * processed (400), output missing in the store (404). `output` names the output of a processed
   * row, or answers why there is none.
   */
  const download = (
    id: string,
    output: (row: Row) => { readonly key: string | null; readonly filename: string } | NotFound
  ): Effect.Effect<FileDownload, NotFound | ValidationError | StorageError | DatabaseError, Needs> =>
    Effect.gen(function* () {
      const row = yield* get(id)
      const notProcessed = new ValidationError({ message: kind.messages.notProcessed(row), field: "file_id" })
      if (row.status !== "processed") return yield* notProcessed
      const found = output(row)
      if (found instanceof NotFound) return yield* found
      if (found.key === null) return yield* notProcessed
      const body = yield* files.webStream(found.key).pipe(
        Effect.catchTag("NotFound", () => Effect.fail(new NotFound({ message: "Processed file missing on disk" }))),
        Effect.catchTag("ValidationError", (error) =>
          Effect.fail(new StorageError({ message: `bad stored key: ${error.message}` }))
        )
      )
      return { filename: found.filename, body }
    }).pipe(span("download"))

  const archive = (id: string): Effect.Effect<void, NotFound | Conflict | DatabaseError, Needs> =>
    Effect.gen(function* () {
      const refuse = kind.messages.archiveWhileProcessing
      const rows = isFileId(id)
        ? yield* sql`
            UPDATE ${table} SET status = 'archived'
            WHERE id = ${id}::uuid ${refuse === undefined ? sql`` : sql`AND status <> 'processing'`}
            RETURNING id`.pipe(db)
        : []
      if (rows.length > 0) return
      const existing = yield* find(id)
      if (Option.isNone(existing) || refuse === undefined) {
        return yield* new NotFound({ message: kind.messages.notFound(id) })
      }
      return yield* new Conflict({ message: refuse })
    }).pipe(span("archive"))

  // Keys the product did not write (e.g. paths migrated from the original) are skipped, not fatal.
  const deleteStored = (key: string) => files.delete(key).pipe(Effect.catchTag("ValidationError", () => Effect.void))

  /** Deletes the row and every stored file it names (`kind.storedKeys`); the row is returned. */
  const remove = (id: string): Effect.Effect<Row, NotFound | Conflict | DatabaseError | StorageError, Needs> =>
    Effect.gen(function* () {
      const blocked = kind.deleteBlocked
      const deleted = isFileId(id)
        ? yield* sql`
            DELETE FROM ${table}
            WHERE id = ${id}::uuid ${blocked === undefined ? sql`` : sql`AND NOT (${sql.unsafe(blocked.where)})`}
            RETURNING ${columns}`.pipe(decodeOne)
        : Option.none<Row>()
      if (Option.isNone(deleted)) {
        const existing = yield* find(id)
        if (Option.isNone(existing) || blocked === undefined) {
          return yield* new NotFound({ message: kind.messages.notFound(id) })
        }
        return yield* new Conflict({ message: blocked.message(existing.value) })
      }
      const stored = kind.storedKeys(deleted.value).filter((k): k is string => k !== null && k !== "")
      yield* Effect.forEach(stored, deleteStored, { discard: true })
      yield* Effect.logInfo("file deleted").pipe(Effect.annotateLogs({ file_id: id, files: stored.length }))
      return deleted.value
    }).pipe(span("delete"))

  return {
    find,
    get,
    list,
    reconcile,
    start,
    beginRun,
    guard,
    runJob,
    progress,
    finish,
    discardOutputs,
    failRun,
    download,
    archive,
    delete: remove
  }
})
