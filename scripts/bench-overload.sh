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
#   H2=1 APP_GATEWAY__HTTP__SHED__MAX_IN_FLIGHT=128 scripts/bench-overload.sh
# Any APP_* setting reaches the stack (above: the adaptive door, and a door
# of 128). H2=1 sends the same load as an edge that multiplexes does (h2c,
# 4 connections, h2load from Debian's nghttp2-client): the maximum with 16
# streams per connection, the stages open-loop at k × it with up to 128.
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
  if [ -n "${H2:-}" ]; then
    h2_load "$1"
    return
  fi
  taskset -c 1 /usr/bin/time -f "generator_cpu_s=%U+%S" "$BIN/loadgen" http "$STACK_URL$LIST" \
    --rate "$1" --duration "$DURATION" 2>&1 | grep -E '^RESULT|^generator' | tr '\n' ' '
}
h2_load() { # RATE: load's output, from h2load's log of every request
  local log=$STACK_DATA/h2load.tsv cpu
  rm -f "$log"
  cpu=$(taskset -c 1 /usr/bin/time -f "generator_cpu_s=%U+%S" h2load -c4 -m128 --rps=$(($1 / 4)) \
    -D"$DURATION" --log-file="$log" "$STACK_URL$LIST" 2>&1 >/dev/null | tail -n1)
  # Columns: start (µs since the epoch), status, µs to the end of the answer.
  awk -F'\t' '{ n++ } $2 !~ /^2/ { e++ } $2 ~ /^2/ { print $3 } END { print "N", n, e + 0 > "/dev/stderr" }' "$log" \
    2>"$log.n" | sort -n >"$log.ok"
  read -r _ n e <"$log.n"
  awk -v n="$n" -v e="$e" -v c="$cpu" '{ v[NR] = $1 } END {
    i = int(NR * 0.99); if (i < 1) i = 1
    printf "RESULT requests=%d errors=%d p99_ms=%.3f %s ", n, e, v[i] / 1000, c }' "$log.ok"
}
h2_max() { # 2xx answers a second, closed loop: 4 connections × 16 streams
  # (64 in flight: a door set below that refuses at once, and the closed
  # loop turns into a flood of refusals)
  taskset -c 1 h2load -c4 -m16 -D"$DURATION" "$STACK_URL$LIST" | awk -v d="$DURATION" '
    /^status codes:/ { printf "%d", $3 / d }'
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# 2xx answers a second only: a door that refuses under wrk's 50
# connections would otherwise count its 503s as capacity.
if [ -n "${H2:-}" ]; then
  command -v h2load >/dev/null || scripts/deps.sh bench
  MAX=${MAX:-$(h2_max)}
fi
max=${MAX:-$(taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" "$STACK_URL$LIST" | awk -v d="$DURATION" '
  / requests in / { n = $1 } /Non-2xx/ { e = $NF } END { printf "%d", (n - e) / d }')}
half=$(load $((max / 2)))
clients="wrk, 50 connections"
[ -z "${H2:-}" ] || clients="h2load, 4 HTTP/2 connections × 16 streams"
echo "maximum ($clients, pinned; 2xx a second): $max/s"
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
