#!/usr/bin/env -S node --max-semi-space-size=16
// The `optimizer` command. In a checkout it runs the TypeScript sources directly (Node >= 22.18
// strips types natively); an installed package runs its bundle.
import { existsSync } from "node:fs"

const [major, minor] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `optimizer needs Node.js >= 22.19 (this is ${process.version}). Run: bash scripts/ensure-node.sh, or install Node 24 LTS.\n`
  )
  process.exit(1)
}
const source = new URL("../src/main.ts", import.meta.url)
if (existsSync(source)) {
  // A checkout runs @optimizer/core from its sources too: its package.json maps the
  // "@optimizer/source" condition to src/*.ts (what `node --conditions=@optimizer/source` does).
  const { registerHooks } = await import("node:module")
  registerHooks({
    resolve: (specifier, context, nextResolve) =>
      nextResolve(specifier, { ...context, conditions: [...context.conditions, "@optimizer/source"] })
  })
}
await import(existsSync(source) ? source.href : new URL("../dist/main.js", import.meta.url).href)
