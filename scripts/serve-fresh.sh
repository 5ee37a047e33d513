# Sourced by the scripts that test a running `tessera serve` (bash): `serve_fresh BIN WORK
# [VAR=value …]` starts BIN on a free loopback port with a fresh SQLite database in WORK (plain
# http: TESSERA_COOKIE_SECURE=false unless a VAR says otherwise), logs to WORK/server.log, waits
# until /healthz answers, and sets `base` (the URL) and `server_pid`. `stop_server` ends it.

serve_fresh() {
  local bin="$1" work="$2"
  shift 2
  local port
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  base="http://127.0.0.1:$port"
  env TESSERA_BIND="127.0.0.1:$port" \
    TESSERA_DATABASE_URL="sqlite://$work/tessera.db" \
    TESSERA_COOKIE_SECURE=false \
    RUST_LOG="${RUST_LOG:-warn}" \
    "$@" "$bin" serve >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$base/healthz" 2>/dev/null; then return 0; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "tessera exited before it was healthy:" >&2
      cat "$work/server.log" >&2
      return 1
    fi
    sleep 0.2
  done
  curl -fsS -o /dev/null "$base/healthz"
}

stop_server() {
  if [[ -n "${server_pid:-}" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
