/**
 * A worker process's job handlers (`runWorkers`) beside a test app, on the same database and file
 * store, with pg-boss's fastest timings so that a queued job starts within about half a second.
 *
 *   const worker = await startTestWorker({ DATABASE_URL: app.db.url, STORAGE_DIR: dir, AES_KEY })
 *   afterAll(() => worker.close())
 */
import { Effect, Fiber, Result } from "effect"
import { makeRuntime, parseSettings, runWorkers, type Env } from "@optimizer/core"

export interface TestWorker {
  readonly close: () => Promise<void>
}

export const startTestWorker = async (env: Env): Promise<TestWorker> => {
  const parsed = parseSettings({ LOG_LEVEL: "Warn", ...env })
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  const runtime = makeRuntime(parsed.success, {
    role: "worker",
    jobs: {
      queueDefaults: { heartbeatSeconds: 10, retryDelaySeconds: 1, retryDelayMaxSeconds: 2 },
      timings: {
        pollingIntervalSeconds: 0.5,
        superviseIntervalSeconds: 1,
        cronIntervalSeconds: 1,
        drainSeconds: 2,
        stopTimeoutSeconds: 5
      }
    }
  })
  let resolveStarted = () => {}
  let rejectStarted = (_error: Error) => {}
  const started = new Promise<void>((resolve, reject) => {
    resolveStarted = resolve
    rejectStarted = reject
  })
  const fiber = runtime.runFork(
    Effect.scoped(
      runWorkers().pipe(
        Effect.tap(() => Effect.sync(() => resolveStarted())),
        Effect.andThen(Effect.never)
      )
    ).pipe(Effect.tapCause((cause) => Effect.sync(() => rejectStarted(new Error(String(cause))))))
  )
  await started
  return {
    close: async () => {
      await runtime.runPromise(Fiber.interrupt(fiber))
      await runtime.dispose()
    }
  }
}
