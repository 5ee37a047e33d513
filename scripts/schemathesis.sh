#!/usr/bin/env bash
# Schema tests: schemathesis (PyPI) generates requests from GET /openapi.json of a running
# `tessera serve` and checks every answer against the description: no 5xx, only documented
# status codes, documented content types, bodies and headers that match their schemas.
#
#   bash scripts/schemathesis.sh            # after `cargo build -p tessera`
#
# Starts the server on a free loopback port with a fresh SQLite database in a temporary
# directory (TESSERA_COOKIE_SECURE=false: plain http), registers a user and logs in so the
# Bearer endpoints are exercised past their 401, then runs schemathesis, bounded by
# SCHEMATHESIS_MAX_EXAMPLES (default 50) test cases per operation and SCHEMATHESIS_TIMEOUT
# seconds overall (default 300). Exits non-zero on any failure. Installs schemathesis (4.x)
# with pip when it is missing. TESSERA_BIN overrides the server binary (default:
# target/debug/tessera at the repo root).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${TESSERA_BIN:-$repo/target/debug/tessera}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
time_limit="${SCHEMATHESIS_TIMEOUT:-300}"

if [[ ! -x "$bin" ]]; then
  echo "schemathesis.sh: no server binary at $bin (build it first: cargo build -p tessera)" >&2
  exit 1
fi

if ! python3 -c 'import schemathesis, sys; sys.exit(int(schemathesis.__version__.split(".")[0]) != 4)' 2>/dev/null; then
  echo "--- installing schemathesis 4.x (pip)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'schemathesis>=4,<5'
fi
echo "--- schemathesis $(python3 -c 'import schemathesis; print(schemathesis.__version__)')"

work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-schemathesis.XXXXXX")"
# shellcheck source=serve-fresh.sh
source "$repo/scripts/serve-fresh.sh"
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

# The shared secret of GET /auth/revocations (the route is off without one).
revocations_token="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
serve_fresh "$bin" "$work" TESSERA_REVOCATIONS_TOKEN="$revocations_token"

# Two users with a session each, so /auth/me, /auth/sessions and friends answer more than 401:
# one for the main run (which may revoke its session through DELETE /auth/sessions/{id}), one
# for logout-all. Both log in now: the main run's failed logins use up the loopback address's
# login budget (429 for a minute).
login() {
  curl -fsS -o /dev/null "$base/auth/register" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"correct horse battery\"}"
  curl -fsS "$base/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"correct horse battery\",\"delivery\":\"body\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
main_token="$(login schemathesis)"
logout_all_token="$(login schemathesis-2)"

checks="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}"
run() {
  # From the temporary directory: schemathesis keeps a cache (.schemathesis/) where it runs.
  # `python3 -m`: the console script may not be on PATH (pyenv shims need a rehash).
  (cd "$work" && timeout --kill-after=10 "$time_limit" python3 -m schemathesis.cli run "$base/openapi.json" \
    --checks "$checks" \
    --max-examples "$max_examples" \
    --seed "${SCHEMATHESIS_SEED:-20260501}" \
    --header "Authorization: Bearer $token" \
    --request-timeout 30 \
    --generation-database none \
    --no-color "$@")
}

status=0
# Everything but logout-all first (with a user's access token: /auth/revocations answers 401),
# then /auth/revocations with its secret, then logout-all, which ends every session of its user.
echo "--- schemathesis run $base/openapi.json (at most $max_examples cases per operation, ${time_limit}s)"
token="$main_token"
run --exclude-operation-id logoutAll || status=$?
if [[ $status -eq 0 ]]; then
  echo "--- schemathesis run: GET /auth/revocations with its shared secret"
  token="$revocations_token"
  run --include-operation-id listRevocations || status=$?
fi
if [[ $status -eq 0 ]]; then
  echo "--- schemathesis run: POST /auth/logout-all"
  token="$logout_all_token"
  run --include-operation-id logoutAll || status=$?
fi

if [[ $status -ne 0 ]]; then
  if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "schemathesis.sh: schemathesis did not finish within ${time_limit}s" >&2
  fi
  echo "--- server log (last 50 lines)" >&2
  tail -n 50 "$work/server.log" >&2
  exit "$status"
fi
echo "--- schemathesis: no failures"
