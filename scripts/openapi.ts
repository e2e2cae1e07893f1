/**
 * `npm run openapi`: the OpenAPI document the HTTP server serves at `/openapi.json`, generated from
 * the route declarations without a database or a running server.
 *
 *   npm run openapi -- openapi.json      # writes the file
 *   npm run openapi                      # prints it
 */
import { writeFileSync } from "node:fs"
import { openApiDocumentOfApp } from "./openapi/document.ts"

const text = JSON.stringify(await openApiDocumentOfApp(), null, 2) + "\n"
const out = process.argv[2]
if (out === undefined) process.stdout.write(text)
else writeFileSync(out, text)
