#!/usr/bin/env bash
# Type-checks and tests the browser client: unit tests in Node, then the browser tests, which run
# the real server binary and drive a headless Chromium. CI calls this from the repo root, after
# `cargo build -p tessera`:   bash clients/js/run-tests.sh
#
# Installs what a fresh Debian machine lacks (Debian's chromium, the npm devDependencies); never
# downloads a browser of its own. TESSERA_BIN overrides the server binary (default:
# target/debug/tessera at the repo root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export TESSERA_BIN="${TESSERA_BIN:-$repo/target/debug/tessera}"

if [[ ! -x "$TESSERA_BIN" ]]; then
  echo "run-tests.sh: no server binary at $TESSERA_BIN (build it first: cargo build -p tessera)" >&2
  exit 1
fi

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if (( node_major < 20 )); then
  echo "run-tests.sh: Node.js 20 or later is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if [[ ! -x /usr/bin/chromium ]]; then
  echo "--- installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

cd "$here"
echo "--- npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "--- tsc --noEmit"
npx tsc --noEmit

echo "--- unit tests"
node --test test/unit/

echo "--- browser tests ($(/usr/bin/chromium --version 2>/dev/null | head -n 1), $TESSERA_BIN)"
node --test --test-concurrency=1 test/browser/
