/**
 * The commands of a file resource (`files`, `smart-cleaning`, `reg-search`): upload a local file,
 * list, download (to a file or stdout), archive, delete — each declared from a small description,
 * so what they share (the local file check, the streamed download, the one-line answers) is
 * written once. Commands with options of their own (process, stats, cleaning's `--kind`) stay with
 * their resource and use `writeDownload`.
 */
import { createReadStream, createWriteStream } from "node:fs"
import { once } from "node:events"
import { stat } from "node:fs/promises"
import { basename } from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type { ReadableStream as NodeReadableStream } from "node:stream/web"
import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { NotFound, StorageError, type AppServices, type FileDownload } from "@optimizer/core"
import { printJson, printLines, printTable } from "./output.ts"
import { withServices } from "./runtime.ts"

type Run<A> = Effect.Effect<A, unknown, AppServices>

/** A boolean flag, false unless given. */
export const switchFlag = (name: string, description: string) =>
  Flag.Boolean(name).pipe(Flag.withDefault(false), Flag.withDescription(description))

const json = switchFlag("json", "print the result as JSON")
const status = Flag.String("status").pipe(Flag.optional, Flag.withDescription("only these statuses (comma-separated)"))
const out = Flag.String("out").pipe(Flag.optional, Flag.withDescription("where to write the file (default: stdout)"))

/** A processed file to `target`, or to stdout (respecting its back-pressure). */
export const writeDownload = (file: FileDownload, target: Option.Option<string>) =>
  Effect.tryPromise({
    try: async () => {
      const source = Readable.fromWeb(file.body as NodeReadableStream<Uint8Array>)
      if (Option.isSome(target)) {
        await pipeline(source, createWriteStream(target.value))
      } else {
        for await (const chunk of source) {
          if (!process.stdout.write(chunk as Uint8Array)) await once(process.stdout, "drain")
        }
      }
    },
    catch: (cause) => new StorageError({ message: `could not write the file: ${(cause as Error)?.message}`, cause })
  }).pipe(
    Effect.tap(() =>
      Option.isSome(target) ? Console.error(`${file.filename} written to ${target.value}`) : Effect.void
    )
  )

/** `upload <file>`: a local file stored as the HTTP upload stores it. */
export const uploadCommand = <U extends object>(spec: {
  readonly description: string
  /** What the file argument is. */
  readonly file: string
  readonly run: (name: string, body: NodeJS.ReadableStream) => Run<U>
  readonly lines: (uploaded: U) => ReadonlyArray<string>
}) =>
  Command.make(
    "upload",
    { file: Argument.String("file").pipe(Argument.withDescription(spec.file)), json },
    ({ file, json }) =>
      withServices(
        Effect.gen(function* () {
          yield* Effect.tryPromise({
            try: () => stat(file),
            catch: () => new NotFound({ message: `no such file: ${file}` })
          })
          const uploaded = yield* spec.run(basename(file), createReadStream(file))
          if (json) return yield* printJson(uploaded)
          yield* printLines(...spec.lines(uploaded))
        })
      )
  ).pipe(Command.withDescription(spec.description))

/** `list [--status a,b] [--json]`: a table of the given columns, or `{"items": [...]}` as the HTTP listing. */
export const listCommand = <T extends object>(spec: {
  readonly description: string
  readonly run: (status: Option.Option<string>) => Run<ReadonlyArray<T>>
  readonly columns: ReadonlyArray<keyof T & string>
}) =>
  Command.make("list", { status, json }, ({ status, json }) =>
    withServices(
      Effect.gen(function* () {
        const items = yield* spec.run(status)
        if (json) return yield* printJson({ items })
        yield* printTable(items, spec.columns)
      })
    )
  ).pipe(Command.withDescription(spec.description))

/** `download <id> [--out file]`. */
export const downloadCommand = (
  id: Argument.Argument<string>,
  spec: { readonly description: string; readonly run: (id: string) => Run<FileDownload> }
) =>
  Command.make("download", { id, out }, ({ id, out }) =>
    withServices(Effect.flatMap(spec.run(id), (file) => writeDownload(file, out)))
  ).pipe(Command.withDescription(spec.description))

/** `archive <id>` / `delete <id>`: the operation, then one line saying it is done. */
export const entryCommand = (
  verb: "archive" | "delete",
  id: Argument.Argument<string>,
  spec: { readonly description: string; readonly run: (id: string) => Run<unknown> }
) =>
  Command.make(verb, { id }, ({ id }) =>
    withServices(spec.run(id).pipe(Effect.andThen(printLines(`${verb === "archive" ? "archived" : "deleted"} ${id}`))))
  ).pipe(Command.withDescription(spec.description))
