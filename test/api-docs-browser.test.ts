/**
 * `/docs` as a person uses it: headless Chromium (Debian's `chromium` package, driven by
 * playwright-core) opens the page, authorises with an API key, runs `GET /lists/counts` with
 * "Execute" and sees its 200 and body, against the server on loopback over PostgreSQL. Every
 * request the page makes goes to that server (no CDN, no validator).
 *
 * `.ci/run` installs Chromium when it is missing. Without it the test fails under CI (CI=true);
 * elsewhere it is skipped with the reason, as a developer's machine may have no Chromium.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium, type BrowserContext } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "./support/app.ts"

const CHROMIUM = "/usr/bin/chromium"
const inCi =
  process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false" && process.env.CI !== "0"
const MISSING = `Debian's chromium is not installed at ${CHROMIUM}: install it with \`apt-get install -y --no-install-recommends chromium\` (as root; .ci/run does this)`

/** Chromium's flags for a sandbox without a display, GPU or outside network. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

describe("/docs in headless Chromium", () => {
  let app: TestApp
  let key: string
  let profile: string | undefined
  let browser: BrowserContext | undefined

  beforeAll(async () => {
    app = await startTestApp()
    key = await app.createKey("viewer")
  })
  afterAll(async () => {
    await browser?.close()
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true })
    await app?.close()
  })

  it("authorises with an API key, runs GET /lists/counts from the page and shows its response", async (ctx) => {
    if (!existsSync(CHROMIUM)) {
      if (inCi) throw new Error(MISSING)
      ctx.skip(`${MISSING}. Skipped outside CI (CI is unset).`)
    }
    profile = mkdtempSync(join(tmpdir(), "optimizer-chromium-"))
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS
    })
    const page = browser.pages()[0] ?? (await browser.newPage())
    const origin = new URL(app.url).origin
    const elsewhere: Array<string> = []
    await page.route("**/*", (route) => {
      const url = route.request().url()
      if (url.startsWith(origin + "/") || url.startsWith("data:")) return route.continue()
      elsewhere.push(url)
      return route.abort()
    })

    // Errors of the page (a script failing, a load refused by the Content-Security-Policy).
    const errors: Array<string> = []
    page.on("pageerror", (error) => errors.push(String(error)))
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text())
    })

    await page.goto(`${app.url}/docs`)
    // Descriptions render as markdown: the role is bold, not `**viewer**`.
    const counts = page.locator("#operations-lists-getListsCounts")
    await counts.waitFor({ timeout: 20_000 })

    await page.locator(".auth-wrapper button.authorize").click()
    const apiKeyForm = page.locator(".modal-ux .auth-container").filter({ hasText: "X-API-Key" })
    await apiKeyForm.locator("input").fill(key)
    await apiKeyForm.locator("button.authorize").click()
    await expect.poll(() => apiKeyForm.textContent()).toContain("Authorized")
    await apiKeyForm.locator("button.btn-done").click()

    await counts.locator(".opblock-summary").click()
    await expect.poll(() => counts.locator(".opblock-description-wrapper strong").first().textContent()).toBe("viewer")
    await counts.locator("button.execute").click()
    const live = counts.locator(".live-responses-table")
    await live.waitFor({ timeout: 20_000 })
    const row = live.locator("tbody tr.response").first()
    expect((await row.locator(".response-col_status").textContent())?.trim()).toBe("200")
    const body = JSON.parse((await row.locator(".response-col_description pre").first().textContent()) ?? "")
    expect(body).toEqual({ blacklist: 0, whitelist: 0, monitor: 0 })
    // The curl line Swagger UI shows carries the key in its header and this server's URL.
    const curl = (await counts.locator(".curl-command").textContent()) ?? ""
    expect(curl).toContain(`${app.url}/lists/counts`)
    expect(curl).toContain("X-API-Key")
    expect(elsewhere).toEqual([])
    expect(errors).toEqual([])
  })
})
