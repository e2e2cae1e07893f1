/**
 * OS-version classification: the original's rules case by case (`docs/original-api.md` "Classification"), the crashes
 * that became UNKNOWN, and rules files (replacing the defaults, or stopping start-up when bad).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Classifier, DEFAULT_RULES, classify, type Category } from "../../src/classification/Classifier.ts"
import { AppConfig } from "../../src/platform/Config.ts"
import type { InvalidConfig } from "../../src/platform/Errors.ts"

const TABLE: ReadonlyArray<readonly [osVersion: string | null | undefined, category: Category, rule: string]> = [
  // 1. os == "IOS" and major <= 10
  ["IOS 10.3", "BLACKLIST", "ios-10-or-older"],
  ["IOS 9.3.5", "BLACKLIST", "ios-10-or-older"],
  ["IOS 10", "BLACKLIST", "ios-10-or-older"],
  ["IOS 0.1", "BLACKLIST", "ios-10-or-older"],
  // 2. os == "Android" and major <= 7
  ["Android 7.1", "BLACKLIST", "android-7-or-older"],
  ["Android 4.4.2", "BLACKLIST", "android-7-or-older"],
  ["Android 7", "BLACKLIST", "android-7-or-older"],
  // 3. whole string "Windows 7" / "Windows XP", or contains "Ubuntu"
  ["Windows 7", "BLACKLIST", "windows-7-or-xp"],
  ["Windows XP", "BLACKLIST", "windows-7-or-xp"],
  ["Ubuntu 22.04", "BLACKLIST", "ubuntu"],
  ["Ubuntu", "BLACKLIST", "ubuntu"],
  ["Something Ubuntu", "BLACKLIST", "ubuntu"],
  ["Linux Ubuntu 20.04 LTS", "BLACKLIST", "ubuntu"],
  // 4. os == "Android" and major in {8, 9, 9999}
  ["Android 8.0", "MONITOR", "android-8-9-or-no-version"],
  ["Android 8.1.0", "MONITOR", "android-8-9-or-no-version"],
  ["Android 9", "MONITOR", "android-8-9-or-no-version"],
  ["Android", "MONITOR", "android-8-9-or-no-version"],
  ["Android abc", "MONITOR", "android-8-9-or-no-version"],
  ["Android .5", "MONITOR", "android-8-9-or-no-version"],
  // 5. whole string "Windows 10" / "Windows 11", or os == "Linux"
  ["Windows 10", "MONITOR", "windows-10-or-11"],
  ["Windows 11", "MONITOR", "windows-10-or-11"],
  ["Linux", "MONITOR", "linux"],
  ["Linux x86_64", "MONITOR", "linux"],
  // 6. os == "Android" and major >= 17
  ["Android 17", "MONITOR", "android-17-or-newer"],
  ["Android 99.1", "MONITOR", "android-17-or-newer"],
  // 7. os == "IOS" and major >= 11 (bare "IOS" is 9999)
  ["IOS 11.0", "WHITELIST", "ios-11-or-newer"],
  ["IOS 18.7", "WHITELIST", "ios-11-or-newer"],
  ["IOS", "WHITELIST", "ios-11-or-newer"],
  ["IOS beta", "WHITELIST", "ios-11-or-newer"],
  // 8. os contains "MacOS" or "Mac" (several spaces: os is the whole string)
  ["Mac OS X 10.15", "WHITELIST", "mac"],
  ["MacOS 14", "WHITELIST", "mac"],
  ["Mac", "WHITELIST", "mac"],
  ["OS X Mac 10", "WHITELIST", "mac"],
  // 9. os == "Android" and 10 <= major < 17
  ["Android 10", "WHITELIST", "android-10-to-16"],
  ["Android 13.0", "WHITELIST", "android-10-to-16"],
  ["Android 16.1", "WHITELIST", "android-10-to-16"],
  // 10. otherwise
  ["Windows 8.1", "UNKNOWN", "otherwise"],
  ["Windows Vista", "UNKNOWN", "otherwise"],
  ["Chrome OS", "UNKNOWN", "otherwise"], // one space: os "Chrome", version "OS"
  ["iOS 17", "UNKNOWN", "otherwise"], // case-sensitive
  ["android 12", "UNKNOWN", "otherwise"],
  ["Linux Mint 21", "UNKNOWN", "otherwise"], // two spaces: os is the whole string, not "Linux"
  ["Windows  7", "UNKNOWN", "otherwise"],
  [" Android", "UNKNOWN", "otherwise"], // os "", version "Android"
  ["Android  12", "UNKNOWN", "otherwise"], // two spaces: os is the whole string
  ["", "UNKNOWN", "otherwise"],
  ["   ", "UNKNOWN", "otherwise"],
  // The original crashed on these (the whole sync failed): now UNKNOWN under a built-in name.
  [null, "UNKNOWN", "missing-os-version"],
  [undefined, "UNKNOWN", "missing-os-version"],
  ["Android ", "UNKNOWN", "unparseable-os-version"],
  ["IOS ", "UNKNOWN", "unparseable-os-version"],
  [" ", "UNKNOWN", "unparseable-os-version"],
  ["Android 8a", "UNKNOWN", "unparseable-os-version"],
  ["IOS 1x.2", "UNKNOWN", "unparseable-os-version"],
  // Python's int() tolerates "_" between digits and surrounding whitespace.
  ["Android 1_0", "WHITELIST", "android-10-to-16"],
  ["Android 8\t", "MONITOR", "android-8-9-or-no-version"]
]

describe("classify (default rules)", () => {
  for (const [osVersion, category, rule] of TABLE) {
    it(`${JSON.stringify(osVersion)} → ${category} (${rule})`, () => {
      assert.deepStrictEqual(classify(osVersion), { category, rule })
    })
  }

  it("covers every default rule", () => {
    const used = new Set(TABLE.map(([, , rule]) => rule))
    for (const rule of DEFAULT_RULES) assert.isTrue(used.has(rule.name), rule.name)
  })
})

/** Builds the service from CLASSIFIER_RULES_FILE = a temporary file with `content` (none when undefined). */
const withRulesFile = <A>(
  content: string | undefined,
  use: (classifier: Classifier["Service"]) => A
): Effect.Effect<A, InvalidConfig> =>
  Effect.acquireUseRelease(
    Effect.promise(() => mkdtemp(path.join(tmpdir(), "classifier-"))),
    (dir) =>
      Effect.gen(function* () {
        const file = path.join(dir, "rules.json")
        if (content !== undefined) yield* Effect.promise(() => writeFile(file, content))
        const layer = Classifier.layer.pipe(Layer.provide(AppConfig.layerFrom({ CLASSIFIER_RULES_FILE: file })))
        return yield* Classifier.use((classifier) => Effect.sync(() => use(classifier))).pipe(Effect.provide(layer))
      }),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

const failureOf = (content: string | undefined): Effect.Effect<string, string> =>
  withRulesFile(content, () => "built").pipe(
    Effect.flip,
    Effect.mapError((built) => `expected InvalidConfig, the service was ${built}`),
    Effect.map((error) => {
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.deepStrictEqual(error.variables, ["CLASSIFIER_RULES_FILE"])
      assert.include(error.message, "CLASSIFIER_RULES_FILE")
      assert.include(error.message, "rules.json")
      return error.message
    })
  )

describe("Classifier service", () => {
  it.effect("uses the original's rules when CLASSIFIER_RULES_FILE is not set", () =>
    Effect.gen(function* () {
      const classifier = yield* Classifier
      assert.strictEqual(classifier.source, "default")
      assert.deepStrictEqual(classifier.classify("IOS 10.3"), { category: "BLACKLIST", rule: "ios-10-or-older" })
    }).pipe(Effect.provide(Classifier.layer.pipe(Layer.provide(AppConfig.layerFrom({})))))
  )

  it.effect("replaces the rules with those of CLASSIFIER_RULES_FILE", () =>
    withRulesFile(
      JSON.stringify({
        rules: [
          { name: "old-ios", category: "MONITOR", when: { os: "IOS", majorAtMost: 15 } },
          { name: "some-android", category: "BLACKLIST", when: { os: "Android", majorIn: [12, 13] } },
          { name: "tv", category: "BLACKLIST", when: { osContainsAny: ["Tizen", "webOS"] } },
          { name: "chromebook", category: "WHITELIST", when: { osVersionIn: ["Chrome OS"] } },
          { name: "any-windows", category: "MONITOR", when: { osVersionContainsAny: ["Windows"] } },
          { name: "new-android", category: "WHITELIST", when: { os: "Android", majorAtLeast: 14 } }
        ]
      }),
      (classifier) => {
        assert.strictEqual(classifier.rules.length, 6)
        assert.match(classifier.source, /rules\.json$/)
        assert.deepStrictEqual(classifier.classify("IOS 10.3"), { category: "MONITOR", rule: "old-ios" })
        assert.deepStrictEqual(classifier.classify("IOS 16"), { category: "UNKNOWN", rule: "no-rule-matched" })
        assert.deepStrictEqual(classifier.classify("Android 13.1"), { category: "BLACKLIST", rule: "some-android" })
        assert.deepStrictEqual(classifier.classify("Android 14"), { category: "WHITELIST", rule: "new-android" })
        assert.deepStrictEqual(classifier.classify("Android 11"), { category: "UNKNOWN", rule: "no-rule-matched" })
        assert.deepStrictEqual(classifier.classify("Tizen 6"), { category: "BLACKLIST", rule: "tv" })
        assert.deepStrictEqual(classifier.classify("Chrome OS"), { category: "WHITELIST", rule: "chromebook" })
        assert.deepStrictEqual(classifier.classify("Windows 8.1"), { category: "MONITOR", rule: "any-windows" })
        // Parsing stays the original's, whatever the rules.
        assert.deepStrictEqual(classifier.classify("Android "), {
          category: "UNKNOWN",
          rule: "unparseable-os-version"
        })
        assert.deepStrictEqual(classifier.classify(null), { category: "UNKNOWN", rule: "missing-os-version" })
      }
    )
  )

  it.effect("accepts a file with the default rules' shape (description included)", () =>
    Effect.gen(function* () {
      const text = yield* Effect.promise(() =>
        readFile(new URL("../../src/classification/rules.default.json", import.meta.url), "utf8")
      )
      yield* withRulesFile(text, (classifier) => {
        assert.deepStrictEqual(classifier.rules, DEFAULT_RULES)
        for (const [osVersion, category, rule] of TABLE) {
          assert.deepStrictEqual(classifier.classify(osVersion), { category, rule })
        }
      })
    })
  )

  it.effect("stops start-up with InvalidConfig naming the file and the problem", () =>
    Effect.gen(function* () {
      assert.include(yield* failureOf(undefined), "cannot be read")
      assert.include(yield* failureOf("{ not json"), "not valid JSON")
      assert.include(yield* failureOf(""), "not valid JSON")
      assert.include(yield* failureOf("[]"), "not a rules file")
      assert.include(yield* failureOf("{}"), `["rules"]`)
      assert.include(yield* failureOf(`{"rules": []}`), "has no rules")
      const unknownMatcher = yield* failureOf(
        `{"rules": [{"name": "x", "category": "BLACKLIST", "when": {"osStartsWith": "Win"}}]}`
      )
      assert.include(unknownMatcher, `unknown matcher "osStartsWith"`)
      assert.include(unknownMatcher, `rule "x"`)
      const unknownCategory = yield* failureOf(`{"rules": [{"name": "x", "category": "GREYLIST", "when": {}}]}`)
      assert.include(unknownCategory, `"BLACKLIST" | "WHITELIST" | "MONITOR" | "UNKNOWN"`)
      assert.include(unknownCategory, `["category"]`)
      assert.include(
        yield* failureOf(`{"rules": [{"name": "x", "category": "MONITOR", "when": {"majorAtMost": "ten"}}]}`),
        `["majorAtMost"]`
      )
      assert.include(yield* failureOf(`{"rules": [{"name": "x", "category": "MONITOR"}]}`), `["when"]`)
      assert.include(yield* failureOf(`{"rules": [{"name": "", "category": "MONITOR", "when": {}}]}`), `["name"]`)
      assert.include(
        yield* failureOf(`{"rules": [{"name": "x", "category": "MONITOR", "when": {"majorIn": []}}]}`),
        `["majorIn"]`
      )
      assert.include(
        yield* failureOf(
          `{"rules": [{"name": "x", "category": "MONITOR", "when": {}}, {"name": "x", "category": "UNKNOWN", "when": {}}]}`
        ),
        `rule name "x" is used twice`
      )
    })
  )
})
