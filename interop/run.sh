#!/usr/bin/env bash
# Interop: access tokens issued by a live `tessera serve` verify with two independent JOSE
# libraries, PyJWT (+ cryptography) and jose (Node), against the live JWKS: signature, `iss`,
# `aud`, `typ`. One fresh server per algorithm (EdDSA, the default, then ES256 and RS256), each
# on a free port with a temporary SQLite database. Installs the libraries where missing.
# Exits non-zero on any failure. Run from anywhere: bash interop/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tessera binary"
cargo build -q -p tessera
BIN=target/debug/tessera

if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
  step "installing PyJWT and cryptography"
  python3 -m pip install --quiet pyjwt cryptography
fi
if [ ! -d interop/node_modules/jose ]; then
  step "installing jose"
  (cd interop && npm ci --no-audit --no-fund --silent)
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

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

for ALG in EdDSA ES256 RS256; do
  step "$ALG: tessera serve"
  # Port 0: the server picks a free port and prints it.
  TESSERA_SIGNING_ALG=$ALG TESSERA_DATABASE_URL="sqlite://$WORK/$ALG.db" RUST_LOG=warn \
    "$BIN" serve --bind 127.0.0.1:0 >"$WORK/$ALG.out" 2>"$WORK/$ALG.err" &
  PID=$!
  BASE=""
  for _ in $(seq 1 100); do
    BASE=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/$ALG.out" | head -n 1 || true)
    [ -n "$BASE" ] && curl -sf "$BASE/healthz" >/dev/null && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/$ALG.err" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$BASE" ] || { echo "tessera did not start" >&2; cat "$WORK/$ALG.err" >&2; exit 1; }
  echo "issuer $BASE"

  NAME="interop-$ALG"
  curl -sf "$BASE/auth/register" -H 'content-type: application/json' \
    -d "{\"username\":\"$NAME\",\"password\":\"correct horse battery\"}" >/dev/null
  TOKEN=$(curl -sf "$BASE/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$NAME\",\"password\":\"correct horse battery\",\"delivery\":\"body\"}" |
    json_field access_token)

  step "$ALG: PyJWT"
  python3 interop/verify.py "$BASE" "$TOKEN" "$ALG"
  step "$ALG: jose"
  node interop/verify.mjs "$BASE" "$TOKEN" "$ALG"
  stop_server
done

step "interop: oauth4webapi against the OAuth endpoints"
bash interop/oauth/run.sh

step "interop: all green"
