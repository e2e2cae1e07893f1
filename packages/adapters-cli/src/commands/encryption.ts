/**
 * `npx optimizer encrypt <value>` / `decrypt <token>` (the original's AES-GCM tokens, with
 * `AES_KEY` and, to decrypt, `AES_KEY_PREVIOUS`), and their file forms:
 * `encrypt --file in.csv [--out out.csv]` writes `value,token` lines (the first column of each row
 * is the value), `decrypt --file …` writes `token,plaintext` lines (empty plaintext for a token that
 * does not decrypt). Without `--out` the output goes to stdout. No database is needed.
 */
import { createWriteStream } from "node:fs"
import { stat } from "node:fs/promises"
import { once } from "node:events"
import type { Writable } from "node:stream"
import { Effect, Layer, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import {
  AppConfig,
  Encryption,
  NotFound,
  StorageError,
  transformTokenCsv,
  ValidationError,
  type TokenDirection
} from "@optimizer/core"
import { printJson, printLines } from "../output.ts"
import { progressFlag, readWithProgress, withProgress, type ProgressMode } from "../progress.ts"
import { loadSettings } from "../runtime.ts"

const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))
const file = Flag.String("file").pipe(
  Flag.optional,
  Flag.withDescription("a CSV file: the value is the first column of each row (no header detection)")
)
const out = Flag.String("out").pipe(Flag.optional, Flag.withDescription("where to write the output (default: stdout)"))

/** Runs `effect` with the Encryption service of this environment's settings (no database). */
const withEncryption = <A, E>(effect: Effect.Effect<A, E, Encryption>) =>
  Effect.gen(function* () {
    const settings = yield* loadSettings
    return yield* effect.pipe(Effect.provide(Encryption.layer.pipe(Layer.provide(Layer.succeed(AppConfig, settings)))))
  })

const writeTo = (stream: Writable, text: string) =>
  Effect.tryPromise({
    try: async () => {
      if (!stream.write(text)) await once(stream, "drain")
    },
    catch: (cause) => new StorageError({ message: `could not write the output: ${(cause as Error).message}`, cause })
  })

const transformFile = (
  direction: TokenDirection,
  input: string,
  output: Option.Option<string>,
  asJson: boolean,
  mode: ProgressMode
) =>
  Effect.gen(function* () {
    const { size } = yield* Effect.tryPromise({
      try: () => stat(input),
      catch: () => new NotFound({ message: `no such file: ${input}` })
    })
    const encryption = yield* Encryption
    const target: Writable = Option.isSome(output) ? createWriteStream(output.value) : process.stdout
    // The output on the terminal itself: a bar would be drawn through it.
    const shown = Option.isNone(output) && process.stdout.isTTY === true && mode === "auto" ? "none" : mode
    const counts = yield* withProgress({ label: direction, unit: "bytes", mode: shown, json: asJson }, (p) =>
      transformTokenCsv(encryption, direction, readWithProgress(input, size, p), (text) => writeTo(target, text))
    )
    if (Option.isSome(output)) {
      yield* Effect.tryPromise({
        try: () =>
          new Promise<void>((resolve, reject) =>
            target.end((error?: Error | null) => (error ? reject(error) : resolve()))
          ),
        catch: (cause) => new StorageError({ message: `could not write ${output.value}: ${String(cause)}`, cause })
      })
    }
    const summary = { records: counts.records, failed: counts.failed, out: Option.getOrNull(output) }
    // With the output on stdout, the summary goes to stderr so that it does not mix with the data.
    if (Option.isNone(output)) {
      process.stderr.write(
        `${direction}ed ${counts.records} values${direction === "decrypt" ? `, ${counts.failed} failed` : ""}\n`
      )
      return
    }
    if (asJson) return yield* printJson(summary)
    yield* printLines(
      `${direction}ed ${counts.records} values into ${output.value}${direction === "decrypt" ? ` (${counts.failed} tokens did not decrypt)` : ""}`
    )
  })

const tokenCommand = (direction: TokenDirection) =>
  Command.make(
    direction,
    {
      value: Argument.String(direction === "encrypt" ? "value" : "token").pipe(
        Argument.optional,
        Argument.withDescription(
          direction === "encrypt" ? "the value (a phone number) to encrypt" : "the token to decrypt"
        )
      ),
      file,
      out,
      json,
      progress: progressFlag
    },
    ({ value, file, out, json, progress }) =>
      withEncryption(
        Effect.gen(function* () {
          if (Option.isSome(file)) {
            if (Option.isSome(value)) {
              return yield* new ValidationError({
                message: `give either a ${direction === "encrypt" ? "value" : "token"} or --file, not both`
              })
            }
            return yield* transformFile(direction, file.value, out, json, progress)
          }
          if (Option.isNone(value)) {
            return yield* new ValidationError({
              message: `give a ${direction === "encrypt" ? "value" : "token"} to ${direction}, or --file <csv>`
            })
          }
          const encryption = yield* Encryption
          const result =
            direction === "encrypt"
              ? { value: value.value, token: yield* encryption.encrypt(value.value) }
              : { token: value.value, value: yield* encryption.decrypt(value.value.trim()) }
          if (json) return yield* printJson(result)
          yield* printLines(direction === "encrypt" ? result.token : result.value)
        })
      )
  ).pipe(
    Command.withDescription(
      direction === "encrypt"
        ? "Encrypt a value into the original's AES-GCM token (AES_KEY), or every value of a CSV with --file"
        : "Decrypt a token (AES_KEY, then AES_KEY_PREVIOUS), or every token of a CSV with --file"
    )
  )

export const encryptCommand = tokenCommand("encrypt")
export const decryptCommand = tokenCommand("decrypt")
