#!/usr/bin/env bash
# make bench's overload stage on its own, for trying the door's settings:
# the platform (release binaries, SQLite, seeded) pinned to CPU 0, wrk and
# the open-loop generator to CPU 1, then the article list (micro-cache off)
# at half and at k × the maximum. Goodput = 2xx answers a second (issue #19:
# ≥ 0.90 × the maximum); the p99 is of the answered requests (≤ 2 × the
# half-load p99). The generator's own CPU is printed with each stage: a
# generator short of CPU makes its own latency.
#
#   scripts/bench-overload.sh                        # OVERLOAD="2 5 10" DURATION=10
#   MAX=1927 scripts/bench-overload.sh               # skip wrk: k × this maximum
#   APP_GATEWAY__HTTP__SHED__ADAPTIVE__TOLERANCE=5 scripts/bench-overload.sh
# Any APP_* setting reaches the stack (above: the adaptive door).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

BIN=${BIN:-target/release} DURATION=${DURATION:-10} OVERLOAD=${OVERLOAD:-2 5 10}
[ "$(nproc)" -ge 2 ] || { echo "needs two CPUs: the stack on one, the load on the other" >&2; exit 1; }
case $BIN in /*) ;; *) cargo build --release -p gateway -p user -p content -p comment -p bench --bins ;; esac
LIST="/api/v1/articles?limit=20"
STACK_PORT=18080 STACK_GRPC_PORT=20151 STACK_ADMIN_PORT=19100 STACK_ETCD_PORT=22479
STACK_BIN=$BIN STACK_WORKERS=${WORKERS:-} STACK_LOGS=target/bench/logs/overload
STACK_DATA=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-overload.XXXXXX")
mkdir -p "$STACK_LOGS"
cleanup() {
  stack_stop
  rm -rf "$STACK_DATA"
}
trap cleanup EXIT
# The seeding's writes are past the write limit.
export APP_GATEWAY__LIMITS__ENABLED=false
stack_start >/dev/null
"$BIN/loadgen" seed "$STACK_URL" --articles 200 --comments 2000 >/dev/null
for pid in "${STACK_PIDS[@]}"; do taskset -a -p -c 0 "$pid" >/dev/null; done

load() { # RATE: one open-loop stage, its RESULT line and the generator's CPU
  taskset -c 1 /usr/bin/time -f "generator_cpu_s=%U+%S" "$BIN/loadgen" http "$STACK_URL$LIST" \
    --rate "$1" --duration "$DURATION" 2>&1 | grep -E '^RESULT|^generator' | tr '\n' ' '
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# 2xx answers a second only: a door that refuses under wrk's 50
# connections would otherwise count its 503s as capacity.
max=${MAX:-$(taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" "$STACK_URL$LIST" | awk -v d="$DURATION" '
  / requests in / { n = $1 } /Non-2xx/ { e = $NF } END { printf "%d", (n - e) / d }')}
half=$(load $((max / 2)))
echo "maximum (wrk, 50 connections, pinned; 2xx a second): $max/s"
echo "half load: $half"
base=$(field p99_ms "$half")
printf '| load | offered/s | goodput/s | goodput / maximum | admitted p99 ms | / half-load p99 | generator CPU s |\n|---|---:|---:|---:|---:|---:|---|\n'
for k in $OVERLOAD; do
  r=$(load $((max * k)))
  good=$(awk -v n="$(field requests "$r")" -v e="$(field errors "$r")" -v d="$DURATION" 'BEGIN { printf "%d", (n - e) / d }')
  p99=$(field p99_ms "$r")
  awk -v k="$k" -v o=$((max * k)) -v g="$good" -v m="$max" -v p="$p99" -v b="$base" -v c="${r##*generator_cpu_s=}" \
    'BEGIN { printf "| %s× | %d | %d | **%.2f** | %.1f | %.1f | %s |\n", k, o, g, g / m, p, p / b, c }'
done
