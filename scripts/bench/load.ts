/**
 * HTTP load from a second process (autocannon's CLI), as for the reference figures of `docs/performance.md` "Reference measurements":
 * a load generator inside the server's own process halves what a 2-core machine can show.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const AUTOCANNON = fileURLToPath(new URL("../../node_modules/autocannon/autocannon.js", import.meta.url))

export interface LoadResult {
  readonly requestsPerSecond: number
  readonly p99Ms: number
  readonly non2xx: number
  readonly errors: number
}

export const loadTest = (
  url: string,
  options: {
    connections?: number
    seconds?: number
    /** Requests per second of each connection (autocannon's `-r`); unset: as fast as answered. */
    connectionRate?: number
    method?: string
    headers?: Record<string, string>
    body?: string
  } = {}
): Promise<LoadResult> => {
  const args = [AUTOCANNON, "-j", "-c", String(options.connections ?? 50), "-d", String(options.seconds ?? 5)]
  if (options.connectionRate !== undefined) args.push("-r", String(options.connectionRate))
  if (options.method) args.push("-m", options.method)
  for (const [k, v] of Object.entries(options.headers ?? {})) args.push("-H", `${k}=${v}`)
  if (options.body !== undefined) args.push("-b", options.body)
  args.push(url)
  return new Promise((resolve, reject) =>
    execFile(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      if (err) return reject(err)
      const r = JSON.parse(stdout) as {
        requests: { average: number }
        latency: { p99: number }
        non2xx: number
        errors: number
      }
      resolve({
        requestsPerSecond: Math.round(r.requests.average),
        p99Ms: r.latency.p99,
        non2xx: r.non2xx,
        errors: r.errors
      })
    })
  )
}
