/** The HTTP adapter: the Hono app over core services, and a server with graceful shutdown. */
export { makeApp, type AppOptions } from "./app.ts"
export { startHttpServer, type RunningServer } from "./server.ts"
export { configureHttpLog } from "./log.ts"
export { httpErrorOf } from "./errors.ts"
