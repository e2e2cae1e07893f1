/**
 * `npx optimizer classify "IOS 18.7" --json` → `{"category":"WHITELIST","rule":"…"}`: what the
 * Voluum sync would decide for an OS version, and which rule decided (CLASSIFIER_RULES_FILE when
 * set, else the original's rules). No database is needed.
 */
import { Effect, Layer } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { AppConfig, Classifier } from "@optimizer/core"
import { printJson, printLines } from "../output.ts"
import { loadSettings } from "../runtime.ts"

export const classifyCommand = Command.make(
  "classify",
  {
    osVersion: Argument.String("os-version").pipe(Argument.withDescription('Voluum\'s OS version, e.g. "IOS 18.7"')),
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print the result as JSON"))
  },
  ({ osVersion, json }) =>
    Effect.gen(function* () {
      const settings = yield* loadSettings
      const classifier = yield* Classifier.pipe(
        Effect.provide(Classifier.layer.pipe(Layer.provide(Layer.succeed(AppConfig, settings))))
      )
      const decision = classifier.classify(osVersion)
      if (json) return yield* printJson({ category: decision.category, rule: decision.rule })
      yield* printLines(`${decision.category} (rule ${decision.rule}, rules: ${classifier.source})`)
    })
).pipe(
  Command.withDescription("Classify an OS version as the Voluum sync does: BLACKLIST, WHITELIST, MONITOR or UNKNOWN")
)
