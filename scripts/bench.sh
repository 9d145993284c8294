#!/usr/bin/env bash
# `make bench`: the speed figures of docs/benchmarks.md, in one run on one
# machine, every server a separate process as in production:
#
#   1. the platform (etcd, three services on SQLite, gateway), seeded through
#      its API: wrk with the news-site mix (loadtest/mix.lua) and with
#      GET /api/v1/articles?limit=20 alone, with the gateway's micro-cache
#      off (every other stage too) and then on (wrk, and open loop at half
#      that maximum); RSS idle and under load;
#   2. open loop at half the article list's maximum: the same page made
#      directly over gRPC vs through the gateway (p99 difference); then the
#      comment service is killed (SIGKILL) and the article list is measured
#      again, open loop at the same rate and wrk: the pages must stay 200,
#      marked degraded, and fast;
#   3. the bare skeleton (bench crate: axum + plain tonic + canned data, same
#      process topology) under the same article-list load, and the same open
#      loop direct vs through its gateway (what the extra hop costs with no
#      platform at all);
#   4. an axum hello-world under the same load (the HTTP ceiling).
#
# Repeated for each runtime flavour in WORKERS ("0 1": one worker per core,
# then one worker per process), set through the real knob
# APP_PLATFORM__RUNTIME__WORKER_THREADS.
#
#   scripts/bench.sh            # release build, 20 s per stage (~6 min)
#   scripts/bench.sh --smoke    # debug binaries, tiny load, checks every
#                               # stage produced numbers (make test runs it)
#
# Knobs: WORKERS, DURATION (s per wrk stage), LATENCY_DURATION (s per open
# loop stage), WRK_THREADS, WRK_CONNECTIONS, BIN, OUT (results file),
# ROUNDS (alternating on/off pairs for the protection ratio, 3; --smoke: 1),
# CACHE_FULL_MIB (the micro-cache bound filled for the memory figure, 2;
# --smoke: 1), OVERLOAD (multiples of the article list's maximum for the overload stage,
# "2 5 10"; --smoke: 2; empty: skipped),
# PROTECTION (on, the default: the gateway's rate limits and load shedding
# on, as in production, and the article list measured once more with both
# off, on the same stack, for the on/off ratio; off: both off throughout).
# The rate limits are sized so that the seeding and the mix's writes and
# logins are never refused: what is measured is their cost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

SMOKE=false
[ "${1:-}" = --smoke ] && SMOKE=true
if $SMOKE; then
  BIN=${BIN:-target/debug} WORKERS=${WORKERS:-1} DURATION=${DURATION:-2} OVERLOAD=${OVERLOAD-2} ROUNDS=${ROUNDS:-1}
  LATENCY_DURATION=${LATENCY_DURATION:-2} WRK_THREADS=${WRK_THREADS:-1}
  WRK_CONNECTIONS=${WRK_CONNECTIONS:-4} ARTICLES=25 COMMENTS=10 CACHE_FULL_MIB=${CACHE_FULL_MIB:-1}
else
  BIN=${BIN:-target/release} WORKERS=${WORKERS:-0 1} DURATION=${DURATION:-20} OVERLOAD=${OVERLOAD-2 5 10} ROUNDS=${ROUNDS:-3}
  LATENCY_DURATION=${LATENCY_DURATION:-10} WRK_THREADS=${WRK_THREADS:-2}
  WRK_CONNECTIONS=${WRK_CONNECTIONS:-50} ARTICLES=100 COMMENTS=200 CACHE_FULL_MIB=${CACHE_FULL_MIB:-2}
fi
OUT_DIR=target/bench
OUT=${OUT:-$OUT_DIR/results.md}
LOGS=$OUT_DIR/logs
WRK="wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s --latency"
LIST_PATH="/api/v1/articles?limit=20"
PROTECTION=${PROTECTION:-on}
stack_raise_limits SIGN_UP LOGIN WRITES
PROTECTION_OFF=(APP_GATEWAY__LIMITS__ENABLED=false APP_GATEWAY__HTTP__SHED__MAX_IN_FLIGHT=0)
case $PROTECTION in
  on) ;;
  off) export "${PROTECTION_OFF[@]}" ;;
  *) echo "PROTECTION must be on or off" >&2; exit 2 ;;
esac

