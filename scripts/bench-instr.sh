#!/usr/bin/env bash
# `make bench-instr`: what one request costs each process, in instructions
# (valgrind's callgrind) and in system calls (strace -c), for the platform
# and for the bare skeleton (bench crate), over a fixed number of requests
# after a warm-up. Unlike wall-clock figures these do not move with the
# machine's load: a 10 % regression shows on a shared 2-core VM.
#
#   scripts/bench-instr.sh              # release binaries, the table below
#   scripts/bench-instr.sh --budget     # make test: the debug build's
#                                       # article list against its budget
#
# Three requests, each made REQUESTS times in sequence on one kept-alive
# connection by `loadgen fixed` (run natively, not counted):
#   list     GET /api/v1/articles?limit=20
#   page     GET /api/v1/articles/{id} (an article with two comments)
#   comment  POST /api/v1/articles/{id}/comments (bearer token)
#
# Every gateway and service runs under callgrind with instrumentation off
# (near native speed for start-up, seeding and warm-up); for each request
# kind it is switched on, the counters zeroed, the requests made, the
# counters dumped and instrumentation switched off (callgrind_control).
# What a process does in the background meanwhile (etcd lease keep-alives,
# the discovery watch) is counted too: a few thousand instructions a
# second, under 1 % of a measurement.
#
# The platform is seeded natively (argon2 under callgrind would outlast
# CreateUser's 5 s deadline), then restarted under callgrind on the same
# SQLite files. The caches' TTL is raised to an hour so that every read of
# the measurement is answered the same way (from the in-process cache, as
# nearly every read of a busy site is), however slowly callgrind runs.
#
# Knobs: BIN, REQUESTS (per kind, 100; --budget: 20), WARMUP (20), GUARDED
# (1: also the protection stack per call, kit's resilience bench; --budget:
# 0), GUARDED_CALLS (10000), WORKERS
# (tokio workers per process, 1), LOADGEN ($BIN/loadgen), KINDS ("list page comment"; --budget:
# list), SYSCALLS (1: also strace -c, and with --budget the ceiling on writes to a
# socket per request; needs strace), OUT (the table).
# Per-process callgrind profiles stay in target/bench/callgrind/ for
# callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh
# Counts, not abuse: the seeding and the counted requests come from one
# client far faster than the gateway's rate limits allow (README, "Limits").
export APP_GATEWAY__LIMITS__ENABLED=false

BUDGET=false
[ "${1:-}" = --budget ] && BUDGET=true
if $BUDGET; then
  BIN=${BIN:-target/debug} REQUESTS=${REQUESTS:-20} KINDS=${KINDS:-list} SYSCALLS=${SYSCALLS:-1}
  SKELETON=${SKELETON:-0}
else
  BIN=${BIN:-target/release} REQUESTS=${REQUESTS:-100} KINDS=${KINDS:-list page comment}
  SYSCALLS=${SYSCALLS:-1} SKELETON=${SKELETON:-1} GUARDED=${GUARDED:-1}
fi
GUARDED=${GUARDED:-0}
GUARDED_CALLS=${GUARDED_CALLS:-10000}
WARMUP=${WARMUP:-20}
# The load generator is not measured: any build of it will do.
LOADGEN=${LOADGEN:-$BIN/loadgen}
WORKERS=${WORKERS:-1}
BUDGET_FILE=scripts/bench/instr-budget
OUT_DIR=target/bench
OUT=${OUT:-$OUT_DIR/instr.md}
CG_DIR=$OUT_DIR/callgrind
LOGS=$OUT_DIR/logs/instr
LIST_PATH="/api/v1/articles?limit=20"

# Ports away from make run's, make bench's and make loadtest's.
STACK_PORT=18480 STACK_GRPC_PORT=20551 STACK_ADMIN_PORT=19500 STACK_ETCD_PORT=22879
SKELETON_PORT=18481 SKELETON_GRPC_PORT=20561

