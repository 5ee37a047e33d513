#!/usr/bin/env bash
# Builds every fuzz target once, then runs each for N seconds (default 60) from the checked-in
# seed corpus. Exits non-zero if any target crashes, panics, leaks, times out or runs out of
# memory; the input that did it is printed (base64) and kept in fuzz/artifacts/<target>/.
#
#   bash fuzz/run.sh [seconds-per-target]
#
# cargo fuzz drives the compiler with nightly-only flags (-Zsanitizer, sancov passes); only the
# stable toolchain is installed here, so RUSTC_BOOTSTRAP=1 lets stable rustc accept them.
# No sanitizer by default: the crates under test forbid unsafe code, the C inside (aws-lc,
# SQLite) is not instrumented by cargo fuzz anyway, and AddressSanitizer costs 7x (token
# targets) to 20x (request_body) in executions per second, and half again in build time.
# What these targets look for (panics, failed oracles, hangs, memory blow-ups) needs none.
# FUZZ_SANITIZER=address turns it on. FUZZ_TARGETS="a b" runs only those targets.
# New inputs found during the run go to a temporary directory, not to fuzz/corpus/.
set -euo pipefail

secs="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "--- installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
echo "--- $(cargo fuzz --version), $(rustc --version), sanitizer: $sanitizer"

cd "$repo"
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

start=$SECONDS
echo "--- cargo fuzz build --sanitizer $sanitizer"
cargo fuzz build --sanitizer "$sanitizer"
echo "--- built in $((SECONDS - start)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

passed=()
failed=()
for target in $targets; do
  case "$target" in
    request_body) max_len=20000 ;; # past the 16 KiB body limit
    access_token) max_len=9000 ;;  # past the 8 KiB token limit
    *) max_len=4096 ;;
  esac
  mkdir -p "$work/corpus/$target" "$work/tmp"
  echo "--- fuzzing $target for ${secs}s"
  t0=$SECONDS
  touch "$work/$target.start"
  status=0
  # TMPDIR: request_body keeps its SQLite file there.
  TMPDIR="$work/tmp" cargo fuzz run --sanitizer "$sanitizer" "$target" \
    "$work/corpus/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$secs" -max_len="$max_len" -timeout=20 -rss_limit_mb=3072 \
    -print_final_stats=1 >"$work/$target.log" 2>&1 || status=$?
  if [[ $status -eq 0 ]]; then
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' \
      "$work/$target.log" || true
    echo "--- $target: no crash ($((SECONDS - t0)) s)"
    passed+=("$target")
  else
    failed+=("$target")
    tail -n 150 "$work/$target.log"
    find "fuzz/artifacts/$target" -type f -newer "$work/$target.start" 2>/dev/null |
      while read -r artifact; do
        echo "--- $target: $artifact (base64; replay: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $target $artifact)"
        base64 -w 0 "$artifact" | head -c 65536
        echo
      done
    echo "--- $target: FAILED (exit $status)"
  fi
done

echo "--- fuzzing took $((SECONDS - start)) s in all"
if (( ${#failed[@]} )); then
  echo "fuzz/run.sh: failing targets: ${failed[*]}" >&2
  echo "fuzz: ${#passed[@]} passed, ${#failed[@]} failed"
  exit 1
fi
echo "fuzz: ${#passed[@]} passed, ${#failed[@]} failed"
