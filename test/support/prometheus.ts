/**
 * A strict parser of Prometheus's text exposition format (version 0.0.4), for tests: every line is
 * a `# HELP`, a `# TYPE`, or a sample of a family declared by a `# TYPE` line above it; names,
 * label names and escapes are checked; a family is declared once; a histogram has `_bucket` series
 * with `le` (cumulative, ending in `+Inf`), `_sum` and `_count`. Anything else throws, naming the line.
 *
 *   const scrape = parsePrometheus(await (await fetch(`${url}/metrics`)).text())
 *   scrape.value("optimizer_http_requests_total", { route: "/files", method: "GET", status: "200" })
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped"

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly type: MetricType
  readonly help: string | undefined
  readonly samples: ReadonlyArray<Sample>
}

export interface Scrape {
  readonly families: ReadonlyMap<string, Family>
  /** The value of the series with exactly these labels, or 0 when it is absent (a counter not yet moved). */
  readonly value: (name: string, labels?: Readonly<Record<string, string>>) => number
  /** The sum over every series of `name` whose labels include `labels`. */
  readonly sum: (name: string, labels?: Readonly<Record<string, string>>) => number
  readonly samples: ReadonlyArray<Sample>
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES: ReadonlyArray<MetricType> = ["counter", "gauge", "histogram", "summary", "untyped"]

const parseValue = (text: string, where: string): number => {
  if (text === "+Inf") return Infinity
  if (text === "-Inf") return -Infinity
  if (text === "NaN") return NaN
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text)) throw new Error(`${where}: bad value "${text}"`)
  return Number(text)
}

/** `{a="x",b="y\"z"}` from position `i` (at the `{`); returns the labels and the position after `}`. */
const parseLabels = (line: string, start: number, where: string): [Record<string, string>, number] => {
  const labels: Record<string, string> = {}
  let i = start + 1
  for (;;) {
    if (line[i] === "}") return [labels, i + 1]
    const eq = line.indexOf("=", i)
    if (eq < 0) throw new Error(`${where}: label without "="`)
    const name = line.slice(i, eq)
    if (!LABEL_NAME.test(name)) throw new Error(`${where}: bad label name "${name}"`)
    if (name in labels) throw new Error(`${where}: label "${name}" twice`)
    if (line[eq + 1] !== '"') throw new Error(`${where}: label value of "${name}" not quoted`)
    let j = eq + 2
    let value = ""
    for (;;) {
      const ch = line[j]
      if (ch === undefined) throw new Error(`${where}: unterminated label value`)
      if (ch === "\\") {
        const next = line[j + 1]
        if (next === "\\") value += "\\"
        else if (next === '"') value += '"'
        else if (next === "n") value += "\n"
        else throw new Error(`${where}: bad escape "\\${next}" in a label value`)
        j += 2
        continue
      }
      if (ch === '"') break
      value += ch
      j++
    }
    labels[name] = value
    i = j + 1
    if (line[i] === ",") i++
    else if (line[i] !== "}") throw new Error(`${where}: expected "," or "}" after label "${name}"`)
  }
}

const familyOf = (name: string, types: ReadonlyMap<string, MetricType>): string | undefined => {
  if (types.has(name)) return name
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length)
      const type = types.get(base)
      if (type === "histogram" || (type === "summary" && suffix !== "_bucket")) return base
    }
  }
  return undefined
}

const sameLabels = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) => {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k])
}
const includes = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) =>
  Object.entries(b).every(([k, v]) => a[k] === v)

