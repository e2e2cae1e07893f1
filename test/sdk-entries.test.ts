/**
 * "Pay for what you use": importing `@optimizer/core/phone` or `@optimizer/core/encryption` (and
 * using it) loads no database or AWS module. A child process resolves the package the way the
 * workspace does (its sources, the "@optimizer/source" condition) and records every module URL
 * Node resolves — ESM imports and CommonJS `require`s alike — through a `module.registerHooks`
 * resolve hook. `scripts/sdk-check.sh` repeats the check on the built package installed from its
 * tarball.
 */
import { execFile } from "node:child_process"
import { describe, expect, it } from "vitest"

const HEAVY = /\/node_modules\/(pg|pg-boss|pg-copy-streams|pg-pool|@effect\/sql-pg|@aws-sdk\/[^/]+)\//

const loadedBy = (program: string): Promise<ReadonlyArray<string>> => {
  const script = [
    `import { registerHooks } from "node:module"`,
    `const loaded = new Set()`,
    `registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.add(r.url); return r } })`,
    `const run = async () => { ${program} }`,
    `await run()`,
    `process.stdout.write(JSON.stringify([...loaded]))`
  ].join("\n")
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ["--conditions=@optimizer/source", "--input-type=module", "-e", script],
      { cwd: new URL("..", import.meta.url), timeout: 30_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout))
    )
  )
}

describe("SDK entries load only what they need", () => {
  it("@optimizer/core/phone: normalising a number loads no pg, pg-boss or AWS module", async () => {
    const loaded = await loadedBy(`
      const { normalizePhone } = await import("@optimizer/core/phone")
      const key = normalizePhone("+44 7700 900123")
      if (!key.ok || key.country !== "GB") throw new Error("not normalised: " + JSON.stringify(key))`)
    expect(loaded.some((url) => url.includes("/packages/core/src/phone/PhoneNumber.ts"))).toBe(true)
    expect(loaded.filter((url) => HEAVY.test(url))).toEqual([])
  })

  it("@optimizer/core/encryption: encrypting and decrypting a value loads no pg, pg-boss or AWS module", async () => {
    const loaded = await loadedBy(`
      const { makeCipher, parseAesKey } = await import("@optimizer/core/encryption")
      const { randomBytes } = await import("node:crypto")
      const key = parseAesKey(randomBytes(32).toString("base64url"))
      if (key._tag === "Failure") throw new Error("bad key")
      const cipher = makeCipher(key.success)
      const token = cipher.encrypt("447700900123")
      if (cipher.decrypt(token)._tag !== "Success") throw new Error("no round trip")`)
    expect(loaded.some((url) => url.includes("/packages/core/src/encryption/Encryption.ts"))).toBe(true)
    expect(loaded.filter((url) => HEAVY.test(url))).toEqual([])
  })

  it("the root entry does load them (the check can see them)", async () => {
    const loaded = await loadedBy(`await import("@optimizer/core")`)
    expect(loaded.filter((url) => HEAVY.test(url)).length).toBeGreaterThan(0)
  })
})

describe("importing starts nothing", () => {
  it("the core, the HTTP adapter and the SQS adapter open no connection at import, and the process ends by itself", async () => {
    const script = [
      `import net from "node:net"`,
      `const calls = []`,
      `const connect = net.Socket.prototype.connect`,
      `net.Socket.prototype.connect = function (...args) { calls.push("socket"); return connect.apply(this, args) }`,
      `globalThis.fetch = async () => { calls.push("fetch"); throw new Error("no network at import") }`,
      `await import("@optimizer/core")`,
      `await import("@optimizer/adapters-http")`,
      `await import("@optimizer/adapters-sqs")`,
      `await new Promise((resolve) => setTimeout(resolve, 300))`,
      `process.stdout.write(JSON.stringify(calls))`
    ].join("\n")
    const started = Date.now()
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ["--conditions=@optimizer/source", "--input-type=module", "-e", script],
        // Without SQS_QUEUE_URL or AWS settings: an import that started the consumer would fail or hang.
        { cwd: new URL("..", import.meta.url), timeout: 20_000, env: { PATH: process.env.PATH } },
        (error, out, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(out))
      )
    )
    expect(JSON.parse(stdout)).toEqual([])
    // It ended on its own: nothing (a poll loop, a timer, a pool) kept it alive.
    expect(Date.now() - started).toBeLessThan(20_000)
  })
})
