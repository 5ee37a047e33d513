#!/usr/bin/env bash
# Interop: the stock OAuth 2.0 client oauth4webapi (Node) against a live `tessera serve`:
# discovery, the refresh-token grant, revocation and introspection (oauth.mjs); then DPoP
# (dpop.mjs): proofs by the `dpop` package and oauth4webapi's DPoP support, on a server with
# default settings and again on one with TESSERA_DPOP_NONCE=true. Each server runs on a free
# port with a temporary SQLite database; public and confidential clients are registered with
# the CLI. Installs oauth4webapi and dpop (the versions pinned in package-lock.json) where
# missing. Exits non-zero on any failure. interop/run.sh calls it; run from anywhere:
#   bash interop/oauth/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

step() { printf '\n==> %s\n' "$*"; }

step "tessera binary"
cargo build -q -p tessera
BIN=target/debug/tessera

if [ ! -d interop/oauth/node_modules/oauth4webapi ] || [ ! -d interop/oauth/node_modules/dpop ]; then
  step "installing oauth4webapi and dpop"
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
field() { sed -n "s/^$1: //p"; }
# The binary, without the scripts' own variables (it warns about unknown TESSERA_* names).
tessera() { env -u TESSERA_USER -u TESSERA_PASSWORD "$BIN" "$@"; }

# Starts a server on a fresh database named $1 (with any settings already exported), registers
# the clients and the user, and exports what the scripts read.
start() {
  # The previous server's issuer is exported for the scripts; this server must pick its own.
  unset TESSERA_ISSUER
  export TESSERA_DATABASE_URL="sqlite://$WORK/$1.db"
  step "$1: tessera serve"
  RUST_LOG=warn tessera serve --bind 127.0.0.1:0 \
    >"$WORK/$1.out" 2>"$WORK/$1.err" &
  PID=$!
  BASE=""
  for _ in $(seq 1 100); do
    BASE=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/$1.out" | head -n 1 || true)
    [ -n "$BASE" ] && curl -sf "$BASE/healthz" >/dev/null && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/$1.err" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$BASE" ] || { echo "tessera did not start" >&2; cat "$WORK/$1.err" >&2; exit 1; }
  echo "issuer $BASE"
  PUBLIC=$(tessera clients add interop-app --public)
  CONFIDENTIAL=$(tessera clients add interop-api --confidential)
  export TESSERA_ISSUER="$BASE"
  export PUBLIC_CLIENT_ID=$(echo "$PUBLIC" | field client_id)
  export CONFIDENTIAL_CLIENT_ID=$(echo "$CONFIDENTIAL" | field client_id)
  export CONFIDENTIAL_SECRET=$(echo "$CONFIDENTIAL" | field client_secret)
  export TESSERA_USER=interop-oauth TESSERA_PASSWORD="correct horse battery"
  curl -sf "$BASE/auth/register" -H 'content-type: application/json' \
    -d "{\"username\":\"$TESSERA_USER\",\"password\":\"$TESSERA_PASSWORD\"}" >/dev/null
}

start oauth
step "oauth: oauth4webapi"
node interop/oauth/oauth.mjs
step "dpop: the dpop package and oauth4webapi"
node interop/oauth/dpop.mjs
stop_server

export TESSERA_DPOP_NONCE=true DPOP_NONCE=1
start dpop-nonce
step "dpop-nonce: the dpop package and oauth4webapi follow DPoP-Nonce"
node interop/oauth/dpop.mjs
