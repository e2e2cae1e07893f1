/**
 * Builds the package as it is published: the JavaScript (tsup, one file per entry of package.json
 * `exports` plus shared chunks), the declarations (`tsc -p tsconfig.build.json`), the migrations
 * (the repository's `sql/`, copied into the package), and rewrites the declarations' relative
 * imports from `.ts` (how the sources are written) to `.js` (what a consumer's TypeScript resolves
 * next to a `.d.ts`).
 *
 *   npm run build -w @optimizer/core
 */
import { execFileSync } from "node:child_process"
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bin = (name: string) => join(root, "../../node_modules/.bin", name)
const run = (cmd: string, args: ReadonlyArray<string>) => execFileSync(cmd, args, { cwd: root, stdio: "inherit" })

run(bin("tsup"), [])
run(bin("tsc"), ["-p", "tsconfig.build.json"])

const declarations = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? declarations(path) : name.endsWith(".d.ts") ? [path] : []
  })
let rewritten = 0
for (const file of declarations(join(root, "dist"))) {
  const text = readFileSync(file, "utf8")
  const next = text.replace(/((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']+)\.ts(["'])/g, "$1$2.js$3")
  if (next !== text) {
    writeFileSync(file, next)
    rewritten++
  }
}

rmSync(join(root, "sql"), { recursive: true, force: true })
cpSync(join(root, "../../sql"), join(root, "sql"), { recursive: true })
console.log(`build: declarations with rewritten imports: ${rewritten}; migrations copied to sql/`)
