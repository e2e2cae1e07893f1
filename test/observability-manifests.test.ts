/**
 * The operators' files read as Prometheus and Grafana would: deploy/prometheus/alerts.yml parses as
 * a rule file (each alert with an expression, a severity and a runbook that docs/observability.md
 * has), deploy/grafana/optimizer.json as a dashboard (unique panel ids, queries on the datasource
 * variable). Every metric either names is one the code exports, every label they filter or group
 * by is one that metric has, and docs/observability.md documents every exported metric.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { exportedMetricNames, prometheusMetrics } from "@optimizer/core"

const root = join(import.meta.dirname, "..")
const read = (path: string) => readFileSync(join(root, path), "utf8")

/** Labels of each exposed series name (a histogram's `_bucket` has `le` too). */
const labelsOf = new Map<string, ReadonlyArray<string>>()
for (const family of Object.values(prometheusMetrics)) {
  const name = family.metric.id
  labelsOf.set(name, family.labels)
  if (family.metric.type === "Histogram") {
    labelsOf.set(`${name}_bucket`, [...family.labels, "le"])
    labelsOf.set(`${name}_sum`, family.labels)
    labelsOf.set(`${name}_count`, family.labels)
  }
}

/** Checks a PromQL expression: the metrics it names exist, and its matchers and groupings use their labels. */
const checkExpression = (where: string, expr: string) => {
  const names = [...expr.matchAll(/\b(optimizer_[a-z0-9_]+)\b(?:\{([^}]*)\})?/g)]
  expect(names.length, `${where}: names no optimizer metric: ${expr}`).toBeGreaterThan(0)
  const labels = new Set<string>()
  for (const [, name, matchers] of names) {
    expect(exportedMetricNames(), `${where}: ${name} is not exported by the code`).toContain(name)
    const own = labelsOf.get(name!) ?? []
    own.forEach((l) => labels.add(l))
    for (const [, label] of (matchers ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      expect(own, `${where}: ${name} has no label "${label}"`).toContain(label)
    }
  }
  for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of list!
      .split(",")
      .map((l) => l.trim())
      .filter((l) => l !== "")) {
      expect([...labels], `${where}: groups by "${label}", a label of none of its metrics`).toContain(label)
    }
  }
}

const docs = read("docs/observability.md")
/** GitHub's anchors of the doc's headings. */
const anchors = new Set(
  [...docs.matchAll(/^#+ (.+)$/gm)].map((m) =>
    m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^a-z0-9 _-]/g, "")
      .replace(/ /g, "-")
  )
)

describe("deploy/prometheus/alerts.yml", () => {
  const rules = parse(read("deploy/prometheus/alerts.yml")) as {
    groups: Array<{ name: string; rules: Array<Record<string, any>> }>
  }
  const alerts = rules.groups.flatMap((g) => g.rules)

  it("has the alerts an operator needs, each with an expression, a severity and a runbook in the docs", () => {
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        "OptimizerJobsFailing",
        "OptimizerConsumerLagGrowing",
        "OptimizerDeadLetterQueueNotEmpty",
        "OptimizerSchedulerMissedRun",
        "OptimizerHttp5xxRate",
        "OptimizerExternalApiErrors"
      ])
    )
    expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length)
    for (const alert of alerts) {
      expect(typeof alert.expr, alert.alert).toBe("string")
      expect(["warning", "critical"], alert.alert).toContain(alert.labels?.severity)
      expect(alert.annotations?.summary, alert.alert).toBeTruthy()
      const runbook = String(alert.annotations?.runbook)
      expect(runbook, alert.alert).toBe(`docs/observability.md#${alert.alert.toLowerCase()}`)
      expect([...anchors], `${alert.alert}: docs/observability.md has no heading for it`).toContain(
        alert.alert.toLowerCase()
      )
      if (alert.for !== undefined) expect(alert.for).toMatch(/^\d+[smh]$/)
    }
  })

  it("names only metrics and labels the code exports", () => {
    for (const alert of alerts) checkExpression(alert.alert, alert.expr)
  })
})

describe("deploy/grafana/optimizer.json", () => {
  const dashboard = JSON.parse(read("deploy/grafana/optimizer.json")) as {
    uid: string
    panels: Array<{
      id: number
      type: string
      title: string
      targets?: Array<{ expr: string; datasource: { uid: string } }>
    }>
  }

  it("is a dashboard with unique panel ids, each graph querying the Prometheus datasource variable", () => {
    expect(dashboard.uid).toBe("optimizer")
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length)
    const graphs = dashboard.panels.filter((p) => p.type !== "row")
    expect(graphs.length).toBeGreaterThan(10)
    for (const panel of graphs) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0)
      for (const target of panel.targets!) expect(target.datasource.uid).toBe("${datasource}")
    }
  })

  it("names only metrics and labels the code exports, and shows every metric family", () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })))
    for (const { title, expr } of exprs) checkExpression(title, expr)
    const shown = exprs.map((e) => e.expr).join("\n")
    const hidden = Object.values(prometheusMetrics)
      .map((f) => f.metric.id)
      .filter((name) => name !== "optimizer_process_info" && !shown.includes(name))
    expect(hidden).toEqual([])
  })
})

describe("docs/observability.md", () => {
  it("documents every exported metric", () => {
    const missing = Object.values(prometheusMetrics)
      .map((f) => f.metric.id)
      .filter((name) => !docs.includes(`\`${name}\``))
    expect(missing).toEqual([])
  })
})
