/**
 * Risky operators: the original's normalised exact match, the shipped list, and list files
 * (replacing the default, or stopping start-up when malformed).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import {
  DEFAULT_RISKY_OPERATORS,
  RiskyOperators,
  normalizeOperatorName
} from "../../src/classification/RiskyOperators.ts"
import { AppConfig } from "../../src/platform/Config.ts"
import type { InvalidConfig } from "../../src/platform/Errors.ts"

describe("normalizeOperatorName", () => {
  it("lower-cases and removes all whitespace", () => {
    assert.strictEqual(normalizeOperatorName("BT Mobile - MVNO"), "btmobile-mvno")
    assert.strictEqual(normalizeOperatorName("  Aero2 Sp. z o.o. "), "aero2sp.zo.o.")
    assert.strictEqual(normalizeOperatorName("Lyca\tMobile\u00a0UK"), "lycamobileuk")
    assert.strictEqual(normalizeOperatorName(""), "")
  })
})

describe("the shipped list", () => {
  it("is the original's 269 names, already normalised", () => {
    assert.strictEqual(DEFAULT_RISKY_OPERATORS.length, 269)
    for (const name of DEFAULT_RISKY_OPERATORS) assert.strictEqual(normalizeOperatorName(name), name)
  })

  it.effect("matches HLR operator names exactly after normalisation", () =>
    Effect.gen(function* () {
      const risky = yield* RiskyOperators
      assert.strictEqual(risky.size, 269)
      assert.strictEqual(risky.source, "default")
      assert.isTrue(risky.isRisky("Aero2"))
      assert.isTrue(risky.isRisky("AERO2 SP. Z O.O."))
      assert.isTrue(risky.isRisky("BT Mobile - MVNO"))
      assert.isTrue(risky.isRisky("btmobile"))
      // Exact match, not a prefix or substring.
      assert.isFalse(risky.isRisky("BT Mobile Ltd"))
      assert.isFalse(risky.isRisky("aero"))
      assert.isFalse(risky.isRisky("Vodafone UK"))
      assert.isFalse(risky.isRisky(""))
      assert.isFalse(risky.isRisky("   "))
      assert.isFalse(risky.isRisky(null))
      assert.isFalse(risky.isRisky(undefined))
    }).pipe(Effect.provide(RiskyOperators.layer.pipe(Layer.provide(AppConfig.layerFrom({})))))
  )
})

/** Builds the service from RISKY_OPERATORS_FILE = a temporary file with `content` (none when undefined). */
const withListFile = <A>(
  content: string | undefined,
  use: (risky: RiskyOperators["Service"]) => A
): Effect.Effect<A, InvalidConfig> =>
  Effect.acquireUseRelease(
    Effect.promise(() => mkdtemp(path.join(tmpdir(), "risky-"))),
    (dir) =>
      Effect.gen(function* () {
        const file = path.join(dir, "operators.json")
        if (content !== undefined) yield* Effect.promise(() => writeFile(file, content))
        const layer = RiskyOperators.layer.pipe(Layer.provide(AppConfig.layerFrom({ RISKY_OPERATORS_FILE: file })))
        return yield* RiskyOperators.use((risky) => Effect.sync(() => use(risky))).pipe(Effect.provide(layer))
      }),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

const failureOf = (content: string | undefined): Effect.Effect<string, string> =>
  withListFile(content, () => "built").pipe(
    Effect.flip,
    Effect.mapError((built) => `expected InvalidConfig, the service was ${built}`),
    Effect.map((error) => {
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.deepStrictEqual(error.variables, ["RISKY_OPERATORS_FILE"])
      assert.include(error.message, "RISKY_OPERATORS_FILE")
      assert.include(error.message, "operators.json")
      return error.message
    })
  )

describe("RISKY_OPERATORS_FILE", () => {
  it.effect("replaces the list (the original's shape), normalising its entries", () =>
    withListFile(JSON.stringify({ risky_networks: ["Cheap SIM Ltd", "fraudtel"] }), (risky) => {
      assert.strictEqual(risky.size, 2)
      assert.match(risky.source, /operators\.json$/)
      assert.isTrue(risky.isRisky("cheapsimltd"))
      assert.isTrue(risky.isRisky("CHEAP SIM LTD"))
      assert.isTrue(risky.isRisky("FraudTel"))
      assert.isFalse(risky.isRisky("Aero2")) // the default list is replaced, not extended
    })
  )

  it.effect("accepts a plain JSON array, and an empty list", () =>
    Effect.gen(function* () {
      yield* withListFile(`["aero2", "  "]`, (risky) => {
        assert.strictEqual(risky.size, 1)
        assert.isTrue(risky.isRisky("Aero2"))
        assert.isFalse(risky.isRisky(""))
      })
      yield* withListFile(`{"risky_networks": []}`, (risky) => {
        assert.strictEqual(risky.size, 0)
        assert.isFalse(risky.isRisky("Aero2"))
      })
    })
  )

  it.effect("stops start-up with InvalidConfig naming the file when it is malformed", () =>
    Effect.gen(function* () {
      assert.include(yield* failureOf(undefined), "cannot be read")
      assert.include(yield* failureOf("{ nope"), "not valid JSON")
      assert.include(yield* failureOf(`{"networks": ["aero2"]}`), `{"risky_networks"`)
      assert.include(yield* failureOf(`{"risky_networks": "aero2"}`), `{"risky_networks"`)
      assert.include(yield* failureOf(`["aero2", 7]`), `[1]`)
      assert.include(yield* failureOf(`"aero2"`), `{"risky_networks"`)
    })
  )
})
