/**
 * Risky mobile operators (`docs/original-api.md` "HLR"): a LIVE HLR result whose operator is on this
 * list goes to the blacklist (`HLR_RISKY_NETWORK`) instead of the clean list.
 *
 * The match is the original's: the operator name lower-cased with its whitespace removed, equal
 * to a list entry (`"BT Mobile - MVNO"` → `btmobile-mvno`). The original removed spaces only; all
 * whitespace (tabs, no-break spaces) is removed here, since an operator name never means them.
 * List entries are normalised the same way, so a hand-written file may keep the spaces.
 *
 * `risky-operators.json` is the original's list (269 names, `{"risky_networks": [...]}`).
 * `RISKY_OPERATORS_FILE` replaces it with a file of the same shape or a plain JSON array of
 * names; a file that cannot be read or is not one of those shapes stops start-up with an
 * `InvalidConfig` naming the file.
 */
import { readFile } from "node:fs/promises"
import { Context, Effect, Layer, Schema } from "effect"
import { AppConfig } from "../platform/Config.ts"
import { InvalidConfig } from "../platform/Errors.ts"
import defaultListJson from "./risky-operators.json" with { type: "json" }

/** Lower case, no whitespace: the form operator names are compared in. */
export const normalizeOperatorName = (name: string): string => name.toLowerCase().replace(/\s+/g, "")

export const RiskyOperatorsFile = Schema.Union([
  Schema.Struct({ risky_networks: Schema.Array(Schema.String) }),
  Schema.Array(Schema.String)
])
export type RiskyOperatorsFile = typeof RiskyOperatorsFile.Type

const namesOf = (file: RiskyOperatorsFile): ReadonlyArray<string> =>
  "risky_networks" in file ? file.risky_networks : file

/** The set of normalised names; an entry that normalises to "" could only match a missing name, so it is dropped. */
const toSet = (names: ReadonlyArray<string>): ReadonlySet<string> =>
  new Set(names.map(normalizeOperatorName).filter((name) => name !== ""))

/** A membership test for a list of names. Null, undefined and blank operator names are never on it. */
export const makeIsRisky = (names: ReadonlyArray<string>): ((operatorName: string | null | undefined) => boolean) => {
  const set = toSet(names)
  return (operatorName) => typeof operatorName === "string" && set.has(normalizeOperatorName(operatorName))
}

const decodeFile = Schema.decodeUnknownEffect(RiskyOperatorsFile)

/** A list file's content → its names, or the problem in words. */
export const parseRiskyOperatorsFile = (text: string): Effect.Effect<ReadonlyArray<string>, string> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (cause) => `not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`
  }).pipe(
    Effect.flatMap((json) =>
      decodeFile(json).pipe(
        Effect.mapError(
          (error) =>
            `expected {"risky_networks": ["name", ...]} or ["name", ...]: ${error.message.replace(/\n\s+at /g, " at ").replaceAll("\n", "; ")}`
        )
      )
    ),
    Effect.map(namesOf)
  )

/** The original's list (`risky-operators.json`). */
export const DEFAULT_RISKY_OPERATORS: ReadonlyArray<string> = defaultListJson.risky_networks

export class RiskyOperators extends Context.Service<
  RiskyOperators,
  {
    /** Pure and total (no Effect): it runs once per HLR result row. */
    readonly isRisky: (operatorName: string | null | undefined) => boolean
    /** How many distinct normalised names the list holds. */
    readonly size: number
    /** "default", or the path of the list file in use. */
    readonly source: string
  }
>()("@optimizer/core/classification/RiskyOperators") {
  static readonly make = (names: ReadonlyArray<string>, source: string): RiskyOperators["Service"] =>
    RiskyOperators.of({ isRisky: makeIsRisky(names), size: toSet(names).size, source })

  /** The original's list, whatever the configuration. */
  static readonly layerDefault: Layer.Layer<RiskyOperators> = Layer.sync(RiskyOperators, () =>
    RiskyOperators.make(DEFAULT_RISKY_OPERATORS, "default")
  )

  /** The list of `RISKY_OPERATORS_FILE` when set, else the original's. */
  static readonly layer: Layer.Layer<RiskyOperators, InvalidConfig, AppConfig> = Layer.effect(
    RiskyOperators,
    Effect.gen(function* () {
      const { riskyOperatorsFile } = yield* AppConfig
      if (riskyOperatorsFile === undefined) return RiskyOperators.make(DEFAULT_RISKY_OPERATORS, "default")
      const names = yield* Effect.tryPromise({
        try: () => readFile(riskyOperatorsFile, "utf8"),
        catch: (cause) => `cannot be read (${cause instanceof Error ? cause.message : String(cause)})`
      }).pipe(
        Effect.flatMap(parseRiskyOperatorsFile),
        Effect.mapError(
          (problem) =>
            new InvalidConfig({
              message: `RISKY_OPERATORS_FILE ${riskyOperatorsFile}: ${problem}`,
              variables: ["RISKY_OPERATORS_FILE"]
            })
        )
      )
      const service = RiskyOperators.make(names, riskyOperatorsFile)
      yield* Effect.logInfo("risky operators loaded").pipe(
        Effect.annotateLogs({ file: riskyOperatorsFile, operators: service.size })
      )
      return service
    })
  )
}
