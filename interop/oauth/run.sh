#!/usr/bin/env bash
# Interop: the stock OAuth 2.0 client oauth4webapi (Node) against a live `tessera serve`:
# discovery, the refresh-token grant, revocation and introspection (oauth.mjs). Starts one
# server on a free port with a temporary SQLite database, registers a public and a confidential
# client with the CLI, and installs oauth4webapi (the version pinned in package-lock.json) where
# missing. Exits non-zero on any failure. interop/run.sh calls it; run from anywhere:
#   bash interop/oauth/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

step() { printf '\n==> %s\n' "$*"; }

step "tessera binary"
cargo build -q -p tessera
BIN=target/debug/tessera

if [ ! -d interop/oauth/node_modules/oauth4webapi ]; then
  step "installing oauth4webapi"
  (cd interop/oauth && npm ci --no-audit --no-fund --silent)
fi

WORK=$(mktemp -d)
PID=""
stop_server() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT
export TESSERA_DATABASE_URL="sqlite://$WORK/oauth.db"

step "oauth: tessera serve"
RUST_LOG=warn "$BIN" serve --bind 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" &
PID=$!
BASE=""
for _ in $(seq 1 100); do
  BASE=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/out" | head -n 1 || true)
  [ -n "$BASE" ] && curl -sf "$BASE/healthz" >/dev/null && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$BASE" ] || { echo "tessera did not start" >&2; cat "$WORK/err" >&2; exit 1; }
echo "issuer $BASE"

field() { sed -n "s/^$1: //p"; }
PUBLIC=$("$BIN" clients add interop-app --public)
CONFIDENTIAL=$("$BIN" clients add interop-api --confidential)
export TESSERA_ISSUER="$BASE"
export PUBLIC_CLIENT_ID=$(echo "$PUBLIC" | field client_id)
export CONFIDENTIAL_CLIENT_ID=$(echo "$CONFIDENTIAL" | field client_id)
export CONFIDENTIAL_SECRET=$(echo "$CONFIDENTIAL" | field client_secret)
export TESSERA_USER=interop-oauth TESSERA_PASSWORD="correct horse battery"
curl -sf "$BASE/auth/register" -H 'content-type: application/json' \
  -d "{\"username\":\"$TESSERA_USER\",\"password\":\"$TESSERA_PASSWORD\"}" >/dev/null

step "oauth: oauth4webapi"
node interop/oauth/oauth.mjs
