/**
 * Voluum rows → BLACKLIST / WHITELIST / MONITOR / UNKNOWN by their OS version (`docs/lists.md` "Classification").
 *
 * The rules are DATA: an ordered list, first match wins, each rule named so that every decision
 * says which rule made it. `rules.default.json` is the original's `classifyRecord` (`docs/original-api.md`
 * "Classification") exactly; `CLASSIFIER_RULES_FILE` replaces it with a file of the same shape. A file that
 * does not parse, uses an unknown matcher or category, or has no rules stops start-up with an
 * `InvalidConfig` naming the file and the problem.
 *
 * Parsing the OS string is fixed (the original's, not configurable): a string with EXACTLY one
 * space (U+0020) is `os` + `version`; any other string is `os` whole, with no version. `major` =
 * the integer before the first `.` of the version when the version starts with a digit, else
 * 9999 (also without a version). Nothing is trimmed and comparisons are case-sensitive, so
 * `"iOS 17"` is UNKNOWN as it was.
 *
 * Where the original crashed (and with it the whole sync) the answer is UNKNOWN, under a
 * built-in rule name that is not in any rules file:
 * - `missing-os-version`: null / undefined;
 * - `unparseable-os-version`: one space but nothing after it (`"Android "`, `" "`), or a version
 *   that starts with a digit but whose part before the first `.` is not an integer to Python's
 *   `int()` (`"Android 8a"`). Python's `int()` tolerates surrounding whitespace and `_` between
 *   digits (`"10_1"` is 101), and so does this parser.
 * Other strings never crashed and keep the rules' answer: `""` and `"   "` are an `os` with no
 * version and no rule matches them (UNKNOWN by `otherwise`).
 *
 * Rule language, `{ "rules": [{ "name", "category", "when" }] }`; every matcher present in `when`
 * must hold (an empty `when` always holds):
 * - `os`: os equals; `osContainsAny`: os contains one of the strings;
 * - `osVersionIn`: the whole string equals one of; `osVersionContainsAny`: it contains one of;
 * - `majorAtMost`, `majorAtLeast`: bounds on `major` (inclusive); `majorIn`: one of the values.
 * When no rule matches, the answer is UNKNOWN under `no-rule-matched`.
 */
import { readFile } from "node:fs/promises"
import { Context, Effect, Layer, Schema } from "effect"
import { AppConfig } from "../platform/Config.ts"
import { InvalidConfig } from "../platform/Errors.ts"
import defaultRulesJson from "./rules.default.json" with { type: "json" }

export const Category = Schema.Literals(["BLACKLIST", "WHITELIST", "MONITOR", "UNKNOWN"])
export type Category = typeof Category.Type

export interface Classification {
  readonly category: Category
  /** The name of the rule that decided (a rules-file name, or one of the built-in names below). */
  readonly rule: string
}

/** Built-in rule names: decisions made before any rule is consulted, or after none matched. */
export const MISSING_OS_VERSION = "missing-os-version"
export const UNPARSEABLE_OS_VERSION = "unparseable-os-version"
export const NO_RULE_MATCHED = "no-rule-matched"

const Strings = Schema.NonEmptyArray(Schema.String)

export const RuleCondition = Schema.Struct({
  os: Schema.optionalKey(Schema.String),
  osContainsAny: Schema.optionalKey(Strings),
  osVersionIn: Schema.optionalKey(Strings),
  osVersionContainsAny: Schema.optionalKey(Strings),
  majorAtMost: Schema.optionalKey(Schema.Int),
  majorAtLeast: Schema.optionalKey(Schema.Int),
  majorIn: Schema.optionalKey(Schema.NonEmptyArray(Schema.Int))
})
export type RuleCondition = typeof RuleCondition.Type

export const ClassificationRule = Schema.Struct({
  name: Schema.NonEmptyString,
  category: Category,
  when: RuleCondition
})
export type ClassificationRule = typeof ClassificationRule.Type

export const RulesFile = Schema.Struct({
  description: Schema.optionalKey(Schema.String),
  rules: Schema.Array(ClassificationRule)
})
export type RulesFile = typeof RulesFile.Type

