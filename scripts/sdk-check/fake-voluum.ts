/**
 * A fake Voluum (test/fakes/voluum.ts) for scripts/sdk-check.sh: seeds a day of report rows, prints
 * `{"url", "accessId", "accessKey", "trafficSourceId"}` as one JSON line, and serves until SIGTERM.
 *
 *   node --conditions=@optimizer/source scripts/sdk-check/fake-voluum.ts
 */
import { reportRow } from "../../test/fakes/seed.ts"
import { startFakeVoluum } from "../../test/fakes/voluum.ts"

const TRAFFIC_SOURCE = "sdk-check-traffic-source"
const voluum = await startFakeVoluum()
const rows: ReadonlyArray<[string, string]> = [
  ["447700900301", "Android 13"],
  ["447700900302", "Windows 10"],
  ["447700900303", "iOS 17.4"]
]
for (const [phone, osVersion] of rows) {
  voluum.state.reportRows.push({
    trafficSourceId: TRAFFIC_SOURCE,
    at: new Date("2025-05-06T10:00:00Z"),
    fields: reportRow({ customVariable1: phone, osVersion })
  })
}
process.stdout.write(
  `${JSON.stringify({ url: voluum.url, ...voluum.state.credentials, trafficSourceId: TRAFFIC_SOURCE })}\n`
)
const stop = () => void voluum.close().then(() => process.exit(0))
process.on("SIGTERM", stop)
