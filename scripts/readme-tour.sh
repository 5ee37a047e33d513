#!/usr/bin/env bash
# Runs the README's "Five-minute tour with curl" exactly as written (only the server address is
# changed) against a fresh `tessera serve`, and checks what the tour's comments promise: the
# user, the refresh, the grace replay, reuse detection ending the session, and the logout.
#
#   bash scripts/readme-tour.sh            # after `cargo build -p tessera`; TESSERA_BIN overrides
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${TESSERA_BIN:-$repo/target/debug/tessera}"
work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-tour.XXXXXX")"
# shellcheck source=serve-fresh.sh
source "$repo/scripts/serve-fresh.sh"
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

# The tour talks to the default server, whose cookie is Secure: curl keeps Secure cookies for
# 127.0.0.1, so the tour runs against the default cookie settings.
serve_fresh "$bin" "$work" TESSERA_COOKIE_SECURE=true

tour="$(python3 - "$repo/README.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = text.split("## Five-minute tour with curl", 1)[1]
print(re.search(r"```sh\n(.*?)```", section, re.S).group(1))
PY
)"
grep -q '^B=http://127.0.0.1:8080;' <<<"$tour" || { echo "readme-tour.sh: the tour no longer starts with B=http://127.0.0.1:8080" >&2; exit 1; }
tour="${tour/B=http:\/\/127.0.0.1:8080;/B=$base;}"

out="$(cd "$work" && bash -euo pipefail -c "$tour" 2>&1)" || { echo "$out"; echo "readme-tour.sh: the tour failed" >&2; exit 1; }
echo "$out"

expect() {
  if ! grep -qE -- "$1" <<<"$out"; then
    echo "readme-tour.sh: expected $2 ($1) in the tour's output" >&2
    exit 1
  fi
}
expect '"username":"alice"' "the user at /auth/me"
expect 'tessera_refresh' "the refresh cookie in the jar"
[[ "$(grep -c '"access_token"' <<<"$out")" -ge 3 ]] || { echo "readme-tour.sh: expected a login, a refresh and a grace replay" >&2; exit 1; }
expect '"reason":"reused"' "reuse detected on the late replay"
expect '"reason":"revoked"' "the current token revoked with its session"
expect '^204$' "the logout"
echo "--- the README tour ran as pasted"