// ---------------------------------------------------------------------------------------------
// Parsing (`docs/original-api.md` "Classification").

const NO_VERSION = 9999
/** `major` could not be read where the original's `int()` raised. */
const UNPARSEABLE = -1

/** Python's `int()` of the text before the first `.`, for a version that starts with a digit; -1 where it raised. */
const pythonInt = (text: string): number => {
  const match = /^\s*(\d+(?:_\d+)*)\s*$/.exec(text)
  return match === null ? UNPARSEABLE : Number(match[1]!.replaceAll("_", ""))
}

interface ParsedOs {
  readonly whole: string
  readonly os: string
  readonly major: number
}

const parseOsVersion = (whole: string): ParsedOs => {
  const space = whole.indexOf(" ")
  if (space === -1 || whole.indexOf(" ", space + 1) !== -1) return { whole, os: whole, major: NO_VERSION }
  const version = whole.slice(space + 1)
  if (version === "") return { whole, os: whole.slice(0, space), major: UNPARSEABLE }
  const first = version.charCodeAt(0)
  const major = first >= 48 && first <= 57 ? pythonInt(version.split(".", 1)[0]!) : NO_VERSION
  return { whole, os: whole.slice(0, space), major }
}

// ---------------------------------------------------------------------------------------------
// Rules → one predicate each.

type Predicate = (parsed: ParsedOs) => boolean

const compileCondition = (when: RuleCondition): Predicate => {
  const tests: Array<Predicate> = []
  if (when.os !== undefined) {
    const os = when.os
    tests.push((p) => p.os === os)
  }
  if (when.osContainsAny !== undefined) {
    const parts = when.osContainsAny
    tests.push((p) => parts.some((part) => p.os.includes(part)))
  }
  if (when.osVersionIn !== undefined) {
    const values = new Set(when.osVersionIn)
    tests.push((p) => values.has(p.whole))
  }
  if (when.osVersionContainsAny !== undefined) {
    const parts = when.osVersionContainsAny
    tests.push((p) => parts.some((part) => p.whole.includes(part)))
  }
  if (when.majorAtMost !== undefined) {
    const max = when.majorAtMost
    tests.push((p) => p.major <= max)
  }
  if (when.majorAtLeast !== undefined) {
    const min = when.majorAtLeast
    tests.push((p) => p.major >= min)
  }
  if (when.majorIn !== undefined) {
    const values = new Set(when.majorIn)
    tests.push((p) => values.has(p.major))
  }
  return (p) => tests.every((test) => test(p))
}

/** A classify function for an ordered rule list (first match wins). Pure and total. */
export const makeClassify = (
  rules: ReadonlyArray<ClassificationRule>
): ((osVersion: string | null | undefined) => Classification) => {
  const compiled = rules.map((rule) => ({
    matches: compileCondition(rule.when),
    decision: { category: rule.category, rule: rule.name } satisfies Classification
  }))
  const missing: Classification = { category: "UNKNOWN", rule: MISSING_OS_VERSION }
  const unparseable: Classification = { category: "UNKNOWN", rule: UNPARSEABLE_OS_VERSION }
  const noMatch: Classification = { category: "UNKNOWN", rule: NO_RULE_MATCHED }
  return (osVersion) => {
    if (osVersion === null || osVersion === undefined || typeof osVersion !== "string") return missing
    const parsed = parseOsVersion(osVersion)
    if (parsed.major === UNPARSEABLE) return unparseable
    for (const rule of compiled) if (rule.matches(parsed)) return rule.decision
    return noMatch
  }
}

const MATCHERS: ReadonlyArray<string> = Object.keys(RuleCondition.fields)

/** An unknown key in a `when`, said in the rule language's words (Schema would say "excess property"). */
const unknownMatcher = (json: unknown): string | undefined => {
  const rules = typeof json === "object" && json !== null ? (json as { rules?: unknown }).rules : undefined
  if (!Array.isArray(rules)) return undefined
  for (const [index, rule] of rules.entries()) {
    const when = typeof rule === "object" && rule !== null ? (rule as { when?: unknown }).when : undefined
    if (typeof when !== "object" || when === null) continue
    const unknown = Object.keys(when).find((key) => !MATCHERS.includes(key))
    if (unknown !== undefined) {
      const name = (rule as { name?: unknown }).name
      return `rule ${typeof name === "string" ? `"${name}"` : `#${index + 1}`} uses the unknown matcher "${unknown}" (known: ${MATCHERS.join(", ")})`
    }
  }
  return undefined
}

