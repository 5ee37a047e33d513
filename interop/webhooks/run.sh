#!/usr/bin/env bash
# Webhooks against real receivers: a live `tessera serve` sends its events to a receiver that
# verifies every request with the official `standardwebhooks` library (receiver.py), on SQLite
# and on PostgreSQL. Faults: the receiver down for a while and back; `kill -9` of the server
# after the commit and before the send; a receiver answering 500, hanging past the sender's
# 10 s, or redirecting (never followed); and on PostgreSQL two instances on one database (each
# event delivered once, never sent by both at once). Every expected event must arrive, with
# duplicates only under the same webhook-id (check.py). The secret must never reach the logs.
# Installs `standardwebhooks` where missing. Run from anywhere: bash interop/webhooks/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { printf '\n==> %s\n' "$*"; }

step "tessera binary"
cargo build -q -p tessera
BIN=$PWD/target/debug/tessera

if ! python3 -c 'import standardwebhooks' 2>/dev/null; then
  step "installing standardwebhooks"
  python3 -m pip install --quiet standardwebhooks
fi

WORK=$(mktemp -d)
SECRET="whsec_$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RECEIVER=""
declare -A SERVERS=() BASES=()
PG_BASE="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_DB=""

cleanup() {
  for name in "${!SERVERS[@]}"; do kill -9 "${SERVERS[$name]}" 2>/dev/null || true; done
  [ -n "$RECEIVER" ] && kill "$RECEIVER" 2>/dev/null || true
  if [ -n "$PG_DB" ]; then psql -q "$PG_BASE" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

start_receiver() {
  python3 interop/webhooks/receiver.py "$RPORT" "$SECRET" "$WORK/received.jsonl" &
  RECEIVER=$!
  for _ in $(seq 1 100); do
    curl -sf -X POST "http://127.0.0.1:$RPORT/mode" -d ok >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "the receiver did not start" >&2
  exit 1
}
stop_receiver() { kill "$RECEIVER"; wait "$RECEIVER" 2>/dev/null || true; RECEIVER=""; }
mode() { curl -sf -X POST "http://127.0.0.1:$RPORT/mode" -d "$1" >/dev/null; }

# start_server NAME DATABASE_URL: a server on a free port sending to the receiver.
start_server() {
  local name=$1 url=$2
  TESSERA_DATABASE_URL="$url" TESSERA_WEBHOOK_URL="http://127.0.0.1:$RPORT/hook" \
    TESSERA_WEBHOOK_SECRET="$SECRET" RUST_LOG=info \
    "$BIN" serve --bind 127.0.0.1:0 >"$WORK/$name.out" 2>>"$WORK/$name.err" &
  SERVERS[$name]=$!
  BASES[$name]=""
  for _ in $(seq 1 200); do
    BASES[$name]=$(grep -so 'http://127\.0\.0\.1:[0-9]*' "$WORK/$name.out" | head -n 1 || true)
    [ -n "${BASES[$name]}" ] && curl -sf "${BASES[$name]}/healthz" >/dev/null && return
    kill -0 "${SERVERS[$name]}" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "tessera $name did not start" >&2
  exit 1
}

USERS=0
# login SERVER: registers a new user on it, logs in, records the session id as expected.
login() {
  USERS=$((USERS + 1))
  local base=${BASES[$1]} name="hook-$RANDOM-$USERS"
  curl -sf "$base/auth/register" -H 'content-type: application/json' \
    -d "{\"username\":\"$name\",\"password\":\"correct horse battery\"}" >/dev/null
  curl -sf "$base/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$name\",\"password\":\"correct horse battery\",\"delivery\":\"body\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["session_id"])' >>"$WORK/sessions"
}

# wait_delivered [--once]: until every recorded session's event has arrived (90 s at most).
wait_delivered() {
  for _ in $(seq 1 180); do
    set +e
    python3 interop/webhooks/check.py "$WORK/received.jsonl" "$WORK/sessions" "$@" >"$WORK/check" 2>&1
    local status=$?
    set -e
    case $status in
      0) cat "$WORK/check"; return ;;
      2) sleep 0.5 ;;
      *) cat "$WORK/check" >&2; exit 1 ;;
    esac
  done
  cat "$WORK/check" >&2
  exit 1
}

run_backend() {
  local backend=$1 url=$2
  : >"$WORK/received.jsonl"
  : >"$WORK/sessions"
  start_receiver
  start_server one "$url"

  step "$backend: events arrive, signed"
  login one; login one
  wait_delivered

  step "$backend: the receiver is down for a while, then back"
  stop_receiver
  login one; login one; login one
  sleep 3
  start_receiver
  wait_delivered

  step "$backend: the receiver answers 500, then redirects (not followed), then accepts"
  mode fail; login one; login one; sleep 2
  mode redirect; login one; sleep 2
  mode ok
  wait_delivered

  step "$backend: the receiver hangs past the sender's 10 s"
  mode hang; login one; sleep 11
  mode ok
  wait_delivered

  step "$backend: kill -9 after the commit, before the send; the restarted server sends"
  stop_receiver
  login one; login one
  kill -9 "${SERVERS[one]}"; wait "${SERVERS[one]}" 2>/dev/null || true
  start_receiver
  start_server one "$url"
  wait_delivered

  if [ "$backend" = postgres ]; then
    step "$backend: two instances on one database: each event once, never by both at once"
    start_server two "$url"
    : >"$WORK/sessions"
    mode slow
    for i in $(seq 1 6); do login one; login two; done
    wait_delivered --once
    mode ok
    kill "${SERVERS[two]}"; wait "${SERVERS[two]}" 2>/dev/null || true
    unset 'SERVERS[two]'
  fi

  kill "${SERVERS[one]}"; wait "${SERVERS[one]}" 2>/dev/null || true
  unset 'SERVERS[one]'
  stop_receiver
  if grep -qF "$SECRET" "$WORK"/*.err "$WORK"/*.out; then
    echo "the webhook secret reached the server's output" >&2
    exit 1
  fi
}

run_backend sqlite "sqlite://$WORK/tessera.db"

if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || psql -q "$PG_BASE" -c 'select 1' >/dev/null 2>&1; then
  PG_DB="tessera_webhooks_$$"
  psql -q "$PG_BASE" -c "CREATE DATABASE $PG_DB"
  run_backend postgres "${PG_BASE%/*}/$PG_DB"
elif [ "${CI:-}" = true ]; then
  echo "PostgreSQL is not reachable" >&2
  exit 1
else
  echo "PostgreSQL is not reachable: its half skipped"
fi

step "webhooks: all green"