# Ports away from make run's and make loadtest's.
STACK_PORT=18080 STACK_GRPC_PORT=20151 STACK_ADMIN_PORT=19100 STACK_ETCD_PORT=22479
SKELETON_PORT=18081 SKELETON_GRPC_PORT=20161 HELLO_PORT=18082

say() { stack_say "$@"; }
command -v wrk >/dev/null || { echo "wrk is missing: scripts/deps.sh bench installs it" >&2; exit 1; }

if [ "$BIN" = target/release ]; then
  say "building release binaries"
  # The served binaries alone (the feature set of `make run
  # PROFILE=release`, which a run of it before this reuses), then the bench
  # crate's alone. BIN=./target/release skips the build. One `--workspace` build would unify
  # features with the bench crate's and recompile the whole platform.
  cargo build --release -p gateway -p user -p content -p comment
  cargo build --release -p bench --bins
elif [ "$BIN" = target/debug ]; then
  # `make test` has just built every binary (with the test build's
  # features); building again here would recompile half the workspace.
  for bin in gateway "${STACK_SERVICES[@]}" skeleton-gateway skeleton-service hello loadgen; do
    [ -x "$BIN/$bin" ] || { cargo build --workspace --bins; break; }
  done
fi
mkdir -p "$OUT_DIR" "$LOGS"