/** Problems Schema does not state well: no rules, duplicate names (a decision must name one rule). */
const ruleListProblem = (rules: ReadonlyArray<ClassificationRule>): string | undefined => {
  if (rules.length === 0) return "has no rules"
  const seen = new Set<string>()
  for (const rule of rules) {
    if (seen.has(rule.name)) return `rule name "${rule.name}" is used twice`
    seen.add(rule.name)
  }
  return undefined
}

const decodeRulesFile = Schema.decodeUnknownEffect(RulesFile)

/** A rules file's content → its rules, or the problem in words. */
export const parseRulesFile = (text: string): Effect.Effect<ReadonlyArray<ClassificationRule>, string> =>
  Effect.gen(function* () {
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (cause) => `not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`
    })
    const matcherProblem = unknownMatcher(json)
    if (matcherProblem !== undefined) return yield* Effect.fail(matcherProblem)
    const file = yield* decodeRulesFile(json, { errors: "all", onExcessProperty: "error" }).pipe(
      Effect.mapError(
        (error) => `not a rules file: ${error.message.replace(/\n\s+at /g, " at ").replaceAll("\n", "; ")}`
      )
    )
    const problem = ruleListProblem(file.rules)
    if (problem !== undefined) return yield* Effect.fail(problem)
    return file.rules
  })

/** The original's rules (`rules.default.json`), checked like any rules file. */
export const DEFAULT_RULES: ReadonlyArray<ClassificationRule> = Schema.decodeUnknownSync(RulesFile)(defaultRulesJson, {
  onExcessProperty: "error"
}).rules

/** Classifies with the original's rules (what the service does unless CLASSIFIER_RULES_FILE is set). */
export const classify = makeClassify(DEFAULT_RULES)

// ---------------------------------------------------------------------------------------------
// Service.

export class Classifier extends Context.Service<
  Classifier,
  {
    /**
     * Pure and total (no failure, no Effect): it runs once per Voluum row, and an Effect per row
     * would cost more than the classification.
     */
    readonly classify: (osVersion: string | null | undefined) => Classification
    readonly rules: ReadonlyArray<ClassificationRule>
    /** "default", or the path of the rules file in use. */
    readonly source: string
  }
>()("@optimizer/core/classification/Classifier") {
  /** The original's rules, whatever the configuration. */
  static readonly layerDefault: Layer.Layer<Classifier> = Layer.succeed(
    Classifier,
    Classifier.of({ classify, rules: DEFAULT_RULES, source: "default" })
  )

  /** Rules from `CLASSIFIER_RULES_FILE` when set, else the original's. */
  static readonly layer: Layer.Layer<Classifier, InvalidConfig, AppConfig> = Layer.effect(
    Classifier,
    Effect.gen(function* () {
      const { classifierRulesFile } = yield* AppConfig
      if (classifierRulesFile === undefined) {
        return Classifier.of({ classify, rules: DEFAULT_RULES, source: "default" })
      }
      const rules = yield* Effect.tryPromise({
        try: () => readFile(classifierRulesFile, "utf8"),
        catch: (cause) => `cannot be read (${cause instanceof Error ? cause.message : String(cause)})`
      }).pipe(
        Effect.flatMap(parseRulesFile),
        Effect.mapError(
          (problem) =>
            new InvalidConfig({
              message: `CLASSIFIER_RULES_FILE ${classifierRulesFile}: ${problem}`,
              variables: ["CLASSIFIER_RULES_FILE"]
            })
        )
      )
      yield* Effect.logInfo("classifier rules loaded").pipe(
        Effect.annotateLogs({ file: classifierRulesFile, rules: rules.length })
      )
      return Classifier.of({ classify: makeClassify(rules), rules, source: classifierRulesFile })
    })
  )
}