export const parsePrometheus = (text: string): Scrape => {
  if (text !== "" && !text.endsWith("\n")) throw new Error("the exposition does not end with a newline")
  const types = new Map<string, MetricType>()
  const helps = new Map<string, string>()
  const samples: Array<Sample & { family: string }> = []
  const seen = new Set<string>()
  text.split("\n").forEach((line, n) => {
    const where = `line ${n + 1} ("${line.slice(0, 80)}")`
    if (line === "") return
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([^ ]+)(?: (.*))?$/.exec(line)
      if (m === null) return // a comment
      const [, kind, name, rest] = m
      if (!METRIC_NAME.test(name!)) throw new Error(`${where}: bad metric name`)
      if (kind === "TYPE") {
        if (types.has(name!)) throw new Error(`${where}: TYPE of "${name}" declared twice`)
        if (!TYPES.includes(rest as MetricType)) throw new Error(`${where}: unknown type "${rest}"`)
        if (samples.some((s) => s.family === name)) throw new Error(`${where}: TYPE after samples of "${name}"`)
        types.set(name!, rest as MetricType)
      } else {
        if (helps.has(name!)) throw new Error(`${where}: HELP of "${name}" declared twice`)
        helps.set(name!, rest ?? "")
      }
      return
    }
    const nameEnd = line.search(/[{ ]/)
    if (nameEnd <= 0) throw new Error(`${where}: not a sample`)
    const name = line.slice(0, nameEnd)
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`)
    let labels: Record<string, string> = {}
    let i = nameEnd
    if (line[i] === "{") [labels, i] = parseLabels(line, i, where)
    if (line[i] !== " ") throw new Error(`${where}: expected a space before the value`)
    const parts = line.slice(i + 1).split(" ")
    if (parts.length > 2 || parts[0] === "") throw new Error(`${where}: expected "value [timestamp]"`)
    const value = parseValue(parts[0]!, where)
    const family = familyOf(name, types)
    if (family === undefined) throw new Error(`${where}: sample of "${name}" without a TYPE line`)
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(key)) throw new Error(`${where}: the series appears twice`)
    seen.add(key)
    if (types.get(family) === "histogram" && name.endsWith("_bucket") && labels.le === undefined) {
      throw new Error(`${where}: a bucket without "le"`)
    }
    if (types.get(family) === "counter" && value < 0) throw new Error(`${where}: a negative counter`)
    samples.push({ name, labels, value, family })
  })

  // Histograms: buckets cumulative, +Inf present and equal to _count.
  for (const [name, type] of types) {
    if (type !== "histogram") continue
    const buckets = samples.filter((s) => s.name === `${name}_bucket`)
    const groups = new Map<string, Array<Sample>>()
    for (const b of buckets) {
      const { le: _le, ...rest } = b.labels
      const k = JSON.stringify(Object.entries(rest).sort())
      groups.set(k, [...(groups.get(k) ?? []), b])
    }
    for (const [k, group] of groups) {
      const ordered = group
        .map((b) => ({ le: parseValue(b.labels.le!, name), value: b.value }))
        .sort((a, b) => a.le - b.le)
      for (let i = 1; i < ordered.length; i++) {
        if (ordered[i]!.value < ordered[i - 1]!.value) throw new Error(`${name}${k}: buckets are not cumulative`)
      }
      const last = ordered[ordered.length - 1]
      if (last === undefined || last.le !== Infinity) throw new Error(`${name}${k}: no +Inf bucket`)
      const labels = Object.fromEntries(JSON.parse(k) as Array<[string, string]>)
      const count = samples.find((s) => s.name === `${name}_count` && sameLabels(s.labels, labels))
      if (count === undefined || count.value !== last.value)
        throw new Error(`${name}${k}: _count is not the +Inf bucket`)
    }
  }

  const families = new Map<string, Family>()
  for (const [name, type] of types) {
    families.set(name, { name, type, help: helps.get(name), samples: samples.filter((s) => s.family === name) })
  }
  return {
    families,
    samples,
    value: (name, labels = {}) => samples.find((s) => s.name === name && sameLabels(s.labels, labels))?.value ?? 0,
    sum: (name, labels = {}) =>
      samples.filter((s) => s.name === name && includes(s.labels, labels)).reduce((a, s) => a + s.value, 0)
  }
}