say() { stack_say "$@"; }

need() { # TOOL PACKAGE: installs PACKAGE when TOOL is missing (Debian)
  command -v "$1" >/dev/null && return 0
  say "installing $2"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -qq "$2" >/dev/null || {
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "$2" >/dev/null
  }
}
need valgrind valgrind
[ "$SYSCALLS" = 1 ] && need strace strace

bins=(gateway user content comment)
[ "$SKELETON" = 1 ] && bins+=(skeleton-gateway skeleton-service)
missing=false
for bin in "${bins[@]}"; do [ -x "$BIN/$bin" ] || missing=true; done
if [ "$BIN" = target/release ]; then
  say "building release binaries"
  # Two builds, as make bench does: one would unify the platform's crate
  # features into the skeleton's build.
  cargo build --release -p gateway -p user -p content -p comment
  cargo build --release -p bench --bins
elif [ "$BIN" = target/debug ] && $missing; then
  cargo build -p gateway -p user -p content -p comment -p bench
fi
mkdir -p "$OUT_DIR" "$LOGS"
rm -rf "$CG_DIR"
mkdir -p "$CG_DIR"

# Everything a process runs in the window is counted but the gateway's
# dashboard sampler (the whole registry encoded and parsed once a second,
# watched or not): its work is per second, not per request, and would make
# the gateway's figure depend on how slowly callgrind ran. Collection goes
# off on entering it and back on on leaving (docs/benchmarks.md). The order
# matters: --toggle-collect turns --collect-atstart off, so it comes first.
# CALLGRIND_OPTS: more callgrind options, word-split (e.g. --cache-sim=yes:
# simulated instruction- and data-cache misses beside the counts).
# shellcheck disable=SC2206
CALLGRIND=(valgrind --tool=callgrind --instr-atstart=no --fair-sched=try ${CALLGRIND_OPTS:-}
  '--toggle-collect=gateway::dashboard::sample*' --collect-atstart=yes
  "--callgrind-out-file=$PWD/$CG_DIR/%q{STACK_PROCESS}.%p")

