/**
 * `/docs`: Swagger UI over `/openapi.json`, served by this server from the installed
 * `swagger-ui-dist` package (no CDN: it works on a machine without internet access). The reader
 * authorises with an API key (the document's `apiKey` and `bearer` schemes), descriptions render as
 * markdown, and "Try it out" calls this same server (the document's relative server URL).
 *
 * Every URL of the page is relative (`openapi.json`, `docs/assets/…`), so it also works behind a
 * reverse proxy that serves the API under a prefix.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { gzipSync } from "node:zlib"
import type { Hono } from "hono"
import type { AppEnv } from "./http.ts"

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** The files of `swagger-ui-dist` the page loads, with their content types. */
const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
  "favicon-16x16.png": "image/png"
}

/**
 * The page's own script: Swagger UI on `#swagger-ui`. The key given to "Authorize" stays in the
 * page's memory only (`persistAuthorization` off: an API key is not left in the browser's storage);
 * `tryItOutEnabled` opens each operation ready to run; `validatorUrl: null` keeps Swagger UI from
 * sending the document to its online validator (the page reaches this server only).
 */
const INIT_SCRIPT = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", window.location.href).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    filter: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  })
})
`

const pageHtml = (title: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} API reference</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="docs/assets/favicon-16x16.png" sizes="16x16">
<style>body{margin:0}</style>
</head>
<body>
<noscript>This page needs JavaScript. The machine-readable document is at <a href="openapi.json">openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/init.js"></script>
</body>
</html>
`

/**
 * The page may load scripts, styles and images from this server only, and call only it (Swagger UI
 * sets inline styles, hence `'unsafe-inline'` for styles; its scripts are files).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

/** The folder of the installed `swagger-ui-dist`. */
const swaggerUiDir = (): string => dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"))

/**
 * Adds `GET /docs` (the page) and `GET /docs/assets/:name` (its files, read from the package on
 * first request and kept in memory with their gzip form, sent to a browser that accepts it: the
 * 1.8 MB bundle is ~0.5 MB so; cached by browsers for a day).
 */
export const docsRoutes = (app: Hono<AppEnv>, title: string) => {
  const html = pageHtml(title)
  const cache = new Map<string, { readonly raw: Buffer; readonly gzip: Buffer }>()
  app.get("/docs", (c) => c.html(html, 200, { "content-security-policy": CONTENT_SECURITY_POLICY }))
  app.get("/docs/assets/:name", (c) => {
    const name = c.req.param("name")
    if (name === "init.js") {
      return c.body(INIT_SCRIPT, 200, { "content-type": "text/javascript; charset=utf-8" })
    }
    const type = ASSETS[name]
    if (type === undefined) return c.notFound()
    let file = cache.get(name)
    if (file === undefined) {
      const raw = readFileSync(join(swaggerUiDir(), name))
      file = { raw, gzip: gzipSync(raw) }
      cache.set(name, file)
    }
    const headers = { "content-type": type, "cache-control": "public, max-age=86400", vary: "accept-encoding" }
    return /\bgzip\b/.test(c.req.header("accept-encoding") ?? "")
      ? c.body(new Uint8Array(file.gzip), 200, { ...headers, "content-encoding": "gzip" })
      : c.body(new Uint8Array(file.raw), 200, headers)
  })
}
