#!/usr/bin/env bash
# Proves that @optimizer/core works as a package another service installs (docs/sdk.md):
#
#   1. builds it and packs the tarball (npm pack), as `npm publish` would;
#   2. lints the package: publint, and @arethetypeswrong/cli with the "esm-only" profile — the
#      package is ESM only ("type": "module", Node >= 22.19), so the node10 and CommonJS
#      resolutions it ignores are not ways this package is meant to be loaded;
#   3. installs the tarball + its peer `effect` into a scratch project outside the repository;
#   4. type-checks the examples there as a strict consumer (moduleResolution nodenext,
#      skipLibCheck false) against the installed .d.ts;
#   5. checks that importing the phone and encryption entries of the installed build loads no
#      pg / pg-boss / AWS module, and prints the import's time and RSS next to `effect` alone;
#   6. runs every example against a scratch database on DATABASE_URL's server (migrate through the
#      SDK, then lists, cleaning, encryption, classification, exports and jobs, a Voluum sync
#      against the fake Voluum of test/fakes), then drops it;
#   7. prints the consumer's node_modules size, package by package.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash scripts/sdk-check.sh
#   bash scripts/sdk-check.sh   # without DATABASE_URL: the embedded PostgreSQL the tests use
#
# Needs Node >= 22.19 and the repository's dependencies (npm ci); the scratch install uses the
# npm cache first (--prefer-offline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
scratch="$(mktemp -d)"
database="optimizer_sdk_check_$$"
fake_pid=""
pg_pid=""
admin() {
  node --input-type=module -e '
    import pg from "pg"
    const url = new URL(process.env.DATABASE_URL); url.pathname = "/postgres"
    const client = new pg.Client({ connectionString: url.toString() })
    await client.connect()
    try { await client.query(process.argv[1]) } finally { await client.end() }' "$1"
}
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
  if [ -n "${DATABASE_URL:-}" ]; then (cd "$repo" && admin "DROP DATABASE IF EXISTS $database WITH (FORCE)") || true; fi
  if [ -n "$pg_pid" ]; then kill "$pg_pid" 2>/dev/null && wait "$pg_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
started=$SECONDS
say() { echo "--- sdk-check ($((SECONDS - started)) s): $*"; }

if [ -z "${DATABASE_URL:-}" ]; then
  say "no DATABASE_URL: starting the embedded PostgreSQL"
  node --conditions=@optimizer/source scripts/sdk-check/embedded-postgres.ts >"$scratch/pg-url" &
  pg_pid=$!
  for _ in $(seq 1 600); do [ -s "$scratch/pg-url" ] && break; kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.2; done
  [ -s "$scratch/pg-url" ] || { echo "the embedded PostgreSQL did not start" >&2; exit 1; }
  DATABASE_URL="$(head -n 1 "$scratch/pg-url")"
  export DATABASE_URL
fi

say "build and pack @optimizer/core"
npm run build -w @optimizer/core >/dev/null
tarball="$(cd packages/core && npm pack --pack-destination "$scratch" --silent | tail -n 1)"
tarball="$scratch/$tarball"
contents="$(tar tzf "$tarball")"
echo "$tarball ($(du -k "$tarball" | cut -f1) kB, $(wc -l <<<"$contents") files)"
for file in package/README.md package/LICENSE package/CHANGELOG.md package/sql/0001_initial.sql; do
  grep -qx "$file" <<<"$contents" || { echo "the tarball lacks $file" >&2; exit 1; }
done
if grep -E '\.map$|^package/src/' <<<"$contents"; then
  echo "the tarball ships source maps or sources (they would point at nothing / are not meant to ship)" >&2
  exit 1
fi

say "publint and @arethetypeswrong/cli"
npx --no-install publint packages/core --strict
npx --no-install attw "$tarball" --profile esm-only --format table

