import { defineConfig } from "tsup"

// JS only: TypeScript 7 has no JS API, so `tsup --dts` cannot run; `tsc -p tsconfig.build.json` writes the .d.ts.
export default defineConfig({
  entry: ["src/index.ts", "src/promise.ts"],
  format: ["esm"],
  target: "node22",
  platform: "node",
  dts: false,
  sourcemap: true,
  clean: true,
  splitting: true,
  external: [
    "effect",
    /^@effect\//,
    "pg",
    "pg-copy-streams",
    "pg-boss",
    /^@aws-sdk\//,
    "libphonenumber-js",
    "csv-parse"
  ]
})