extra_pids=()
stop_extra() {
  [ ${#extra_pids[@]} -gt 0 ] && stack_halt 30 "${extra_pids[@]}"
  extra_pids=()
}
DATA_DIR=""
cleanup() {
  stop_extra
  stack_stop
  [ -n "$DATA_DIR" ] && rm -rf "$DATA_DIR"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # url seconds
  for _ in $(seq 1 $(($2 * 10))); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "nothing answers on $1" >&2; return 1
}

declare -A IR=() SC=() SENDS=()  # "<target>/<kind>/<process>" -> per request
STRACE_FAILED=false

# fixed URL KIND N: N requests of KIND (comment: a POST as BENCH_TOKEN).
fixed() {
  local url=$1 kind=$2 n=$3
  if [ "$kind" = comment ]; then
    "$LOADGEN" fixed "$url" --requests "$n" --token "$BENCH_TOKEN" \
      --body '{"body":"Counted, not timed: a sensible decision."}' >/dev/null
  else
    "$LOADGEN" fixed "$url" --requests "$n" >/dev/null
  fi
}

# measure TARGET KIND URL NAME=PID…: instructions per request of each process.
measure() {
  local target=$1 kind=$2 url=$3 pair pid name summary
  shift 3
  say "$target $kind: $WARMUP requests to warm up, then $REQUESTS counted"
  # Warm-up under instrumentation: callgrind translates each code path
  # again once instrumentation is on, slowly, and that must not be counted.
  # The first calls may time out while their code is translated: warm up
  # until WARMUP requests in a row succeed.
  for pair in "$@"; do callgrind_control -i on "${pair#*=}" >/dev/null; done
  local try
  for try in $(seq 1 60); do fixed "$url" "$kind" "$WARMUP" 2>/dev/null && break; done
  [ "$try" -lt 60 ] || { echo "$target $kind never succeeded under callgrind" >&2; return 1; }
  for pair in "$@"; do callgrind_control -z "${pair#*=}" >/dev/null; done
  fixed "$url" "$kind" "$REQUESTS"
  for pair in "$@"; do
    name=${pair%%=*} pid=${pair#*=}
    callgrind_control -d "$target-$kind" "$pid" >/dev/null
    callgrind_control -i off "$pid" >/dev/null
    # The newest dump of this process.
    summary=$(ls -v "$CG_DIR"/*."$pid".* | tail -1)
    IR[$target/$kind/$name]=$(awk -v n="$REQUESTS" '/^summary:/ { printf "%.0f", $2 / n }' "$summary")
    mv "$summary" "$CG_DIR/$target-$kind-$name.callgrind"
  done
}

# syscalls TARGET KIND URL NAME=PID…: system calls per request of each
# process (strace -c -f attached for the counted requests; no callgrind).
syscalls() {
  local target=$1 kind=$2 url=$3 pair name tracers=()
  shift 3
  fixed "$url" "$kind" "$WARMUP"
  for pair in "$@"; do
    name=${pair%%=*}
    rm -f "$LOGS/strace-$target-$kind-$name.txt"
    strace -c -f -p "${pair#*=}" -o "$LOGS/strace-$target-$kind-$name.txt" 2>/dev/null &
    tracers+=("$!")
  done
  sleep 1  # attached to every thread
  fixed "$url" "$kind" "$REQUESTS"
  for pair in "${tracers[@]}"; do kill -INT "$pair" 2>/dev/null || true; done
  for pair in "${tracers[@]}"; do wait "$pair" 2>/dev/null || true; done
  for pair in "$@"; do
    name=${pair%%=*}
    # strace may not attach to a process it did not start: a container
    # without CAP_SYS_PTRACE on a host with Yama's ptrace_scope 1 (GitLab's
    # Docker executor on Ubuntu). Then there are no counts, not a failure.
    if ! grep -qs ' total$' "$LOGS/strace-$target-$kind-$name.txt"; then
      STRACE_FAILED=true
      continue
    fi
    SC[$target/$kind/$name]=$(awk -v n="$REQUESTS" '$NF == "total" { printf "%.1f", $4 / n }' \
      "$LOGS/strace-$target-$kind-$name.txt")
    # What reaches a socket: writev, sendto or sendmsg (write is also the
    # runtime's eventfd wake-up, so it is left out).
    SENDS[$target/$kind/$name]=$(awk -v n="$REQUESTS" '$NF ~ /^(writev|sendto|sendmsg)$/ { c += $4 }
      END { printf "%.2f", c / n }' "$LOGS/strace-$target-$kind-$name.txt")
  done
}

url_of() { # BASE KIND
  case $2 in
    list) echo "$1$LIST_PATH" ;;
    page) echo "$1/api/v1/articles/$ARTICLE" ;;
    comment) echo "$1/api/v1/articles/$ARTICLE/comments" ;;
  esac
}

# The platform's settings for a counted run: caches answer every read of the
# measurement however slowly callgrind runs.
# The gateway's whole-request budget is raised too: it sends the services
# what is left of it only when that is below a method's own timeout, which
# it never is here, so the counted path is the same.
export APP_CONTENT__CACHE__TTL=1h APP_COMMENT__CACHE__TTL=1h APP_USER__CACHE__TTL=1h
export APP_GATEWAY__HTTP__REQUEST_TIMEOUT=120s

# 1. The platform: seeded natively, then under callgrind on the same files.
DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-instr.XXXXXX")
STACK_BIN=$BIN STACK_DATA=$DATA_DIR STACK_LOGS=$LOGS STACK_WORKERS=$WORKERS
stack_check_ports
stack_start
say "seeding (natively)"
seeded=$("$LOADGEN" seed "$STACK_URL" --articles 25 --comments 50)
eval "$(printf '%s\n' "$seeded" | sed -n 's/^\(BENCH_[A-Z_]*=[A-Za-z0-9._-]*\)$/export \1/p')"
# seed comments article_ids[(n * 7) % 25]: the first article has two, as
# the skeleton's canned articles do.
ARTICLE=$BENCH_ARTICLE_MIN
PLATFORM_PIDS=()
if [ "$SYSCALLS" = 1 ]; then
  PLATFORM_PIDS=(gateway="${STACK_PIDS[gateway]}" user="${STACK_PIDS[user]}"
    content="${STACK_PIDS[content]}" comment="${STACK_PIDS[comment]}")
  for kind in $KINDS; do syscalls platform "$kind" "$(url_of "$STACK_URL" "$kind")" "${PLATFORM_PIDS[@]}"; done
fi
stack_stop
say "the platform again, under callgrind"
STACK_WRAP="${CALLGRIND[*]}" STACK_START_TIMEOUT=300 stack_start
PLATFORM_PIDS=(gateway="${STACK_PIDS[gateway]}" user="${STACK_PIDS[user]}"
  content="${STACK_PIDS[content]}" comment="${STACK_PIDS[comment]}")
# Under callgrind a slow answer degrades a page instead of failing it: the
# first calls translate code (and every service must have been discovered).
whole() { # KIND: true when a page of KIND answers without a degraded part
  local body
  body=$(curl -fsS "$(url_of "$STACK_URL" "$1")") && ! grep -q '"degraded"' <<<"$body"
}
for kind in list page; do
  for _ in $(seq 1 60); do whole "$kind" && break; sleep 1; done
  whole "$kind" || { echo "the $kind page stays degraded under callgrind" >&2; exit 1; }
done
for kind in $KINDS; do measure platform "$kind" "$(url_of "$STACK_URL" "$kind")" "${PLATFORM_PIDS[@]}"; done
stack_stop
rm -rf "$DATA_DIR"; DATA_DIR=""

# 2. The bare skeleton, same topology: natively for the system calls, then
# under callgrind.
start_skeleton() { # WRAP…
  local port names=(user content comment) i
  for i in 0 1 2; do
    port=$((SKELETON_GRPC_PORT + i))
    env STACK_PROCESS="skeleton-${names[$i]}" APP_PLATFORM__RUNTIME__WORKER_THREADS="$WORKERS" \
      "$@" "$BIN/skeleton-service" "127.0.0.1:$port" >>"$LOGS/skeleton-${names[$i]}.log" 2>&1 &
    extra_pids+=("$!")
  done
  env STACK_PROCESS=skeleton-gateway APP_PLATFORM__RUNTIME__WORKER_THREADS="$WORKERS" \
    "$@" "$BIN/skeleton-gateway" "127.0.0.1:$SKELETON_PORT" --user "127.0.0.1:$SKELETON_GRPC_PORT" \
    --content "127.0.0.1:$((SKELETON_GRPC_PORT + 1))" --comment "127.0.0.1:$((SKELETON_GRPC_PORT + 2))" \
    >>"$LOGS/skeleton-gateway.log" 2>&1 &
  extra_pids+=("$!")
  wait_http "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" 300
  SKELETON_PIDS=(gateway="${extra_pids[3]}" user="${extra_pids[0]}" content="${extra_pids[1]}"
    comment="${extra_pids[2]}")
}
if [ "$SKELETON" = 1 ]; then
  ARTICLE=1
  SKELETON_URL="http://127.0.0.1:$SKELETON_PORT"
  if [ "$SYSCALLS" = 1 ]; then
    say "the bare skeleton"
    start_skeleton
    for kind in $KINDS; do syscalls skeleton "$kind" "$(url_of "$SKELETON_URL" "$kind")" "${SKELETON_PIDS[@]}"; done
    stop_extra
  fi
  say "the bare skeleton, under callgrind"
  start_skeleton "${CALLGRIND[@]}"
  for kind in $KINDS; do measure skeleton "$kind" "$(url_of "$SKELETON_URL" "$kind")" "${SKELETON_PIDS[@]}"; done
  stop_extra
fi

# The protection stack per gRPC call, alone: kit's resilience bench in its
# instruction mode (bare callee, breaker + bulkhead + deadline, and
# `guarded`, the production path with the method lookup), collection on
# only inside its counted loop.
declare -A GI=()
if [ "$GUARDED" = 1 ]; then
  say "the protection stack per call, $GUARDED_CALLS calls per variant"
  guarded_bench=$(cargo bench -p kit --bench resilience --no-run --message-format=json 2>"$LOGS/guarded-build.log" \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "resilience" and m.get("executable"):
        print(m["executable"])')
  [ -x "$guarded_bench" ] || { cat "$LOGS/guarded-build.log" >&2; echo "kit's resilience bench did not build" >&2; exit 1; }
  for variant in bare stack guarded; do
    RESILIENCE_INSTR="$variant:$GUARDED_CALLS" valgrind --tool=callgrind --collect-atstart=no \
      '--toggle-collect=*counted_calls*' "--callgrind-out-file=$CG_DIR/guarded-$variant.callgrind" \
      "$guarded_bench" 2>"$LOGS/guarded-$variant.log"
    GI[$variant]=$(awk -v n="$GUARDED_CALLS" '/^summary:/ { printf "%.0f", $2 / n }' "$CG_DIR/guarded-$variant.callgrind")
  done
fi

# The table.
PROCESSES=(gateway user content comment)
total() { # TARGET KIND (associative array name)
  local -n values=$3
  local sum=0 name
  for name in "${PROCESSES[@]}"; do sum=$(awk -v a="$sum" -v b="${values[$1/$2/$name]:-0}" 'BEGIN { print a + b }'); done
  echo "$sum"
}
counts_table() { # TITLE ARRAY: one row per request kind and target, as counted
  local -n counts=$2
  local kind target name row
  printf '\n%s\n\n' "$1"
  echo "| request | target | gateway | user | content | comment | total |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for kind in $KINDS; do
    for target in platform skeleton; do
      [ "$target" = skeleton ] && [ "$SKELETON" != 1 ] && continue
      row="| $kind | $target"
      for name in "${PROCESSES[@]}"; do row+=" | ${counts[$target/$kind/$name]:-?}"; done
      echo "$row | $(total "$target" "$kind" "$2") |"
    done
  done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }
k() { awk -v a="$1" 'BEGIN { printf "%.0f", a / 1000 }'; }
{
  echo "### $(date -u '+%Y-%m-%d %H:%M') UTC — $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores, Linux $(uname -r)"
  echo
  echo "Command: \`scripts/bench-instr.sh$($BUDGET && echo " --budget")\` (binaries $BIN, $WORKERS worker(s) per process, $WARMUP requests of warm-up, then $REQUESTS counted per kind)."
  echo
  echo "Instructions per request, thousands (callgrind Ir):"
  echo
  echo "| request | target | gateway | user | content | comment | total | platform / skeleton |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for kind in $KINDS; do
    for target in platform skeleton; do
      [ "$target" = skeleton ] && [ "$SKELETON" != 1 ] && continue
      row="| $kind | $target"
      for name in "${PROCESSES[@]}"; do row+=" | $(k "${IR[$target/$kind/$name]:-0}")"; done
      t=$(total "$target" "$kind" IR)
      r=""
      [ "$target" = platform ] && [ "$SKELETON" = 1 ] && r="**$(ratio "$t" "$(total skeleton "$kind" IR)")**"
      echo "$row | $(k "$t") | $r |"
    done
  done
  if [ "$SYSCALLS" = 1 ]; then
    counts_table "System calls per request (strace -c -f, natively, same requests):" SC
    counts_table "Of which writes to a socket (writev, sendto, sendmsg) per request:" SENDS
  fi
  if [ "$GUARDED" = 1 ]; then
    echo
    echo "The protection stack per gRPC call (kit's resilience bench, $GUARDED_CALLS calls per variant after 1000 of warm-up, instructions per call):"
    echo
    echo "| bare callee | breaker + bulkhead + deadline | guarded (production path) | added by guarded |"
    echo "|---:|---:|---:|---:|"
    echo "| ${GI[bare]} | ${GI[stack]} | ${GI[guarded]} | **$((GI[guarded] - GI[bare]))** |"
  fi
} | tee "$OUT"
echo
say "written to $OUT; profiles in $CG_DIR/ (callgrind_annotate FILE), strace in $LOGS/"

# Every process must have been counted.
for kind in $KINDS; do
  for name in "${PROCESSES[@]}"; do
    [ "${IR[platform/$kind/$name]:-0}" -gt 0 ] || { echo "no count for platform/$kind/$name" >&2; exit 1; }
  done
done

if $BUDGET; then
  # BUDGET_FILE: "<process> <instructions per request>" lines for the debug
  # build's article list; a process over its budget by more than MARGIN %
  # fails. Rewrite the file (the figures printed above) when a change makes
  # a process dearer on purpose, and say why in the commit.
  # Every process, the gateway too: its dashboard sampler's per-second work
  # is left out of the count (CALLGRIND above).
  margin=$(awk '$1 == "margin" { print $2 }' "$BUDGET_FILE")
  failed=false
  for name in "${PROCESSES[@]}"; do
    budget=$(awk -v n="$name" '$1 == n { print $2 }' "$BUDGET_FILE")
    [ -n "$budget" ] || { echo "no budget for $name in $BUDGET_FILE" >&2; exit 1; }
    got=${IR[platform/list/$name]}
    verdict=$(awk -v g="$got" -v b="$budget" -v m="$margin" 'BEGIN {
      printf "%s %.1f", (g > b * (1 + m / 100)) ? "OVER" : "ok", (g / b - 1) * 100 }')
    echo "article list, $name: $got instructions per request, budget $budget (+$margin %): ${verdict% *} (${verdict#* } %)"
    [ "${verdict% *}" = ok ] || failed=true
  done
  # "sends <process> <writes per request>": a ceiling on the writes to a
  # socket per article list, counted by strace on the native processes. A
  # service's unary answer under 1 KiB leaves in one write, a larger one in
  # two (kit/src/server/coalesce.rs); an extra write per answer costs the
  # callee a system call and the caller a wake-up.
  if [ "$SYSCALLS" = 1 ] && $STRACE_FAILED; then
    echo "strace could not attach to the stack's processes (no CAP_SYS_PTRACE, Yama ptrace_scope $(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo '?')): the writes ceiling is not checked here" >&2
  elif [ "$SYSCALLS" = 1 ]; then
    for name in "${PROCESSES[@]}"; do
      ceiling=$(awk -v n="$name" '$1 == "sends" && $2 == n { print $3 }' "$BUDGET_FILE")
      [ -n "$ceiling" ] || { echo "no sends ceiling for $name in $BUDGET_FILE" >&2; exit 1; }
      got=${SENDS[platform/list/$name]}
      verdict=$(awk -v g="$got" -v c="$ceiling" 'BEGIN { print (g > c) ? "OVER" : "ok" }')
      echo "article list, $name: $got writes to a socket per request, ceiling $ceiling: $verdict"
      [ "$verdict" = ok ] || failed=true
    done
  fi
  if $failed; then
    echo "the article list costs more than its budget ($BUDGET_FILE): profile with callgrind_annotate $CG_DIR/platform-list-<process>.callgrind, strace -f in $LOGS/" >&2
    exit 1
  fi
fi
