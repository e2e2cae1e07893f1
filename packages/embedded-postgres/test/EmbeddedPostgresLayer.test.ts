/**
 * The scoped Effect layer over the embedded PostgreSQL: the server runs for the layer's lifetime
 * (started on acquire, stopped on release), and a start that cannot happen is a typed failure.
 */
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Exit, Redacted } from "effect"
import pg from "pg"
import { afterAll, describe, expect, it } from "vitest"
import { freePort } from "../../../test/support/ports.ts"
import { EmbeddedPostgres, EmbeddedPostgresError, isPortInUse } from "../src/index.ts"

const TIMEOUT = 180_000
const log = () => {}

const cleanup: Array<string> = []
afterAll(async () => {
  for (const dir of cleanup) await fs.rm(dir, { recursive: true, force: true })
})

/** A temporary folder that the OS user `postgres` can traverse (mkdtemp makes it 700). */
const tempDataDir = async (): Promise<string> => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "optimizer-embedded-pg-layer-"))
  await fs.chmod(dir, 0o755)
  cleanup.push(dir)
  return path.join(dir, "pg")
}

describe("EmbeddedPostgres.layer", () => {
  it(
    "runs the server while the layer is in use and stops it on release",
    async () => {
      const dataDir = await tempDataDir()
      const port = await freePort()
      const program = Effect.gen(function* () {
        const server = yield* EmbeddedPostgres
        expect(server.reused).toBe(false)
        expect(server.port).toBe(port)
        expect(String(server.url)).not.toContain("postgres://") // redacted when printed
        return yield* Effect.promise(async () => {
          const client = new pg.Client({ connectionString: Redacted.value(server.url) })
          await client.connect()
          try {
            return (await client.query("SELECT current_database() AS db")).rows[0] as { db: string }
          } finally {
            await client.end()
          }
        })
      })
      const row = await Effect.runPromise(program.pipe(Effect.provide(EmbeddedPostgres.layer({ dataDir, port, log }))))
      expect(row).toEqual({ db: "optimizer" })
      expect(await isPortInUse(port)).toBe(false)
    },
    TIMEOUT
  )

  it(
    "fails with EmbeddedPostgresError when the server cannot start",
    async () => {
      const dataDir = await tempDataDir()
      const blocker = net.createServer()
      await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
      const { port } = blocker.address() as net.AddressInfo
      try {
        const exit = await Effect.runPromiseExit(
          Effect.scoped(EmbeddedPostgres.start({ dataDir, port, log })).pipe(Effect.flip)
        )
        expect(Exit.isSuccess(exit)).toBe(true)
        if (Exit.isSuccess(exit)) {
          expect(exit.value).toBeInstanceOf(EmbeddedPostgresError)
          expect(exit.value.message).toContain(`port ${port} on 127.0.0.1 is already in use`)
        }
      } finally {
        await new Promise<void>((resolve) => blocker.close(() => resolve()))
      }
    },
    TIMEOUT
  )
})
