/**
 * The COPY text lines of a list write: a row of the staging table (`STAGE_COPY` in ListsSql.ts), and
 * a row copied straight to a list (`directCopy`). Their fields follow those statements' column
 * lists. Built once per written row: plain string concatenation, no intermediate objects.
 */
import { escapeCopy, textField } from "../platform/CopyText.ts"
import type { ListEntry } from "./ListSchemas.ts"
import { NUMERIC_METRICS } from "./ListsSql.ts"

/** The entry's own creation time as COPY text, if it has a valid one. */
export const createdAt = (e: Omit<ListEntry, "phone">): string | undefined =>
  e.timestampCreated instanceof Date && !Number.isNaN(e.timestampCreated.getTime())
    ? e.timestampCreated.toISOString()
    : undefined

/** A row of `STAGE_COPY`: `seq` its place in the batch, `fresh` certainly on no list (see ListWriteSink.ts). */
export const stageLine = (
  seq: number,
  phone: string,
  e: Omit<ListEntry, "phone">,
  sticky: boolean,
  country: string | null,
  fresh: boolean
): string => {
  const m = e.metrics
  let line =
    seq +
    "\t" +
    escapeCopy(phone) +
    "\t" +
    textField(e.reason) +
    "\t" +
    textField(e.source) +
    "\t" +
    textField(country) +
    "\t" +
    (createdAt(e) ?? "\\N") +
    "\t" +
    (sticky ? "t" : "f") +
    "\t" +
    textField(e.ip) +
    "\t" +
    textField(e.osVersion) +
    "\t" +
    textField(e.browserVersion)
  if (m === undefined) return line + (fresh ? "\t\\N\t\\N\tt\n" : "\t\\N\t\\N\tf\n")
  // The numeric metrics as one float8[] literal "{1,NULL,2.5,…}": one COPY field instead of 23.
  let packed = "{"
  for (let i = 0; i < NUMERIC_METRICS.length; i++) {
    const value = m[NUMERIC_METRICS[i]!]
    if (i > 0) packed += ","
    packed += typeof value === "number" && Number.isFinite(value) ? String(value) : "NULL"
  }
  return line + "\t" + textField(m.cost_sources) + "\t" + packed + (fresh ? "}\tt\n" : "}\tf\n")
}

/** A row of `directCopy` (the phone is a canonical key: digits, nothing to escape); its audit row is made from it (`KeyOrderedLines.writeAudit`). */
export const directLine = (phone: string, e: Omit<ListEntry, "phone">, sticky: boolean): string =>
  phone +
  "\t" +
  textField(e.ip) +
  "\t" +
  textField(e.osVersion) +
  "\t" +
  textField(e.browserVersion) +
  "\t" +
  textField(e.reason) +
  "\t" +
  textField(e.source) +
  (sticky ? "\tt\n" : "\tf\n")
