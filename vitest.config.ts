import { defineConfig } from "vitest/config"

export default defineConfig({
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
