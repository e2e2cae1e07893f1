#!/usr/bin/env -S node --max-semi-space-size=16
// The SQS live-events consumer's entry point (also `npx optimizer consume`). Nothing in this
// package runs at import: only this file starts the consumer.
import { existsSync } from "node:fs"

const source = new URL("../src/main.ts", import.meta.url)
await import(existsSync(source) ? source.href : new URL("../dist/main.js", import.meta.url).href)
