/**
 * The load generator of the find-records benchmark, run as a second process (a generator inside
 * the server's process halves what a 2-core machine can show): autocannon's API, so that each
 * request can carry a different body — a POST of the same number every time would only ever
 * touch one index page.
 *
 *   node scripts/bench/find-records-load.ts <url> <bodies.json> <connections> <seconds> [api key]
 *
 * Prints `{ requestsPerSecond, p99Ms, p50Ms, non2xx, errors }` as JSON on stdout.
 */
import { readFileSync } from "node:fs"
import autocannon from "autocannon"

const [url, bodiesFile, connections, seconds, apiKey] = process.argv.slice(2)
if (url === undefined || bodiesFile === undefined) {
  process.stderr.write("usage: find-records-load.ts <url> <bodies.json> <connections> <seconds> [api key]\n")
  process.exit(2)
}
const bodies = JSON.parse(readFileSync(bodiesFile, "utf8")) as Array<string>
let next = 0

const result = await autocannon({
  url,
  connections: Number(connections ?? 50),
  duration: Number(seconds ?? 5),
  requests: [
    {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` })
      },
      setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length]! })
    }
  ]
})

process.stdout.write(
  JSON.stringify({
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors
  })
)
