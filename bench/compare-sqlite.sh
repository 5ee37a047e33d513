#!/usr/bin/env bash
# The SQLite rows of the load matrix for an earlier commit and for this checkout, one after the
# other in one run (ROUNDS times, alternating), so that both see the same machine. The earlier
# build comes from a `git worktree` of BASE under /tmp, with its own target directory.
#
#   bash bench/compare-sqlite.sh                 # BASE=0b3c8ba: the last sqlx-based SQLite store
#   BASE=abc1234 ROUNDS=2 SIZES=1000000 bash bench/compare-sqlite.sh
#
# Every variable of bench/run-matrix.sh applies (SIZES, CONCURRENCY, ENDPOINTS, DURATION, …).
# Writes $WORK/sqlite-{before,after}-ROUND.md and prints each table.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:-0b3c8ba}
ROUNDS=${ROUNDS:-1}
WORK=${WORK:-/tmp/tessera-bench}
OLD=${OLD_TREE:-/tmp/tessera-$BASE}
export WORK

if [[ ! -d "$OLD" ]]; then
  git worktree add --detach "$OLD" "$BASE"
fi
(cd "$OLD" && cargo build --release -p tessera -p tessera-bench)
cargo build --release -p tessera -p tessera-bench

old_label="before: commit $(git -C "$OLD" rev-parse --short HEAD)"
new_label="after: commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (+ local changes)')"
for round in $(seq 1 "$ROUNDS"); do
  SKIP_BUILD=1 BACKENDS=sqlite LABEL="$old_label" OUT="$WORK/sqlite-before-$round.md" \
    TESSERA="$OLD/target/release/tessera" BENCH="$OLD/target/release/tessera-bench" \
    bash bench/run-matrix.sh
  SKIP_BUILD=1 BACKENDS=sqlite LABEL="$new_label" OUT="$WORK/sqlite-after-$round.md" \
    bash bench/run-matrix.sh
done
