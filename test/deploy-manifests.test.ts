/**
 * The deployment files read as a cluster or compose would: every Kubernetes manifest in deploy/k8s
 * parses, is listed by the kustomization, and hangs together (selectors match their pods, HPAs and
 * PDBs point at Deployments that exist, every env source is defined, the API is ready on /health,
 * every process runs a command the CLI has, as the image's non-root user); the ConfigMap, the
 * Secret and docker-compose.yml only name variables .env.example documents. No cluster is needed
 * (`podman play kube` runs them where it can: scripts/image-check.sh, docs/deployment.md).
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { parseSettings } from "@optimizer/core"
import { parseAllDocuments } from "yaml"

const root = join(import.meta.dirname, "..")
const k8sDir = join(root, "deploy/k8s")

type Doc = Record<string, any>

const readYaml = (path: string): Array<Doc> =>
  parseAllDocuments(readFileSync(path, "utf8"), { merge: true }).map((doc) => {
    expect(doc.errors, `${path}: ${doc.errors.map((e) => e.message).join("; ")}`).toEqual([])
    return doc.toJS() as Doc
  })

const files = readdirSync(k8sDir).filter((f) => f.endsWith(".yaml"))
const kustomization = readYaml(join(k8sDir, "kustomization.yaml"))[0]!
const manifests = files
  .filter((f) => f !== "kustomization.yaml")
  .flatMap((file) => readYaml(join(k8sDir, file)).map((doc) => ({ file, doc })))
const docs = manifests.map((m) => m.doc)
const ofKind = (kind: string) => docs.filter((d) => d.kind === kind)
const named = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata?.name === name)

/** Every variable .env.example names, set or commented out (`# NAME=`). */
const documentedEnv = new Set(
  [...readFileSync(join(root, ".env.example"), "utf8").matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!)
)

const API_VERSIONS: Record<string, string> = {
  Namespace: "v1",
  ServiceAccount: "v1",
  ConfigMap: "v1",
  Secret: "v1",
  Service: "v1",
  Deployment: "apps/v1",
  Job: "batch/v1",
  HorizontalPodAutoscaler: "autoscaling/v2",
  PodDisruptionBudget: "policy/v1"
}

/** The first argument of each process: commands of packages/adapters-cli (README, "Processes"). */
const PROCESS_COMMANDS = new Set(["serve", "worker", "scheduler", "consume", "migrate"])

const podSpecs = () =>
  [...ofKind("Deployment"), ...ofKind("Job")].map((d) => ({
    name: d.metadata.name as string,
    spec: d.spec.template.spec
  }))

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v)

describe("deploy/k8s", () => {
  it("every file is listed by the kustomization and every listed file exists", () => {
    expect([...kustomization.resources].sort()).toEqual(files.filter((f) => f !== "kustomization.yaml").sort())
  })

  it("every object has a known kind, its apiVersion, a name and the optimizer namespace", () => {
    for (const { file, doc } of manifests) {
      expect(API_VERSIONS[doc.kind], `${file}: kind ${doc.kind}`).toBeDefined()
      expect(doc.apiVersion, `${file}: ${doc.kind}`).toBe(API_VERSIONS[doc.kind])
      expect(doc.metadata?.name, file).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      if (doc.kind !== "Namespace") expect(doc.metadata.namespace, `${file}: ${doc.metadata.name}`).toBe("optimizer")
    }
  })

  it("has the API, worker, consumer and scheduler Deployments, scaled apart, and the migration Job", () => {
    const byCommand = new Map(ofKind("Deployment").map((d) => [d.spec.template.spec.containers[0].args[0], d]))
    expect([...byCommand.keys()].sort()).toEqual(["consume", "scheduler", "serve", "worker"])
    for (const d of byCommand.values()) expect(d.spec.replicas).toBeGreaterThanOrEqual(2)
    const [job] = ofKind("Job")
    expect(job?.spec.template.spec.containers[0].args).toEqual(["migrate"])
    expect(job?.spec.template.spec.restartPolicy).toBe("Never")
    // Migrations belong to the release's Job, not to every API replica.
    expect(byCommand.get("serve")?.spec.template.spec.containers[0].args).not.toContain("--migrate")
  })

  it("every Deployment's selector matches its pods", () => {
    for (const d of ofKind("Deployment")) {
      expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), d.metadata.name).toBe(true)
    }
  })

  it("every pod runs the image's commands as the non-root user, with resources, reading defined env sources", () => {
    for (const { name, spec } of podSpecs()) {
      expect(spec.securityContext.runAsNonRoot, name).toBe(true)
      expect(spec.securityContext.runAsUser, name).toBe(1000)
      expect(named("ServiceAccount", spec.serviceAccountName), name).toBeDefined()
      for (const c of spec.containers) {
        expect(c.image, name).toBe("optimizer")
        expect(PROCESS_COMMANDS.has(c.args[0]), `${name}: ${c.args[0]}`).toBe(true)
        expect(c.resources.requests.memory, name).toBeDefined()
        expect(c.resources.limits.memory, name).toBeDefined()
        expect(c.securityContext.allowPrivilegeEscalation, name).toBe(false)
        for (const source of c.envFrom) {
          if (source.configMapRef) expect(named("ConfigMap", source.configMapRef.name), name).toBeDefined()
          if (source.secretRef) expect(named("Secret", source.secretRef.name), name).toBeDefined()
        }
        // A read-only root needs a writable /tmp.
        if (c.securityContext.readOnlyRootFilesystem === true) {
          const tmp = c.volumeMounts?.find((m: Doc) => m.mountPath === "/tmp")
          expect(tmp, `${name}: /tmp`).toBeDefined()
          expect(spec.volumes.find((v: Doc) => v.name === tmp.name)?.emptyDir, name).toBeDefined()
        }
      }
    }
  })

  it("the API is ready on /health at its port, alive on the port, and reachable through its Service", () => {
    const api = named("Deployment", "optimizer-api")!
    const c = api.spec.template.spec.containers[0]
    const port = c.ports.find((p: Doc) => p.name === "http")
    expect(String(port.containerPort)).toBe(named("ConfigMap", "optimizer-config")!.data.PORT)
    expect(c.readinessProbe.httpGet).toEqual({ path: "/health", port: "http" })
    // /health pings the database: a liveness on it would restart every pod during a database outage.
    expect(c.livenessProbe.httpGet).toBeUndefined()
    const service = named("Service", "optimizer-api")!
    expect(matches(service.spec.selector, api.spec.template.metadata.labels)).toBe(true)
    expect(service.spec.ports[0].targetPort).toBe("http")
  })

  it("HPAs scale Deployments that exist; PDBs select pods of a Deployment", () => {
    expect(
      ofKind("HorizontalPodAutoscaler")
        .map((h) => h.spec.scaleTargetRef.name)
        .sort()
    ).toEqual(["optimizer-api", "optimizer-consumer"])
    for (const h of ofKind("HorizontalPodAutoscaler")) {
      expect(named("Deployment", h.spec.scaleTargetRef.name), h.metadata.name).toBeDefined()
      expect(h.spec.minReplicas).toBeLessThanOrEqual(h.spec.maxReplicas)
    }
    const pdbs = ofKind("PodDisruptionBudget")
    expect(pdbs).toHaveLength(ofKind("Deployment").length)
    for (const p of pdbs) {
      const targets = ofKind("Deployment").filter((d) =>
        matches(p.spec.selector.matchLabels, d.spec.template.metadata.labels)
      )
      expect(
        targets.map((d) => d.metadata.name),
        p.metadata.name
      ).toHaveLength(1)
    }
  })

  it("the ConfigMap and the Secret set only variables .env.example documents", () => {
    const keys = [
      ...Object.keys(named("ConfigMap", "optimizer-config")!.data),
      ...Object.keys(named("Secret", "optimizer-secrets")!.stringData)
    ]
    expect(keys.filter((k) => k !== "NODE_ENV" && !documentedEnv.has(k))).toEqual([])
    // Pods share no disk: files must go to S3.
    expect(named("ConfigMap", "optimizer-config")!.data.S3_BUCKET).toBeTruthy()
  })
})

