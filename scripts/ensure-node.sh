#!/usr/bin/env bash
# Makes sure Node.js >= 22.19 is the `node` first on PATH (the machines' image has Node 20 at
# /usr/bin/node). When it is missing or older, installs Node 24 from the npm registry's `node`
# package into /usr/local (`npm install -g --prefix /usr/local node@24`, ~10 s), whose bin folder
# comes before /usr/bin on PATH. Idempotent: does nothing when a recent enough node is found.
#
#   bash scripts/ensure-node.sh      # install if needed (a later shell finds /usr/local/bin/node)
#   source scripts/ensure-node.sh    # same, and PATH is updated in the calling shell
#
# ENSURE_NODE_PREFIX overrides /usr/local (for trying it out without touching the machine).

_ensure_node() {
  local prefix="${ENSURE_NODE_PREFIX:-/usr/local}"
  local min_major=22 min_minor=19

  _node_ok() {
    command -v node >/dev/null 2>&1 &&
      node -e "const [a, b] = process.versions.node.split('.').map(Number); process.exit(a > $min_major || (a === $min_major && b >= $min_minor) ? 0 : 1)" >/dev/null 2>&1
  }

  case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) export PATH="$prefix/bin:$PATH" ;;
  esac
  hash -r 2>/dev/null || true

  if _node_ok; then
    echo "ensure-node: node $(node --version) at $(command -v node): nothing to do"
    return 0
  fi

  local found="missing"
  if command -v node >/dev/null 2>&1; then found="$(node --version) at $(command -v node)"; fi
  echo "ensure-node: node $found is older than $min_major.$min_minor: installing node@24 from the npm registry into $prefix"

  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "ensure-node: npm is missing: installing Debian's nodejs and npm first"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null || {
        echo "ensure-node: could not install npm with apt-get" >&2
        return 1
      }
    else
      echo "ensure-node: npm is missing and cannot be installed here: install Node.js >= $min_major.$min_minor by hand" >&2
      return 1
    fi
  fi

  local started=$SECONDS
  if ! npm install --global --prefix "$prefix" --no-fund --no-audit --loglevel=error node@24; then
    echo "ensure-node: npm install -g --prefix $prefix node@24 failed" >&2
    return 1
  fi
  hash -r 2>/dev/null || true

  if ! _node_ok; then
    echo "ensure-node: installed node@24, but \`node\` on PATH is $(command -v node || echo missing) ($(node --version 2>/dev/null || echo '?')): put $prefix/bin first on PATH" >&2
    return 1
  fi
  echo "ensure-node: now node $(node --version) at $(command -v node) (installed in $((SECONDS - started)) s)"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # sourced: keep the caller's shell options, hand back the status
  _ensure_node
else
  set -euo pipefail
  _ensure_node
fi
