#!/usr/bin/env bash
# Tessera's load matrix: GET /auth/me, chained POST /auth/refresh and POST /auth/login, at each
# concurrency, on SQLite and PostgreSQL, with each number of sessions already stored. Writes a
# Markdown table (BENCHMARKS.md explains every column) to $OUT and prints it.
#
#   bash bench/run-matrix.sh                          # the whole matrix, ~10 minutes
#   SIZES=10000 BACKENDS=sqlite bash bench/run-matrix.sh
#   WEBHOOKS="off on" ENDPOINTS="refresh login" bash bench/run-matrix.sh   # events cost
#
# Needs: a release build (done here), wrk (apt-get install wrk), PostgreSQL on 127.0.0.1:5432
# for the postgres rows (as .ci/run sets it up). Traffic goes to 127.0.0.1 only; every run is
# bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}          # measured seconds per cell
WARMUP=${WARMUP:-2}               # unmeasured seconds before each cell
SIZES=${SIZES:-"10000 1000000"}   # background sessions stored before the runs
BACKENDS=${BACKENDS:-"sqlite postgres"}
CONCURRENCY=${CONCURRENCY:-"16 64"}
ENDPOINTS=${ENDPOINTS:-"me refresh login"}
# "off on": every cell twice, without and with a webhook receiver (a local one answering 204 at
# once; the endpoint shows as e.g. `login+webhooks`), to measure what events cost.
WEBHOOKS=${WEBHOOKS:-off}
PORT=${PORT:-18080}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
PG_DB=${PG_DB:-tessera_bench}
CLIENTS=64                        # users bench-0 … bench-63: one session per connection
PASSWORD="bench password 1"
WORK=${WORK:-/tmp/tessera-bench}
OUT=${OUT:-$WORK/matrix.md}
# GEN_CPUS=1 pins the load generators (wrk, tessera-bench) to that CPU list with taskset.
# LABEL names the build in the header (default: this checkout's commit), for TESSERA/BENCH
# binaries built elsewhere (bench/compare-sqlite.sh).
GEN_CPUS=${GEN_CPUS:-}

TESSERA=${TESSERA:-target/release/tessera}
BENCH=${BENCH:-target/release/tessera-bench}
if [[ -z "${SKIP_BUILD:-}" ]]; then
  cargo build --release -p tessera -p tessera-bench
fi
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
mkdir -p "$WORK"
CLK_TCK=$(getconf CLK_TCK)
pin() { if [[ -n "$GEN_CPUS" ]]; then taskset -c "$GEN_CPUS" "$@"; else "$@"; fi; }

# A numeric field of a one-line JSON object.
jget() { sed -E "s/.*\"$1\":([-0-9.eE+]+).*/\1/" <<<"$2"; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

RECEIVER_PID=
SERVER_PID=
stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap 'stop_server; [[ -n "$RECEIVER_PID" ]] && kill "$RECEIVER_PID" 2>/dev/null' EXIT

if [[ "$WEBHOOKS" == *on* ]]; then
  python3 -c '
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Hook(BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()' "$((PORT + 1))" &
  RECEIVER_PID=$!
fi

start_server() { # URL webhooks(on|off)
  local hooks=()
  if [[ "$2" == on ]]; then
    hooks=(TESSERA_WEBHOOK_URL="http://127.0.0.1:$((PORT + 1))/hook"
      TESSERA_WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64)")
  fi
  env "${hooks[@]}" TESSERA_DATABASE_URL="$1" TESSERA_BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    "$TESSERA" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
}

login_token() { # i -> access token of a new session of bench-i
  curl -fsS "http://127.0.0.1:$PORT/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"bench-$1\",\"password\":\"$PASSWORD\",\"delivery\":\"body\"}" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}

# wrk scripts: each request picks the next of the 64 users' tokens (me) or names (login); the
# `done` hook prints the same JSON fields as `tessera-bench load`.
WRK_DONE='
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("{\"requests\":%d,\"errors\":%d,\"rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
    summary.requests, e.status + e.connect + e.read + e.write + e.timeout, summary.requests / s,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end'

write_me_lua() {
  {
    echo "tokens = {"
    for i in $(seq 0 $((CLIENTS - 1))); do echo "  \"$(login_token "$i")\","; done
    echo "}"
    echo 'local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/auth/me", { ["Authorization"] = "Bearer " .. tokens[i] })
end'
    echo "$WRK_DONE"
  } >"$WORK/me.lua"
}

cat >"$WORK/login.lua" <<LUA
local i = 0
request = function()
  i = i % $CLIENTS + 1
  return wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" },
    '{"username":"bench-' .. (i - 1) .. '","password":"$PASSWORD","delivery":"body"}')
end
$WRK_DONE
LUA

run_cell() { # endpoint concurrency -> JSON line
  local endpoint=$1 c=$2
  case "$endpoint" in
    refresh)
      pin "$BENCH" load --addr "127.0.0.1:$PORT" --endpoint refresh --connections "$c" \
        --duration "$DURATION" --warmup "$WARMUP" --clients "$CLIENTS" --password "$PASSWORD"
      ;;
    me | login)
      local path=/auth/$endpoint
      pin wrk -t1 -c"$c" -d"${WARMUP}s" -s "$WORK/$endpoint.lua" "http://127.0.0.1:$PORT$path" >/dev/null
      local before after
      before=$(date +%s.%N)
      # wrk's own CPU time, for the generator's share of the cores.
      pin /usr/bin/time -f '%U %S' -o "$WORK/wrk.time" \
        wrk -t1 -c"$c" -d"${DURATION}s" --timeout 5s -s "$WORK/$endpoint.lua" "http://127.0.0.1:$PORT$path" |
        tail -n 1
      after=$(date +%s.%N)
      awk -v t="$(tail -n 1 "$WORK/wrk.time")" -v d="$(echo "$after - $before" | bc)" \
        'BEGIN { split(t, a, " "); printf "%.2f\n", (a[1] + a[2]) / d }' >"$WORK/wrk.cpu"
      ;;
  esac
}

