/** Every benchmark `npm run bench` knows; each issue adds its own here. */
import { cleaningBenchmark } from "./cleaning.ts"
import { encryptionBenchmark } from "./encryption.ts"
import { hlrBenchmark } from "./hlr.ts"
import { httpBenchmark } from "./http.ts"
import { listCsvBenchmark } from "./list-csv.ts"
import { listsBenchmark } from "./lists.ts"
import { findRecordsBenchmark } from "./find-records.ts"
import { metricsPollingBenchmark } from "./metrics-polling.ts"
import { mmdBenchmark } from "./mmd.ts"
import { ongageJobsBenchmark } from "./ongage-jobs.ts"
import type { Benchmark } from "./support.ts"
import { sqsBenchmark } from "./sqs.ts"

export const benchmarks: ReadonlyArray<Benchmark> = [
  httpBenchmark,
  listsBenchmark,
  listCsvBenchmark,
  findRecordsBenchmark,
  metricsPollingBenchmark,
  sqsBenchmark,
  cleaningBenchmark,
  encryptionBenchmark,
  mmdBenchmark,
  hlrBenchmark,
  ongageJobsBenchmark
]
