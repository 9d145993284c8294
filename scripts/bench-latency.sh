#!/usr/bin/env bash
# The "gateway adds ≤ 1 ms at p99" question on its own, with repeats: one
# run of scripts/bench.sh gives one p99 per path, and on a shared 2-core
# machine one scheduling hiccup moves a p99 by tens of milliseconds.
#
# Starts the platform (as make bench: release binaries, SQLite, seeded) and
# the bare skeleton, then ROUNDS times, alternating, runs the same open loop
# (RATE pages/s for DURATION s) directly over gRPC and through the gateway,
# for both, and prints every round and the median of the differences.
#
#   scripts/bench-latency.sh                     # RATE=2000 ROUNDS=5 DURATION=10
#   RATE=3000 ROUNDS=7 scripts/bench-latency.sh
#   WORKERS=1 scripts/bench-latency.sh           # tokio workers per process (0 = one per core)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

RATE=${RATE:-2000} ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} BIN=${BIN:-target/release} WORKERS=${WORKERS:-0}
LIST_PATH="/api/v1/articles?limit=20"
STACK_PORT=18080 STACK_GRPC_PORT=20151 STACK_ADMIN_PORT=19100 STACK_ETCD_PORT=22479
SKELETON_PORT=18081 SKELETON_GRPC_PORT=20161
STACK_BIN=$BIN STACK_WORKERS=$WORKERS STACK_LOGS=target/bench/logs/latency
STACK_DATA=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-latency.XXXXXX")
mkdir -p "$STACK_LOGS"
skeleton=()
cleanup() {
  local pid
  for pid in "${skeleton[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  stack_stop
  rm -rf "$STACK_DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The seeding writes 100 articles and 200 comments at once.
stack_raise_limits SIGN_UP LOGIN WRITES
stack_check_ports
stack_start
"$BIN/loadgen" seed "$STACK_URL" --articles 100 --comments 200 >/dev/null
for i in 0 1 2; do
  APP_PLATFORM__RUNTIME__WORKER_THREADS=$WORKERS "$BIN/skeleton-service" "127.0.0.1:$((SKELETON_GRPC_PORT + i))" >"$STACK_LOGS/skeleton-$i.log" 2>&1 &
  skeleton+=("$!")
done
APP_PLATFORM__RUNTIME__WORKER_THREADS=$WORKERS "$BIN/skeleton-gateway" "127.0.0.1:$SKELETON_PORT" --user "127.0.0.1:$SKELETON_GRPC_PORT" \
  --content "127.0.0.1:$((SKELETON_GRPC_PORT + 1))" --comment "127.0.0.1:$((SKELETON_GRPC_PORT + 2))" \
  >"$STACK_LOGS/skeleton-gateway.log" 2>&1 &
skeleton+=("$!")
sleep 1

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
run() { # what: via-platform | direct-platform | via-skeleton | direct-skeleton
  case $1 in
    via-platform) "$BIN/loadgen" http "$STACK_URL$LIST_PATH" --rate "$RATE" --duration "$DURATION" ;;
    via-skeleton) "$BIN/loadgen" http "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" --rate "$RATE" --duration "$DURATION" ;;
    direct-platform) "$BIN/loadgen" grpc-page --user "127.0.0.1:$STACK_GRPC_PORT" --content "127.0.0.1:$((STACK_GRPC_PORT + 1))" \
      --comment "127.0.0.1:$((STACK_GRPC_PORT + 2))" --rate "$RATE" --duration "$DURATION" ;;
    direct-skeleton) "$BIN/loadgen" grpc-page --user "127.0.0.1:$SKELETON_GRPC_PORT" --content "127.0.0.1:$((SKELETON_GRPC_PORT + 1))" \
      --comment "127.0.0.1:$((SKELETON_GRPC_PORT + 2))" --rate "$RATE" --duration "$DURATION" ;;
  esac | grep '^RESULT'
}

echo "| round | target | direct p50 / p99 ms | via gateway p50 / p99 ms | adds at p50 / p99 ms | errors |"
echo "|---:|---|---:|---:|---:|---:|"
declare -A adds=([platform]="" [skeleton]="")
for round in $(seq 1 "$ROUNDS"); do
  for target in platform skeleton; do
    direct=$(run "direct-$target") via=$(run "via-$target")
    d50=$(field p50_ms <<<"$direct") d99=$(field p99_ms <<<"$direct")
    v50=$(field p50_ms <<<"$via") v99=$(field p99_ms <<<"$via")
    a99=$(awk -v a="$v99" -v b="$d99" 'BEGIN { printf "%+.2f", a - b }')
    adds[$target]+="$a99 "
    printf '| %s | %s | %s / %s | %s / %s | %s / %s | %s |\n' "$round" "$target" "$d50" "$d99" "$v50" "$v99" \
      "$(awk -v a="$v50" -v b="$d50" 'BEGIN { printf "%+.2f", a - b }')" "$a99" \
      "$(( $(field errors <<<"$direct") + $(field errors <<<"$via") ))"
  done
done
echo
for target in platform skeleton; do
  echo "median that the $target's gateway adds at p99 over $ROUNDS rounds at $RATE/s, $WORKERS workers: $(tr ' ' '\n' <<<"${adds[$target]}" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }') ms"
done
