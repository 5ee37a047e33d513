#!/usr/bin/env bash
# What CI can check of the container image on a machine that cannot pull base images: the
# Dockerfile's build step (docker/build.sh, the same commands), then the installed binary run
# as the image runs it — an unprivileged user, the image's environment, its database in a data
# directory of its own — until the HEALTHCHECK's request (GET /readyz) answers 200.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-image.XXXXXX")"
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

sh docker/build.sh "$work/bin"
mkdir "$work/data"
chown nobody:nogroup "$work/data"
chmod 0755 "$work"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd "$work/data" && exec env -i PATH=/usr/bin:/bin \
  TESSERA_BIND="127.0.0.1:$port" TESSERA_ISSUER="http://localhost:$port" \
  TESSERA_DATABASE_URL="sqlite://$work/data/tessera.db" TESSERA_LOG_FORMAT=json \
  setpriv --reuid=nobody --regid=nogroup --clear-groups "$work/bin/tessera" serve) >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
  sleep 0.2
done
if ! curl -fsS "http://127.0.0.1:$port/readyz"; then
  cat "$work/log" >&2
  echo "docker/ci-check.sh: the image's binary did not become ready" >&2
  exit 1
fi
echo
[[ "$(stat -c %U "$work/data/tessera.db")" == nobody ]]
echo "--- image build steps and unprivileged start: ok"
