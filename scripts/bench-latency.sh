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
#   RUNQ=1 scripts/bench-latency.sh              # also how long each process's threads
#                                                # waited for a CPU (scripts/runqlat.sh, root)
#   MODE=throughput scripts/bench-latency.sh     # instead: wrk on the article list
#
# MODE=throughput answers #21's other two questions the same way: the list's
# throughput and CPU per request, platform / skeleton, as the median of
# ROUNDS alternating wrk runs (DURATION s, 50 connections on WRK_THREADS
# threads, 2, as make bench; the order flips
# every round). make bench measures each stack once, minutes apart: on a
# VM whose host takes 1 % of its CPU in one run and 10 % in the next, one
# such ratio moved from 0.97 to 1.28 between two runs of the same binaries.
# Each process's CPU and thread switches (voluntary: it slept; involuntary:
# it was preempted) per list go to target/bench/throughput-detail.md, in
# the order gateway, user, content, comment for the platform and user,
# content, comment, gateway for the skeleton.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

RATE=${RATE:-2000} ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} BIN=${BIN:-target/release} WORKERS=${WORKERS:-0}
MODE=${MODE:-tail}
RUNQ=${RUNQ:-0} RUNQ_DIR=target/bench/runq
LIST_PATH="/api/v1/articles?limit=20"
STACK_PORT=18080 STACK_GRPC_PORT=20151 STACK_ADMIN_PORT=19100 STACK_ETCD_PORT=22479
SKELETON_PORT=18081 SKELETON_GRPC_PORT=20161
STACK_BIN=$BIN STACK_WORKERS=$WORKERS STACK_LOGS=target/bench/logs/latency
STACK_DATA=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-latency.XXXXXX")
mkdir -p "$STACK_LOGS"
cleanup() {
  skeleton_stop
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
skeleton_start "$BIN" "$WORKERS" "$STACK_LOGS"
sleep 1

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
# With RUNQ=1 every run is traced: $RUNQ_DIR/<round>-<what>.md.
traced=()
if [ "$RUNQ" = 1 ]; then
  rm -rf "$RUNQ_DIR" && mkdir -p "$RUNQ_DIR"
  procs=()
  for name in "${STACK_SERVICES[@]}" gateway; do procs+=("$name=${STACK_PIDS[$name]}"); done
  procs+=("skeleton-user=${SKELETON_PIDS[0]}" "skeleton-content=${SKELETON_PIDS[1]}" "skeleton-comment=${SKELETON_PIDS[2]}"
    "skeleton-gateway=${SKELETON_PIDS[3]}")
fi
run() { # what: via-platform | direct-platform | via-skeleton | direct-skeleton
  [ "$RUNQ" = 1 ] && traced=(scripts/runqlat.sh "$RUNQ_DIR/$round-$1.md" "${procs[@]}" --)
  case $1 in
    via-platform) "${traced[@]}" "$BIN/loadgen" http "$STACK_URL$LIST_PATH" --rate "$RATE" --duration "$DURATION" ;;
    via-skeleton) "${traced[@]}" "$BIN/loadgen" http "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" --rate "$RATE" --duration "$DURATION" ;;
    direct-platform) "${traced[@]}" "$BIN/loadgen" grpc-page --user "127.0.0.1:$STACK_GRPC_PORT" --content "127.0.0.1:$((STACK_GRPC_PORT + 1))" \
      --comment "127.0.0.1:$((STACK_GRPC_PORT + 2))" --rate "$RATE" --duration "$DURATION" ;;
    direct-skeleton) "${traced[@]}" "$BIN/loadgen" grpc-page --user "127.0.0.1:$SKELETON_GRPC_PORT" --content "127.0.0.1:$((SKELETON_GRPC_PORT + 1))" \
      --comment "127.0.0.1:$((SKELETON_GRPC_PORT + 2))" --rate "$RATE" --duration "$DURATION" ;;
  esac | grep '^RESULT'
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ticks() { # PID…: their CPU time so far (user + system), in clock ticks
  local pid total=0
  for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
  echo "$total"
}
# PID: "CPU-ticks voluntary-switches involuntary-switches" of all its threads
switches() {
  awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v, n }' \
    /proc/"$1"/task/*/status 2>/dev/null
}
steal() { head -1 /proc/stat | awk '{ t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t }'; }
# Per process and run, CPU and thread switches per request: $DETAIL.
DETAIL=target/bench/throughput-detail.md
wrk_list() { # URL PID…: "RPS µs-of-CPU-per-request steal-%" over one wrk run
  local url=$1 before after out s0 s1 pid n
  local -A t0 c0
  shift
  for pid in "$@"; do t0[$pid]=$(ticks "$pid") c0[$pid]=$(switches "$pid"); done
  before=$(ticks "$@") s0=$(steal)
  out=$(wrk -t"${WRK_THREADS:-2}" -c50 -d"${DURATION}s" "$url")
  after=$(ticks "$@") s1=$(steal)
  n=$(awk '/ requests in / { print $1 }' <<<"$out")
  for pid in "$@"; do
    awk -v r="$round" -v what="$(basename "$(readlink "/proc/$pid/exe")")" -v n="$n" -v hz="$(getconf CLK_TCK)" \
      -v t0="${t0[$pid]}" -v t1="$(ticks "$pid")" -v c0="${c0[$pid]}" -v c1="$(switches "$pid")" 'BEGIN {
        split(c0, a, " "); split(c1, b, " ")
        printf "| %s | %s | %.0f | %.2f | %.2f |\n", r, what, (t1 - t0) * 1e6 / hz / n, (b[1] - a[1]) / n, (b[2] - a[2]) / n
      }' >>"$DETAIL"
  done
  awk -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" -v s0="$s0" -v s1="$s1" '
    / requests in / { n = $1 } /^Requests\/sec:/ { rps = $2 } /Non-2xx/ { bad = $NF }
    END { if (bad > 0) { print "wrk: " bad " answers were not 2xx" > "/dev/stderr"; exit 1 }
      split(s0, x, " "); split(s1, y, " ")
      printf "%d %.0f %.1f", rps, (a - b) * 1e6 / hz / n, 100 * (y[1] - x[1]) / (y[2] - x[2]) }' <<<"$out"
}
if [ "$MODE" = throughput ]; then
  platform_pids=("${STACK_PIDS[gateway]}")
  for name in "${STACK_SERVICES[@]}"; do platform_pids+=("${STACK_PIDS[$name]}"); done
  printf '| round | process | CPU µs per list | voluntary switches per list | involuntary |\n|---:|---|---:|---:|---:|\n' >"$DETAIL"
  echo "| round | platform RPS / CPU µs per list / steal % | skeleton RPS / CPU µs / steal % | RPS platform / skeleton | CPU platform / skeleton |"
  echo "|---:|---|---|---:|---:|"
  rps_ratios="" cpu_ratios=""
  for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then
      p=$(wrk_list "$STACK_URL$LIST_PATH" "${platform_pids[@]}")
      s=$(wrk_list "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" "${SKELETON_PIDS[@]}")
    else
      s=$(wrk_list "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" "${SKELETON_PIDS[@]}")
      p=$(wrk_list "$STACK_URL$LIST_PATH" "${platform_pids[@]}")
    fi
    read -r prps pcpu psteal <<<"$p"
    read -r srps scpu ssteal <<<"$s"
    r=$(awk -v a="$prps" -v b="$srps" 'BEGIN { printf "%.2f", a / b }')
    c=$(awk -v a="$pcpu" -v b="$scpu" 'BEGIN { printf "%.2f", a / b }')
    rps_ratios+="$r " cpu_ratios+="$c "
    echo "| $round | $prps / $pcpu / $psteal | $srps / $scpu / $ssteal | $r | $c |"
  done
  echo
  echo "per process (CPU, thread switches per list): $DETAIL"
  echo "median over $ROUNDS rounds, $WORKERS workers: throughput platform / skeleton $(median <<<"$rps_ratios") (target ≥ 0.9), CPU per list platform / skeleton $(median <<<"$cpu_ratios") (target ≤ 1.15)"
  exit 0
fi

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
  echo "median that the $target's gateway adds at p99 over $ROUNDS rounds at $RATE/s, $WORKERS workers: $(median <<<"${adds[$target]}") ms"
done
if [ "$RUNQ" = 1 ]; then
  echo
  echo "CPU waits and steal per run: $RUNQ_DIR/<round>-<what>.md; steal during each run:"
  for f in "$RUNQ_DIR"/*.md; do printf '  %s: %s\n' "$(basename "$f" .md)" "$(sed -n 's/.*steal \([0-9.]*\) %.*/\1 %/p' "$f")"; done
fi
