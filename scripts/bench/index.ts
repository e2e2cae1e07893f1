/** Every benchmark `npm run bench` knows; each issue adds its own here. */
import { httpBenchmark } from "./http.ts"
import { listsBenchmark } from "./lists.ts"
import type { Benchmark } from "./support.ts"

export const benchmarks: ReadonlyArray<Benchmark> = [httpBenchmark, listsBenchmark]
