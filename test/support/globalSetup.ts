/**
 * Runs once per `vitest run`: finds the PostgreSQL server (DATABASE_URL, else an embedded server
 * under ./.optimizer/test-pg), migrates a template database that every test file clones (a clone
 * takes ~50 ms, a fresh migration several hundred), and drops it at the end.
 */
import type { TestProject } from "vitest/node"
import { adminUrl, dropDatabase, withDatabase } from "./pgUrls.ts"
import { migrate } from "@optimizer/core"
import pg from "pg"

declare module "vitest" {
  export interface ProvidedContext {
    pgServerUrl: string
    pgTemplateDatabase: string
  }
}

export default async function setup(project: TestProject) {
  let serverUrl: string
  let stopEmbedded: (() => Promise<void>) | undefined
  if (process.env.DATABASE_URL) {
    serverUrl = process.env.DATABASE_URL
  } else {
    const { startEmbeddedPostgres } = await import("@optimizer/embedded-postgres")
    const server = await startEmbeddedPostgres({ dataDir: ".optimizer/test-pg", port: 54329 })
    serverUrl = server.url
    stopEmbedded = server.stop
  }
  const template = `optimizer_tpl_${process.pid}_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: adminUrl(serverUrl) })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${template}`)
  } finally {
    await admin.end()
  }
  await migrate(withDatabase(serverUrl, template))
  project.provide("pgServerUrl", serverUrl)
  project.provide("pgTemplateDatabase", template)
  return async () => {
    await dropDatabase(serverUrl, template)
    await stopEmbedded?.()
  }
}