say "install the tarball into a scratch project ($scratch/consumer)"
consumer="$scratch/consumer"
mkdir -p "$consumer/src"
effect_version="$(node -p 'require("effect/package.json").version')"
types_node_version="$(node -p 'require("@types/node/package.json").version')"
cat >"$consumer/package.json" <<JSON
{ "name": "sdk-consumer", "private": true, "type": "module" }
JSON
(cd "$consumer" && npm install --no-fund --no-audit --prefer-offline --loglevel=error \
  "$tarball" "effect@$effect_version" "@types/node@$types_node_version" >/dev/null)

say "type-check a strict consumer (nodenext, skipLibCheck false)"
cp examples/*.ts "$consumer/src/"
# "DOM" in lib: effect 4.1's own declarations (effect/dist/crypto/*.d.ts) name the Web Crypto types
# `CryptoKey` and `JsonWebKey`, which @types/node does not declare as global types; any consumer of
# effect that checks library declarations (skipLibCheck false) needs them. Nothing of this package does.
cat >"$consumer/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "ES2023",
    "lib": ["ES2023", "DOM"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "types": ["node"],
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "noUncheckedIndexedAccess": true,
    "verbatimModuleSyntax": true,
    "skipLibCheck": false,
    "noEmit": true
  },
  "include": ["src"]
}
JSON
(cd "$consumer" && "$repo/node_modules/.bin/tsc" -p tsconfig.json)

say "what importing an entry loads (installed build)"
cat >"$consumer/loads.mjs" <<'JS'
import { registerHooks } from "node:module"
const loaded = new Set()
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.add(r.url); return r } })
const rss = process.memoryUsage().rss
const t0 = performance.now()
const entry = process.argv[2]
const m = await import(entry)
if (entry.endsWith("/phone") && !m.normalizePhone("+44 7700 900123").ok) throw new Error("phone entry does not normalise")
const ms = performance.now() - t0
const heavy = [...loaded].filter((u) => /\/node_modules\/(pg|pg-boss|pg-pool|pg-copy-streams|@effect\/sql-pg|@aws-sdk\/[^/]+)\//.test(u))
console.log(JSON.stringify({ entry, ms: Math.round(ms), rssMb: Math.round((process.memoryUsage().rss - rss) / 1048576), modules: loaded.size, heavy: heavy.length }))
if (process.argv[3] === "light" && heavy.length > 0) { console.error(heavy.join("\n")); process.exit(1) }
JS
(cd "$consumer" && for entry in effect @optimizer/core/phone @optimizer/core/encryption @optimizer/core/promise @optimizer/core; do
  case "$entry" in */phone | */encryption | effect) node loads.mjs "$entry" light ;; *) node loads.mjs "$entry" ;; esac
done)

say "run the examples against a scratch database"
admin "CREATE DATABASE $database"
scratch_url="$(node -e 'const u = new URL(process.env.DATABASE_URL); u.pathname = "/" + process.argv[1]; console.log(u.toString())' "$database")"
node --conditions=@optimizer/source scripts/sdk-check/fake-voluum.ts >"$scratch/fake-voluum.json" &
fake_pid=$!
for _ in $(seq 1 100); do [ -s "$scratch/fake-voluum.json" ] && break; sleep 0.1; done
fake="$(head -n 1 "$scratch/fake-voluum.json")"
voluum_env() { node -e 'const f = JSON.parse(process.argv[1]); console.log(f[process.argv[2]])' "$fake" "$1"; }
(
  cd "$consumer"
  export DATABASE_URL="$scratch_url" LOG_LEVEL=Warn
  export VOLUUM_API_URL="$(voluum_env url)" VOLUUM_ACCESS_ID="$(voluum_env accessId)"
  export VOLUUM_ACCESS_KEY="$(voluum_env accessKey)" VOLUUM_TRAFFIC_SOURCE_IDS="$(voluum_env trafficSourceId)"
  for example in classification encryption lists cleaning effect voluum-sync; do
    echo "> node src/$example.ts"
    timeout 120 node src/"$example".ts
  done
)

say "the consumer's node_modules"
(cd "$consumer/node_modules" && echo "total: $(du -sk . | cut -f1) kB" &&
  du -sk -- * .[!.]* 2>/dev/null | sort -rn | head -n 25)
say "ok"
