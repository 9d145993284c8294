#!/usr/bin/env bash
# Profiles one process of the platform under the article-list load of
# make bench: perf (cpu-clock samples, DWARF call graphs) while wrk runs
# GET /api/v1/articles?limit=20. Reports land in target/bench/profile-<name>.*
#
#   scripts/profile.sh                 # the gateway, one worker per process
#   PROCESS=content WORKERS=0 scripts/profile.sh
#   CACHE=true scripts/profile.sh      # the gateway's micro-cache on
#
# The micro-cache is off by default, as in make bench's stages: with it on,
# the services see a request a second per page and there is little to profile.
# Needs perf (Debian: linux-perf) and the release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

PROCESS=${PROCESS:-gateway}
WORKERS=${WORKERS:-1}
DURATION=${DURATION:-20}
OUT=target/bench/profile-$PROCESS
LIST_PATH="/api/v1/articles?limit=20"
STACK_PORT=18080 STACK_GRPC_PORT=20151 STACK_ADMIN_PORT=19100 STACK_ETCD_PORT=22479
STACK_BIN=${BIN:-target/release} STACK_LOGS=target/bench/logs/profile STACK_WORKERS=$WORKERS
export APP_GATEWAY__CACHE__ENABLED=${CACHE:-false}
STACK_DATA=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-profile.XXXXXX")
mkdir -p target/bench
trap 'stack_stop; rm -rf "$STACK_DATA"' EXIT
trap 'exit 130' INT TERM

stack_check_ports
stack_start
eval "$("$STACK_BIN/loadgen" seed "$STACK_URL" | sed -n 's/^\(BENCH_[A-Z_]*=[A-Za-z0-9._-]*\)$/export \1/p')"
stack_say "wrk on $LIST_PATH for ${DURATION}s; perf on $PROCESS for the middle half"
MIX=list wrk -t2 -c50 -d"${DURATION}s" --latency -s loadtest/mix.lua "$STACK_URL$LIST_PATH" >"$OUT.wrk.txt" &
wrk_pid=$!
sleep "$((DURATION / 4))"
perf record -e cpu-clock -F 499 --call-graph dwarf,32768 -p "${STACK_PIDS[$PROCESS]}" \
  -o "$OUT.data" -- sleep "$((DURATION / 2))" 2>"$OUT.record.log"
wait "$wrk_pid"
grep '^RESULT' "$OUT.wrk.txt"
perf report -i "$OUT.data" --no-children --sort symbol --stdio --percent-limit 0.7 -g none \
  2>/dev/null >"$OUT.self.txt"
perf report -i "$OUT.data" --children --sort symbol --stdio --percent-limit 3 -g none \
  2>/dev/null >"$OUT.children.txt"
stack_say "self time: $OUT.self.txt; inclusive: $OUT.children.txt; raw: $OUT.data"
