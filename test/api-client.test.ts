/**
 * A typed client generated from `/openapi.json`, as the frontend would make one: openapi-typescript
 * writes the types from the running server's document into a temporary folder, the repository's
 * `tsc` type-checks `examples/http-client/client.ts` against them, and the program (openapi-fetch)
 * calls the server on loopback over PostgreSQL.
 */
import { spawn } from "node:child_process"
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "./support/app.ts"

const root = resolve(import.meta.dirname, "..")
const example = join(root, "examples", "http-client")

/** openapi-typescript's CLI, as installed for the example (beside its own TypeScript 5). */
const openapiTypescriptCli = () => {
  const pkg = createRequire(join(example, "package.json")).resolve("openapi-typescript/package.json")
  return join(dirname(pkg), "bin", "cli.js")
}

/**
 * Runs `node args…` and collects its output. Never `spawnSync`: the server under test runs in this
 * process, and a blocked event loop would leave the program's requests unanswered.
 */
const run = (
  args: ReadonlyArray<string>,
  options: { cwd?: string; env?: Record<string, string> } = {}
): Promise<{ status: number | null; output: string; stdout: string }> =>
  new Promise((done, fail) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 60_000
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.on("error", fail)
    child.on("close", (status) => done({ status, output: `${stdout}\n${stderr}`, stdout }))
  })

describe("a typed client generated from /openapi.json", () => {
  let app: TestApp
  let dir: string

  beforeAll(async () => {
    app = await startTestApp()
    dir = mkdtempSync(join(tmpdir(), "optimizer-client-"))
    // The types, generated from the running server's document.
    const document = await fetch(`${app.url}/openapi.json`)
    if (document.status !== 200) throw new Error(`/openapi.json answered ${document.status}`)
    writeFileSync(join(dir, "openapi.json"), await document.text())
    const generated = await run([openapiTypescriptCli(), join(dir, "openapi.json"), "-o", join(dir, "api.d.ts")])
    if (generated.status !== 0) throw new Error(`openapi-typescript failed:\n${generated.output}`)
    // A folder of its own for the program: an ES module whose imports (openapi-fetch, @types/node)
    // resolve from the repository's packages, with the repository's compiler options.
    copyFileSync(join(example, "client.ts"), join(dir, "client.ts"))
    symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir")
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module", private: true }))
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(root, "tsconfig.base.json"),
        compilerOptions: { noEmit: true },
        files: ["client.ts"]
      })
    )
  })
  afterAll(async () => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    await app?.close()
  })

  it("generates, type-checks with the repository's tsc and calls health, list counts, find records and jobs", async () => {
    const admin = await app.createKey("admin")
    const viewer = await app.createKey("viewer")
    const form = new FormData()
    form.append("file", new Blob(["custom_variable_1,reason,source\n447700900150,OS_VERSION,VOLUUM\n"]), "black.csv")
    const imported = await fetch(`${app.url}/import-blacklist-csv`, {
      method: "POST",
      headers: { "X-API-Key": admin },
      body: form
    })
    expect(imported.status).toBe(200)

    const typecheck = await run([
      join(root, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      join(dir, "tsconfig.json")
    ])
    expect(typecheck.status, typecheck.output).toBe(0)

    const client = await run(["client.ts", "+44 7700 900150"], {
      cwd: dir,
      env: { OPTIMIZER_URL: app.url, OPTIMIZER_API_KEY: viewer }
    })
    expect(client.status, client.output).toBe(0)
    expect(JSON.parse(client.stdout.trim())).toEqual({
      status: "ok",
      counts: { blacklist: 1, whitelist: 0, monitor: 0 },
      listed: 1,
      list: "blacklist",
      rows: 0,
      columns: expect.any(Number),
      jobs: expect.any(Number),
      refused: { status: 404, code: "NOT_FOUND" }
    })
  })

  it("fails the type-check of a program that calls an operation wrongly", async () => {
    writeFileSync(
      join(dir, "wrong.ts"),
      'import createClient from "openapi-fetch"\nimport type { paths } from "./api.d.ts"\n' +
        'const api = createClient<paths>({ baseUrl: "http://127.0.0.1:1" })\n' +
        'export const call = () => api.POST("/find_records", { body: { phone: "+447700900150" } })\n'
    )
    writeFileSync(join(dir, "tsconfig.wrong.json"), JSON.stringify({ extends: "./tsconfig.json", files: ["wrong.ts"] }))
    const typecheck = await run([
      join(root, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      join(dir, "tsconfig.wrong.json")
    ])
    expect(typecheck.status).not.toBe(0)
    // Only the wrong call is refused, naming the missing field.
    expect(typecheck.output.match(/error TS/g)).toHaveLength(1)
    expect(typecheck.output).toContain("phone_number")
  })
})