describe("docker-compose.yml", () => {
  const compose = readYaml(join(root, "docker-compose.yml"))[0]!

  it("runs PostgreSQL, the API with migrations, a worker, the scheduler and the SQS consumer", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["api", "consumer", "db", "scheduler", "worker"])
    expect(compose.services.api.command).toEqual(["serve", "--migrate"])
    expect(compose.services.worker.command).toEqual(["worker"])
    expect(compose.services.scheduler.command).toEqual(["scheduler"])
    expect(compose.services.consumer.command).toEqual(["consume"])
  })

  it("takes secrets from .env, and only the API keeps the image's health check", () => {
    for (const name of ["api", "worker", "scheduler", "consumer"]) {
      const service = compose.services[name]
      expect(service.env_file, name).toBe(".env")
      expect(service.healthcheck?.disable === true, name).toBe(name !== "api")
      expect(Number.parseInt(service.stop_grace_period, 10), name).toBeGreaterThanOrEqual(45)
    }
    expect(compose.services.db.environment.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD/)
    expect(readFileSync(join(root, "docker-compose.yml"), "utf8")).not.toMatch(/change-me|AES_KEY=|SECRET_ACCESS_KEY:/)
  })
})

describe("one port everywhere", () => {
  it("the default, .env.example, the Dockerfile, compose and the ConfigMap all say 8000", () => {
    const parsed = parseSettings({ DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" })
    expect(Result.isSuccess(parsed) && parsed.success.port).toBe(8000)
    expect(readFileSync(join(root, ".env.example"), "utf8")).toMatch(/^PORT=8000$/m)
    const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8")
    expect(dockerfile).toMatch(/\bPORT=8000\b/)
    expect(dockerfile).toMatch(/^EXPOSE 8000$/m)
    const compose = readYaml(join(root, "docker-compose.yml"))[0]!
    expect(compose.services.api.ports).toEqual(["8000:8000"])
    expect(named("ConfigMap", "optimizer-config")!.data.PORT).toBe("8000")
  })
})

describe(".env.example", () => {
  it("names every variable the Config service reads", () => {
    const config = readFileSync(join(root, "packages/core/src/platform/Config.ts"), "utf8")
    const read = [...new Set([...config.matchAll(/\br\.[a-zA-Z]+\("([A-Z][A-Z0-9_]*)"/g)].map((m) => m[1]!))]
    expect(read.length).toBeGreaterThan(50)
    const text = readFileSync(join(root, ".env.example"), "utf8")
    // Set or commented out (`# NAME=`), or, for an alias such as UPLOAD_ROOT, named in a comment.
    expect(read.filter((name) => !documentedEnv.has(name) && !new RegExp(`\\b${name}\\b`).test(text))).toEqual([])
  })
})