{
  echo "# Tessera load matrix"
  echo
  echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), ${LABEL:-commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (+ local changes)')}"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- each cell: ${WARMUP} s warm-up, ${DURATION} s measured; generators: wrk -t1 (me, login), tessera-bench load (refresh, chained, body delivery)${GEN_CPUS:+, pinned to CPU $GEN_CPUS}"
  echo "- argon2id (m=19456, t=2, p=1): $("$BENCH" argon2 --rounds 40)"
  echo
  echo "| backend | sessions stored | endpoint | c | req/s | p50 ms | p99 ms | errors | server CPU (cores) | generator CPU (cores) | server peak RSS MiB |"
  echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} | tee "$OUT"

for backend in $BACKENDS; do
  for size in $SIZES; do
    if [[ "$backend" == sqlite ]]; then
      rm -f "$WORK"/bench.db*
      URL="sqlite://$WORK/bench.db"
    else
      psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
      URL="$PG/$PG_DB"
    fi
    "$BENCH" seed --database "$URL" --sessions "$size" --clients "$CLIENTS" --password "$PASSWORD" 2>"$WORK/seed.log"
    seed_note=$(cat "$WORK/seed.log")
    for hooks in $WEBHOOKS; do
    start_server "$URL" "$hooks"
    WAL_PEAK=
    if [[ "$backend" == sqlite ]]; then
      # The WAL's largest size while the cells run, sampled 5 times a second.
      echo 0 >"$WORK/wal.peak"
      (
        peak=0
        while :; do
          size=$(stat -c %s "$WORK/bench.db-wal" 2>/dev/null || echo 0)
          if ((size > peak)); then peak=$size; echo "$peak" >"$WORK/wal.peak"; fi
          sleep 0.2
        done
      ) &
      WAL_PEAK=$!
    fi
    write_me_lua
    for endpoint in $ENDPOINTS; do
      for c in $CONCURRENCY; do
        echo 5 >"/proc/$SERVER_PID/clear_refs"   # resets VmHWM: the peak of this cell alone
        t0=$(cpu_ticks "$SERVER_PID"); w0=$(date +%s.%N)
        line=$(run_cell "$endpoint" "$c")
        if [[ "$endpoint" != refresh ]]; then
          line="${line%\}},\"generator_cpu_cores\":$(cat "$WORK/wrk.cpu")}"
        fi
        t1=$(cpu_ticks "$SERVER_PID"); w1=$(date +%s.%N)
        hwm=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER_PID/status")
        server_cpu=$(echo "($t1 - $t0) / $CLK_TCK / ($w1 - $w0)" | bc -l)
        label=$endpoint
        [[ "$hooks" == on ]] && label="$endpoint+webhooks"
        printf '| %s | %s | %s | %s | %.0f | %.2f | %.2f | %s | %.2f | %.2f | %s |\n' \
          "$backend" "$size" "$label" "$c" "$(jget rps "$line")" "$(jget p50_ms "$line")" \
          "$(jget p99_ms "$line")" "$(jget errors "$line")" "$server_cpu" \
          "$(jget generator_cpu_cores "$line")" "$hwm" | tee -a "$OUT"
      done
    done
    wal=""
    if [[ "$backend" == sqlite ]]; then
      kill "$WAL_PEAK" 2>/dev/null || true
      wait "$WAL_PEAK" 2>/dev/null || true
      wal=", WAL file at most $(( $(cat "$WORK/wal.peak") / 1048576 )) MiB during the runs, $(( $(stat -c %s "$WORK/bench.db-wal" 2>/dev/null || echo 0) / 1048576 )) MiB after them"
    fi
    stop_server
    done
    echo "<!-- $backend, $size: $seed_note$wal -->" >>"$OUT"
  done
done
echo >>"$OUT"
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
echo "written to $OUT" >&2
