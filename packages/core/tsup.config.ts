import { defineConfig } from "tsup"

/** The package's entry points (package.json `exports`): the curated root, the Promise facade, one per domain. */
export const DOMAIN_ENTRIES = [
  "phone",
  "encryption",
  "classification",
  "lists",
  "cleaning",
  "voluum",
  "hlr",
  "mmd",
  "ongage",
  "records",
  "exports",
  "jobs",
  "config",
  "errors",
  "migrations",
  "platform"
] as const

// JS only: TypeScript 7 has no JS API, so `tsup --dts` cannot run; `tsc -p tsconfig.build.json` writes the .d.ts
// (scripts/build.ts). No source maps: the sources are not shipped, so a map would point at nothing.
export default defineConfig({
  entry: {
    index: "src/index.ts",
    promise: "src/promise.ts",
    ...Object.fromEntries(DOMAIN_ENTRIES.map((name) => [`entries/${name}`, `src/entries/${name}.ts`]))
  },
  format: ["esm"],
  target: "node22",
  platform: "node",
  dts: false,
  sourcemap: false,
  clean: true,
  splitting: true,
  // Every dependency stays an import of the consumer's node_modules (none is bundled).
  external: [
    "effect",
    /^@effect\//,
    "pg",
    "pg-copy-streams",
    "pg-boss",
    /^@aws-sdk\//,
    "libphonenumber-js",
    /^libphonenumber-js\//,
    "csv-parse",
    /^csv-parse\//
  ]
})
