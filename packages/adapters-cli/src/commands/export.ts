/**
 * `npx optimizer export <table> [--out file]`: a table as CSV with a header (`COPY … TO STDOUT WITH
 * CSV HEADER`), synchronously. With `--out` the CSV streams into that file; without, the export is
 * stored and recorded as `/process_db` would (`exports/<table>_<YYYYmmdd_HHMMSS>.csv`) and the
 * command prints where. Only the allow-listed tables (docs/exports.md).
 */
import { createWriteStream } from "node:fs"
import { once } from "node:events"
import * as path from "node:path"
import { Effect, Option, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { AppConfig, EXPORTABLE_TABLES, Exports, StorageError } from "@optimizer/core"
import { printJson, printLines } from "../output.ts"
import { withServices } from "../runtime.ts"

const toFile = (table: string, out: string) =>
  Effect.gen(function* () {
    const exports = yield* Exports
    const file = createWriteStream(out)
    const failed = (cause: unknown) =>
      new StorageError({ message: `could not write ${out}: ${(cause as Error)?.message ?? String(cause)}`, cause })
    let bytes = 0
    yield* exports.stream(table).pipe(
      Stream.runForEach((chunk) =>
        Effect.tryPromise({
          try: async () => {
            bytes += chunk.byteLength
            if (!file.write(chunk)) await once(file, "drain")
          },
          catch: failed
        })
      ),
      Effect.onError(() => Effect.sync(() => file.destroy()))
    )
    yield* Effect.tryPromise({
      try: () =>
        new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve()))),
      catch: failed
    })
    return { table, out, bytes }
  })

export const exportCommand = Command.make(
  "export",
  {
    table: Argument.String("table").pipe(Argument.withDescription(`one of: ${EXPORTABLE_TABLES.join(", ")}`)),
    out: Flag.String("out").pipe(
      Flag.optional,
      Flag.withDescription("write the CSV to this file instead of the store")
    ),
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))
  },
  ({ table, out, json }) =>
    withServices(
      Effect.gen(function* () {
        if (Option.isSome(out)) {
          const written = yield* toFile(table, out.value)
          if (json) return yield* printJson(written)
          return yield* printLines(`exported ${table} to ${written.out} (${written.bytes} bytes)`)
        }
        const done = yield* Exports.use((exports) => exports.exportNow(table))
        const { storage } = yield* AppConfig
        const location =
          storage.kind === "s3"
            ? `s3://${storage.s3Bucket}/${storage.s3Prefix === "" ? "" : `${storage.s3Prefix}/`}${done.file_path}`
            : path.resolve(storage.dir, done.file_path)
        if (json) return yield* printJson({ ...done, location })
        yield* printLines(`exported ${done.row_count ?? 0} rows of ${table} to ${location} (export ${done.id})`)
      })
    )
).pipe(Command.withDescription("Export a table as CSV (COPY … WITH CSV HEADER), to a file or to the store"))