# Servers of the skeleton and hello stages.
extra_pids=()
stop_extra() {
  local pid
  for pid in "${extra_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${extra_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
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

wait_http() { # url
  for _ in $(seq 1 600); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "nothing answers on $1" >&2; return 1
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }

declare -A R=()  # "<workers>/<stage>/<field>" -> value

# Every stage but "cached" measures the gateway with its micro-cache off
# (what the platform costs per request); restart_gateway APP_GATEWAY__CACHE__ENABLED=true turns it on.
export APP_GATEWAY__CACHE__ENABLED=false
# parse KEY PREFIX LINE: RESULT a=1 b=2 -> R[KEY/a]=1 …
parse() {
  local key=$1 line=$2 pair
  [[ $line == RESULT* ]] || { echo "no RESULT line for $key" >&2; return 1; }
  for pair in ${line#RESULT }; do R[$key/${pair%%=*}]=${pair#*=}; done
}

sum_services() { # KEY FIELD: FIELD summed over the three services' processes
  awk -v a="${R[$1/${2}_user]:-0}" -v b="${R[$1/${2}_content]:-0}" -v c="${R[$1/${2}_comment]:-0}" \
    'BEGIN { s = a + b + c; printf (s == int(s) ? "%d" : "%.1f"), s }'
}

mib() { # pid field -> MiB of /proc/<pid>/status field (VmRSS, VmHWM)
  awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

# counters PID -> "utime stime switches syscr syscw" so far: user and system
# clock ticks, context switches of its live threads (voluntary: it waited,
# involuntary: it was preempted) and read- and write-class system calls.
# Under concurrency these, not a sequential count, say where a VM's
# expensive kernel entries and wake-ups go.
counters() {
  local utime stime switches io
  read -r utime stime < <(awk '{ print $14, $15 }' "/proc/$1/stat" 2>/dev/null || echo "0 0")
  switches=$(cat /proc/"$1"/task/*/status 2>/dev/null \
    | awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }')
  io="0 0"
  [ -r "/proc/$1/io" ] && io=$(awk '$1 == "syscr:" { r = $2 } $1 == "syscw:" { w = $2 } END { print r + 0, w + 0 }' "/proc/$1/io")
  echo "$utime $stime $switches $io"
}

# wrk_stage KEY URL MIX NAME=PID…: wrk, with VmRSS sampled three quarters in
# and each process's CPU time per request.
wrk_stage() {
  local key=$1 url=$2 mix=$3; shift 3
  local out="$LOGS/wrk-${key//\//-}.txt" pair
  declare -A before=()
  for pair in "$@"; do before[${pair%%=*}]=$(counters "${pair#*=}"); done
  say "wrk $key: $url (MIX=$mix)"
  MIX=$mix ${WRK_WRAP:-} $WRK -s loadtest/mix.lua "$url" >"$out" 2>&1 &
  local wrk_pid=$!
  sleep "$(awk -v d="$DURATION" 'BEGIN { print d * 0.75 }')"
  for pair in "$@"; do R[$key/rss_${pair%%=*}]=$(mib "${pair#*=}" VmRSS); done
  wait "$wrk_pid" || { cat "$out" >&2; return 1; }
  parse "$key" "$(grep '^RESULT' "$out" || true)"
  local name fields
  for pair in "$@"; do
    name=${pair%%=*}
    # cpu (µs), usr (µs), sys (µs), csw, sysc (read + write calls): per request.
    fields=$(awk -v a="${before[$name]}" -v b="$(counters "${pair#*=}")" \
      -v n="${R[$key/requests]}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        split(a, x, " "); split(b, y, " "); us = 1e6 / hz / n
        printf "%.0f %.0f %.0f %.1f %.1f", (y[1] + y[2] - x[1] - x[2]) * us, (y[1] - x[1]) * us,
          (y[2] - x[2]) * us, (y[3] - x[3]) / n, (y[4] + y[5] - x[4] - x[5]) / n }')
    read -r "R[$key/cpu_$name]" "R[$key/usr_$name]" "R[$key/sys_$name]" \
      "R[$key/csw_$name]" "R[$key/sysc_$name]" <<<"$fields"
  done
}

restart_gateway() { # [VAR=value…]: the gateway again, with these settings
  stack_halt 30 "${STACK_PIDS[gateway]}"
  local assignment
  for assignment in "$@"; do export "${assignment?}"; done
  stack_launch gateway
  for assignment in "$@"; do unset "${assignment%%=*}"; done
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$STACK_ADMIN_PORT/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the gateway never became ready again" >&2
  return 1
}

pin_stack() { # CPUS: every thread of the stack's processes on these CPUs
  local pid
  for pid in "${STACK_PIDS[@]}"; do taskset -a -p -c "$1" "$pid" >/dev/null; done
}

stack_rss() { # KEY FIELD FIELDNAME
  local name
  for name in gateway user content comment; do
    R[$1/${3}_$name]=$(mib "${STACK_PIDS[$name]}" "$2")
  done
}

bench_flavour() {
  local w=$1 half
  say "=== worker threads per process: $w (0 = one per core)"

  # 1. The platform.
  DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-bench.XXXXXX")
  STACK_BIN=$BIN STACK_DATA=$DATA_DIR STACK_LOGS=$LOGS/w$w STACK_WORKERS=$w
  stack_check_ports
  stack_start
  stack_rss "$w/start" VmRSS rss
  say "seeding $ARTICLES articles and $COMMENTS comments"
  local seeded
  seeded=$("$BIN/loadgen" seed "$STACK_URL" --articles "$ARTICLES" --comments "$COMMENTS")
  eval "$(printf '%s\n' "$seeded" | sed -n 's/^\(BENCH_[A-Z_]*=[A-Za-z0-9._-]*\)$/export \1/p')"
  R[$w/platform/bytes]=$(curl -fsS "$STACK_URL$LIST_PATH" | wc -c)
  sleep 1
  stack_rss "$w/idle" VmRSS rss
  local pids=(gateway="${STACK_PIDS[gateway]}" user="${STACK_PIDS[user]}"
    content="${STACK_PIDS[content]}" comment="${STACK_PIDS[comment]}")
  wrk_stage "$w/mix" "$STACK_URL" mix "${pids[@]}"
  wrk_stage "$w/list" "$STACK_URL$LIST_PATH" list "${pids[@]}"
  if [ "$PROTECTION" = on ]; then
    # The same list with rate limits and shedding off: only the gateway
    # restarts, so data, services and caches are the ones just measured.
    # ROUNDS alternating pairs (on, off), the list above the first "on":
    # one pair moves by more than the 5 % it is meant to show.
    local r on off
    for r in $(seq 1 "$ROUNDS"); do
      on=list off=listoff
      [ "$r" = 1 ] || { on=liston$r off=listoff$r; }
      if [ "$r" != 1 ]; then
        restart_gateway
        wrk_stage "$w/$on" "$STACK_URL$LIST_PATH" list gateway="${STACK_PIDS[gateway]}"
      fi
      restart_gateway "${PROTECTION_OFF[@]}"
      wrk_stage "$w/$off" "$STACK_URL$LIST_PATH" list gateway="${STACK_PIDS[gateway]}"
      R[$w/protection/ratios]+="$(ratio "${R[$w/$on/rps]}" "${R[$w/$off/rps]}") "
    done
    restart_gateway
    pids[0]=gateway="${STACK_PIDS[gateway]}"
  fi

  # 1b. The same with the gateway's micro-cache on (the rest of the run has
  # it off, so every other figure is the uncached platform's), and open
  # loop at half of that maximum.
  restart_gateway APP_GATEWAY__CACHE__ENABLED=true
  wrk_stage "$w/cached" "$STACK_URL$LIST_PATH" list gateway="${STACK_PIDS[gateway]}" \
    user="${STACK_PIDS[user]}" content="${STACK_PIDS[content]}" comment="${STACK_PIDS[comment]}"
  R[$w/cachedhalf/rate]=$(( ${R[$w/cached/rps]%.*} / 2 ))
  [ "${R[$w/cachedhalf/rate]}" -ge 1 ] || R[$w/cachedhalf/rate]=1
  say "open loop at ${R[$w/cachedhalf/rate]}/s for ${LATENCY_DURATION}s: through the gateway, micro-cache on"
  parse "$w/cachedhalf" "$("$BIN/loadgen" http "$STACK_URL$LIST_PATH" --rate "${R[$w/cachedhalf/rate]}" --duration "$LATENCY_DURATION" | grep '^RESULT')"
  restart_gateway
  # 1c. Memory with the micro-cache full at its bound: a bound of
  # CACHE_FULL_MIB filled past it with every list page of every size and
  # every article and comment page; the gateway's RSS before and after, and
  # what the cache says it holds. (The default bound, 64 MiB, would take
  # tens of thousands of articles to fill.)
  restart_gateway APP_GATEWAY__CACHE__ENABLED=true "APP_GATEWAY__CACHE__MAX_BYTES=$((CACHE_FULL_MIB * 1048576))"
  R[$w/cachefull/before]=$(mib "${STACK_PIDS[gateway]}" VmRSS)
  say "filling a ${CACHE_FULL_MIB} MiB micro-cache with every page of the seeded data"
  parse "$w/cachefull" "$(scripts/bench/fill-cache.py "$STACK_URL" "$BENCH_ARTICLE_MIN" "$BENCH_ARTICLE_MAX")"
  R[$w/cachefull/after]=$(mib "${STACK_PIDS[gateway]}" VmRSS)
  R[$w/cachefull/held]=$(curl -fsS "http://127.0.0.1:$STACK_ADMIN_PORT/metrics" |
    awk '/^http_cache_bytes[{ ]/ { s += $NF } END { printf "%.1f", s / 1048576 }')
  restart_gateway

  # 2. Open loop at half the list's maximum: via the gateway, then direct.
  half=$(( ${R[$w/list/rps]%.*} / 2 ))
  [ "$half" -ge 1 ] || half=1
  R[$w/half/rate]=$half
  say "open loop at $half/s for ${LATENCY_DURATION}s: through the gateway"
  parse "$w/via" "$("$BIN/loadgen" http "$STACK_URL$LIST_PATH" --rate "$half" --duration "$LATENCY_DURATION" | grep '^RESULT')"
  say "open loop at $half/s for ${LATENCY_DURATION}s: the same calls directly over gRPC"
  parse "$w/direct" "$("$BIN/loadgen" grpc-page --user "127.0.0.1:$STACK_GRPC_PORT" \
    --content "127.0.0.1:$((STACK_GRPC_PORT + 1))" --comment "127.0.0.1:$((STACK_GRPC_PORT + 2))" \
    --rate "$half" --duration "$LATENCY_DURATION" | grep '^RESULT')"
  stack_rss "$w/peak" VmHWM rss

  # 2a. Overload: open loop at 2×, 5× and 10× the list's maximum, cache off,
  # protection as configured. Failing fast must keep the answered share:
  # goodput (2xx a second) ≥ 90 % of the maximum, and the admitted
  # requests' p99 within 2× the half-load one. A 10× open loop costs its
  # generator about a core; sharing the stack's cores, it would take them
  # from the stack and the curve would be the generator's. So, given two
  # cores or more, the stack is pinned to the first and wrk and the
  # generator to the rest for this stage (a load host of their own, as far
  # as one machine allows), and the maximum and half-load p99 it is
  # compared with are measured pinned too.
  local k gen=() max=list base=via
  if [ -n "$OVERLOAD" ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin_stack 0
    gen=(taskset -c "1-$(($(nproc) - 1))")
    WRK_WRAP="${gen[*]}" wrk_stage "$w/overmax" "$STACK_URL$LIST_PATH" list
    R[$w/overhalf/rate]=$(( ${R[$w/overmax/rps]%.*} / 2 ))
    say "open loop at ${R[$w/overhalf/rate]}/s for ${LATENCY_DURATION}s: half the pinned maximum"
    parse "$w/overhalf" "$("${gen[@]}" "$BIN/loadgen" http "$STACK_URL$LIST_PATH" --rate "${R[$w/overhalf/rate]}" --duration "$LATENCY_DURATION" | grep '^RESULT')"
    max=overmax base=overhalf
  fi
  R[$w/overmax]=$max R[$w/overbase]=$base
  for k in $OVERLOAD; do
    R[$w/over$k/rate]=$(( ${R[$w/$max/rps]%.*} * k ))
    say "open loop at ${k}× the maximum (${R[$w/over$k/rate]}/s) for ${LATENCY_DURATION}s: overload"
    parse "$w/over$k" "$("${gen[@]}" "$BIN/loadgen" http "$STACK_URL$LIST_PATH" --rate "${R[$w/over$k/rate]}" --duration "$LATENCY_DURATION" | grep '^RESULT')"
  done
  [ "${#gen[@]}" -eq 0 ] || pin_stack "0-$(($(nproc) - 1))"

  # 2b. A low-priority dependency down must not hurt the article list.
  say "killing the comment service (SIGKILL)"
  kill -KILL "${STACK_PIDS[comment]}"
  wait "${STACK_PIDS[comment]}" 2>/dev/null || true
  sleep 1
  R[$w/down/degraded]=$(curl -fsS "$STACK_URL$LIST_PATH" | grep -o '"degraded":\[[^]]*\]' || echo "not degraded")
  say "open loop at $half/s for ${LATENCY_DURATION}s with the comment service down"
  parse "$w/down" "$("$BIN/loadgen" http "$STACK_URL$LIST_PATH" --rate "$half" --duration "$LATENCY_DURATION" | grep '^RESULT')"
  wrk_stage "$w/listdown" "$STACK_URL$LIST_PATH" list gateway="${STACK_PIDS[gateway]}" \
    user="${STACK_PIDS[user]}" content="${STACK_PIDS[content]}"
  stack_stop
  rm -rf "$DATA_DIR"; DATA_DIR=""

  # 3. The bare skeleton, same topology.
  skeleton_start "$BIN" "$w" "$LOGS"
  extra_pids+=("${SKELETON_PIDS[@]}")
  SKELETON_PIDS=()
  wait_http "http://127.0.0.1:$SKELETON_PORT$LIST_PATH"
  R[$w/skeleton/bytes]=$(curl -fsS "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" | wc -c)
  wrk_stage "$w/skeleton" "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" list \
    gateway="${extra_pids[3]}" user="${extra_pids[0]}" content="${extra_pids[1]}" comment="${extra_pids[2]}"
  say "open loop at $half/s for ${LATENCY_DURATION}s: the skeleton, through its gateway and directly"
  parse "$w/skelvia" "$("$BIN/loadgen" http "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" --rate "$half" --duration "$LATENCY_DURATION" | grep '^RESULT')"
  parse "$w/skeldirect" "$("$BIN/loadgen" grpc-page --user "127.0.0.1:$SKELETON_GRPC_PORT" \
    --content "127.0.0.1:$((SKELETON_GRPC_PORT + 1))" --comment "127.0.0.1:$((SKELETON_GRPC_PORT + 2))" \
    --rate "$half" --duration "$LATENCY_DURATION" | grep '^RESULT')"
  stop_extra

  # 4. The HTTP ceiling.
  APP_PLATFORM__RUNTIME__WORKER_THREADS=$w "$BIN/hello" "127.0.0.1:$HELLO_PORT" >"$LOGS/hello.log" 2>&1 &
  extra_pids+=("$!")
  wait_http "http://127.0.0.1:$HELLO_PORT/"
  wrk_stage "$w/hello" "http://127.0.0.1:$HELLO_PORT$LIST_PATH" list hello="${extra_pids[0]}"
  stop_extra
}

LOAD_BEFORE=$(uptime)
for w in $WORKERS; do bench_flavour "$w"; done
LOAD_AFTER=$(uptime)

# Every stage must have produced numbers; the smoke run checks only this.
missing=()
for w in $WORKERS; do
  stages="mix list cached cachedhalf skeleton hello via direct down listdown skelvia skeldirect"
  [ "$PROTECTION" = on ] && stages="$stages listoff"
  for k in $OVERLOAD; do stages="$stages over$k"; done
  for stage in $stages; do
    for field in rps p50_ms p99_ms requests; do
      [ -n "${R[$w/$stage/$field]:-}" ] || missing+=("$w/$stage/$field")
    done
    [ "${R[$w/$stage/requests]:-0}" -gt 0 ] || missing+=("$w/$stage: no requests")
  done
  for name in gateway user content comment; do
    for key in start/rss idle/rss mix/rss peak/rss; do
      v=${R[$w/$key"_"$name]:-?}
      [ "$v" != "?" ] || missing+=("$w/$key $name")
    done
  done
done

minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", a - b }'; }

{
  echo "### $(date -u +%Y-%m-%d) — $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores, Linux $(uname -r)"
  echo
  echo "Command: \`$( $SMOKE && echo "scripts/bench.sh --smoke" || echo "make bench")\` (WORKERS=\"$WORKERS\", \`$WRK -s loadtest/mix.lua\`, open loop ${LATENCY_DURATION}s, binaries $BIN)."
  echo "Load before: \`${LOAD_BEFORE#*load }\`; after: \`${LOAD_AFTER#*load }\`."
  echo
  echo "| workers | stage | RPS | p50 ms | p99 ms | errors |"
  echo "|---|---|---:|---:|---:|---:|"
  for w in $WORKERS; do
    for stage in mix list cached skeleton hello; do
      case $stage in
        mix) label="platform, news-site mix";;
        list) label="platform, GET $LIST_PATH";;
        cached) label="platform with the micro-cache, same route";;
        skeleton) label="bare skeleton, same route";;
        hello) label="axum hello-world";;
      esac
      echo "| $w | $label | ${R[$w/$stage/rps]:-?} | ${R[$w/$stage/p50_ms]:-?} | ${R[$w/$stage/p99_ms]:-?} | ${R[$w/$stage/errors]:-?} |"
    done
  done
  echo
  if [ "$PROTECTION" = on ]; then
    echo "Article list with the gateway's rate limits and load shedding on vs off (same stack, gateway restarted; target: on ≥ 0.95 × off):"
    echo
    echo "| workers | RPS on | RPS off | on / off | p99 ms on / off | on / off, each of $ROUNDS alternating rounds | median |"
    echo "|---|---:|---:|---:|---:|---|---:|"
    for w in $WORKERS; do
      median=$(tr ' ' '\n' <<<"${R[$w/protection/ratios]:-}" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
      echo "| $w | ${R[$w/list/rps]:-?} | ${R[$w/listoff/rps]:-?} | $(ratio "${R[$w/list/rps]:-0}" "${R[$w/listoff/rps]:-0}") | ${R[$w/list/p99_ms]:-?} / ${R[$w/listoff/p99_ms]:-?} | ${R[$w/protection/ratios]:-?} | **${median:-?}** |"
    done
    echo
  fi
  if [ -n "$OVERLOAD" ]; then
    echo "Overload: open loop on the article list (cache off) at k × the wrk maximum; goodput = 2xx answers a second (target ≥ 0.90 × the maximum; \"degraded\": those of them without authors or comment counts, cheaper for the services), p99 of the answered ones vs the half-load p99 (target ≤ 2×). \"pinned\": the stack on CPU 0, wrk and the generator on the others, the maximum and half-load p99 measured so too:"
    echo
    echo "| workers | load | maximum RPS | offered RPS | goodput RPS | goodput / maximum | degraded answers | refused or failed | p99 ms admitted (half-load) | p99 / half-load p99 |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for w in $WORKERS; do
      max=${R[$w/overmax]:-list} base=${R[$w/overbase]:-via} pinned=""
      [ "$max" = list ] || pinned=" (pinned)"
      for k in $OVERLOAD; do
        good=$(awk -v r="${R[$w/over$k/rps]:-0}" -v n="${R[$w/over$k/requests]:-0}" -v e="${R[$w/over$k/errors]:-0}" 'BEGIN { if (n > 0) printf "%.0f", r * (n - e) / n; else print 0 }')
        echo "| $w | ${k}× | ${R[$w/$max/rps]:-?}$pinned | ${R[$w/over$k/rps]:-?} | $good | **$(ratio "$good" "${R[$w/$max/rps]:-0}")** | ${R[$w/over$k/degraded]:-?} | ${R[$w/over$k/errors]:-?} of ${R[$w/over$k/requests]:-?} | ${R[$w/over$k/p99_ms]:-?} (${R[$w/$base/p99_ms]:-?}) | $(ratio "${R[$w/over$k/p99_ms]:-0}" "${R[$w/$base/p99_ms]:-0}") |"
      done
    done
    echo
  fi
  echo "| workers | platform / skeleton (cache off; target ≥ 0.95) | micro-cache / skeleton (target ≥ 3) | platform / hello | skeleton / hello | page bytes platform / skeleton |"
  echo "|---|---:|---:|---:|---:|---:|"
  for w in $WORKERS; do
    echo "| $w | **$(ratio "${R[$w/list/rps]:-0}" "${R[$w/skeleton/rps]:-0}")** | **$(ratio "${R[$w/cached/rps]:-0}" "${R[$w/skeleton/rps]:-0}")** | $(ratio "${R[$w/list/rps]:-0}" "${R[$w/hello/rps]:-0}") | $(ratio "${R[$w/skeleton/rps]:-0}" "${R[$w/hello/rps]:-0}") | ${R[$w/platform/bytes]:-?} / ${R[$w/skeleton/bytes]:-?} |"
  done
  echo
  echo "Micro-cache memory at its bound (\`cache.max_bytes\` = $CACHE_FULL_MIB MiB), filled with every page of the seeded data:"
  echo
  echo "| workers | requests | MiB asked for | MiB the cache holds | gateway RSS before → after, MiB |"
  echo "|---|---:|---:|---:|---|"
  for w in $WORKERS; do
    echo "| $w | ${R[$w/cachefull/requests]:-?} | $(awk -v b="${R[$w/cachefull/bytes]:-0}" 'BEGIN { printf "%.1f", b / 1048576 }') | ${R[$w/cachefull/held]:-?} | ${R[$w/cachefull/before]:-?} → ${R[$w/cachefull/after]:-?} |"
  done
  echo
  echo "Article list with the micro-cache on, open loop at half its wrk maximum:"
  echo
  echo "| workers | rate/s | p50 ms | p99 ms | errors |"
  echo "|---|---:|---:|---:|---:|"
  for w in $WORKERS; do
    echo "| $w | ${R[$w/cachedhalf/rate]:-?} | ${R[$w/cachedhalf/p50_ms]:-?} | ${R[$w/cachedhalf/p99_ms]:-?} | ${R[$w/cachedhalf/errors]:-?} |"
  done
  echo
  echo "Open loop at half the article list's maximum (same page: ListArticles, then BatchGetUsers ∥ CountComments):"
  echo
  echo "| workers | rate/s | target | direct gRPC p50 / p99 ms | via gateway p50 / p99 ms | gateway adds at p99 (target ≤ 1 ms) | errors direct / via |"
  echo "|---|---:|---|---:|---:|---:|---:|"
  for w in $WORKERS; do
    echo "| $w | ${R[$w/half/rate]:-?} | platform | ${R[$w/direct/p50_ms]:-?} / ${R[$w/direct/p99_ms]:-?} | ${R[$w/via/p50_ms]:-?} / ${R[$w/via/p99_ms]:-?} | **$(minus "${R[$w/via/p99_ms]:-0}" "${R[$w/direct/p99_ms]:-0}")** | ${R[$w/direct/errors]:-?} / ${R[$w/via/errors]:-?} |"
    echo "| $w | ${R[$w/half/rate]:-?} | bare skeleton | ${R[$w/skeldirect/p50_ms]:-?} / ${R[$w/skeldirect/p99_ms]:-?} | ${R[$w/skelvia/p50_ms]:-?} / ${R[$w/skelvia/p99_ms]:-?} | $(minus "${R[$w/skelvia/p99_ms]:-0}" "${R[$w/skeldirect/p99_ms]:-0}") | ${R[$w/skeldirect/errors]:-?} / ${R[$w/skelvia/errors]:-?} |"
  done
  echo
  echo "Article list with the comment service killed (SIGKILL) vs up: the same open loop rate, and wrk (closed loop):"
  echo
  echo "| workers | rate/s | up p50 / p99 ms | down p50 / p99 ms | errors up / down | wrk RPS up / down | wrk p99 ms up / down | a page while down |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
  for w in $WORKERS; do
    echo "| $w | ${R[$w/half/rate]:-?} | ${R[$w/via/p50_ms]:-?} / ${R[$w/via/p99_ms]:-?} | ${R[$w/down/p50_ms]:-?} / **${R[$w/down/p99_ms]:-?}** | ${R[$w/via/errors]:-?} / ${R[$w/down/errors]:-?} | ${R[$w/list/rps]:-?} / ${R[$w/listdown/rps]:-?} | ${R[$w/list/p99_ms]:-?} / ${R[$w/listdown/p99_ms]:-?} | \`${R[$w/down/degraded]:-?}\` |"
  done
  echo
  echo "CPU time per request in µs (user + system, from /proc/<pid>/stat over the wrk stage), article list:"
  echo
  echo "| workers | target | gateway | user | content | comment | total |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for w in $WORKERS; do
    for stage in list cached skeleton; do
      total=$(( ${R[$w/$stage/cpu_gateway]:-0} + ${R[$w/$stage/cpu_user]:-0} + ${R[$w/$stage/cpu_content]:-0} + ${R[$w/$stage/cpu_comment]:-0} ))
      echo "| $w | $stage | ${R[$w/$stage/cpu_gateway]:-?} | ${R[$w/$stage/cpu_user]:-?} | ${R[$w/$stage/cpu_content]:-?} | ${R[$w/$stage/cpu_comment]:-?} | $total |"
    done
    echo "| $w | hello | ${R[$w/hello/cpu_hello]:-?} | | | | ${R[$w/hello/cpu_hello]:-?} |"
  done
  echo
  echo "The same CPU time split, per request: user / system µs, context switches (voluntary + involuntary, live threads) and read + write system calls (/proc/<pid>/io), article list:"
  echo
  echo "| workers | target | gateway usr / sys µs | gateway switches | gateway syscalls | services usr / sys µs | services switches | services syscalls |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for w in $WORKERS; do
    for stage in list skeleton; do
      echo "| $w | $stage | ${R[$w/$stage/usr_gateway]:-?} / ${R[$w/$stage/sys_gateway]:-?} | ${R[$w/$stage/csw_gateway]:-?} | ${R[$w/$stage/sysc_gateway]:-?} | $(sum_services "$w/$stage" usr) / $(sum_services "$w/$stage" sys) | $(sum_services "$w/$stage" csw) | $(sum_services "$w/$stage" sysc) |"
    done
    echo "| $w | hello | ${R[$w/hello/usr_hello]:-?} / ${R[$w/hello/sys_hello]:-?} | ${R[$w/hello/csw_hello]:-?} | ${R[$w/hello/sysc_hello]:-?} | | | |"
  done
  echo
  echo "RSS in MiB (targets: idle ≤ 30, under load ≤ 100): idle at start (ready, before any request) and 1 s after seeding (users signed up, articles and comments written); VmRSS three quarters into the mix; VmHWM (peak) at the end."
  echo
  echo "| workers | process | idle at start | after seeding | under the mix | peak |"
  echo "|---|---|---:|---:|---:|---:|"
  for w in $WORKERS; do
    for name in gateway user content comment; do
      echo "| $w | $name | ${R[$w/start/rss_$name]:-?} | ${R[$w/idle/rss_$name]:-?} | ${R[$w/mix/rss_$name]:-?} | ${R[$w/peak/rss_$name]:-?} |"
    done
    echo "| $w | skeleton gateway | | | ${R[$w/skeleton/rss_gateway]:-?} | |"
  done
} | tee "$OUT"
echo
say "written to $OUT; wrk output and server logs in $LOGS/"

if [ ${#missing[@]} -gt 0 ]; then
  echo "stages without numbers: ${missing[*]}" >&2
  exit 1
fi
