/** What commands print: JSON on stdout with `--json`, readable text otherwise. Logs go to stderr. */
import { Console, Effect } from "effect"

export const printJson = (value: unknown) =>
  Console.log(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v), 2))

export const printLines = (...lines: ReadonlyArray<string>) =>
  Effect.forEach(lines, (l) => Console.log(l), { discard: true })

/** A plain aligned table. */
export const printTable = <T extends object>(rows: ReadonlyArray<T>, columns: ReadonlyArray<keyof T & string>) => {
  if (rows.length === 0) return Console.log("(none)")
  const cell = (v: unknown) => (v === null || v === undefined ? "" : v instanceof Date ? v.toISOString() : String(v))
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)))
  const line = (values: ReadonlyArray<string>) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd()
  return printLines(line(columns), ...rows.map((r) => line(columns.map((c) => cell(r[c])))))
}
