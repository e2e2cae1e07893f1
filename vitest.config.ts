import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

// The workspace runs @optimizer/core from its TypeScript sources: its package.json `exports` map the
// "@optimizer/source" condition to src/*.ts (an installed package resolves dist/). Processes the
// tests start get the same condition (`--conditions=@optimizer/source`, or the CLI's bin).
// (Vitest's own default for the server conditions drops "module": some packages' "module" builds are not Node ESM.)
const conditions = ["@optimizer/source", ...defaultServerConditions.filter((c) => c !== "module")]

export default defineConfig({
  ssr: { resolve: { conditions } },
  plugins: [
    {
      name: "optimizer-source-condition",
      // Every environment vitest creates (the tests', the global setup's) resolves the sources.
      configEnvironment: () => ({ resolve: { conditions } })
    }
  ],
  test: {
    globalSetup: ["./test/support/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["packages/*/test/**/*.test.ts"] }
      },
      {
        extends: true,
        test: { name: "e2e", include: ["test/**/*.test.ts"] }
      }
    ]
  }
})
