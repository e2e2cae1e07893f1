/**
 * The OpenAPI document of the HTTP app, as `/openapi.json` serves it, built without a database: the
 * app's runtime is built on first use, and making the app and its document does not use it.
 */
import { Result } from "effect"
import { makeRuntime, parseSettings } from "@optimizer/core"
import { makeApp } from "@optimizer/adapters-http"
import { VERSION } from "../../packages/adapters-cli/src/version.ts"

export const openApiDocumentOfApp = async (): Promise<unknown> => {
  const settings = parseSettings({ DATABASE_URL: "postgres://unused@127.0.0.1:1/unused", LOG_LEVEL: "Error" })
  if (Result.isFailure(settings)) throw new Error(settings.failure.message)
  const runtime = makeRuntime(settings.success)
  try {
    return makeApp(runtime, { corsOrigins: [], version: VERSION }).document
  } finally {
    await runtime.dispose()
  }
}
