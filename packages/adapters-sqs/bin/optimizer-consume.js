#!/usr/bin/env -S node --max-semi-space-size=16
// The SQS live-events consumer's entry point (also `npx optimizer consume`). Nothing in this
// package runs at import: only this file starts the consumer.
import { existsSync } from "node:fs"

const source = new URL("../src/main.ts", import.meta.url)
if (existsSync(source)) {
  // A checkout runs @optimizer/core from its sources too (its "@optimizer/source" export condition).
  const { registerHooks } = await import("node:module")
  registerHooks({
    resolve: (specifier, context, nextResolve) =>
      nextResolve(specifier, { ...context, conditions: [...context.conditions, "@optimizer/source"] })
  })
}
await import(existsSync(source) ? source.href : new URL("../dist/main.js", import.meta.url).href)
