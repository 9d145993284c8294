#!/usr/bin/env bash
# make bench's overload stage on its own, for trying the door's settings:
# the platform (release binaries, SQLite, seeded) pinned to CPU 0, wrk and
# the open-loop generator to CPU 1, then the article list (micro-cache off)
# at a tenth, half and k × the maximum. Goodput = 2xx answers a second
# (issue #19: ≥ 0.90 × the maximum); the p99 is of the answered requests
# (issue #19: ≤ 2 × the unloaded p99, given against the light and the
# half-load p99). The generator's own CPU is printed with each stage: a
# generator short of CPU makes its own latency.
#
#   scripts/bench-overload.sh                        # OVERLOAD="2 5 10" DURATION=10
#   MAX=1927 scripts/bench-overload.sh               # skip wrk: k × this maximum
#   APP_GATEWAY__HTTP__SHED__ADAPTIVE__TOLERANCE=5 scripts/bench-overload.sh
#   SERVICES_CPU=0.15 CFS_PERIOD_US=10000 scripts/bench-overload.sh
#   SPLIT=1 SERVICES_BIN=target/debug scripts/bench-overload.sh
#   SPLIT=1 MYSQL=mysql://root@127.0.0.1:3306 APP_CONTENT__CACHE__TTL=0s … scripts/bench-overload.sh
# Any APP_* setting reaches the stack (above: the adaptive door).
#
# SERVICES_CPU puts the three services in a cgroup of their own with that
# much of CPU 0 (a CFS quota per CFS_PERIOD_US, 100000 as the kubelet's
# default), the gateway keeping the rest: in a cluster the gateway's pods
# and the services' pods do not share a CPU, so a refusal costs the
# gateway's CPU, not the services'. Pinned together without it, every
# refusal is taken from the lists (docs/benchmarks.md, overload). Under a
# quota wrk's 50 connections in a closed loop find less than half of what
# the services answer to open-loop load, so without MAX the maximum is the
# goodput of an open-loop stage at 4× wrk's.
#
# SPLIT=1 gives the services (and etcd) CPU 0 to themselves with no quota,
# and the gateway CPU 2 when there is one (the cluster's shape: generator,
# gateway and services each on a CPU of their own), else CPU 1 beside the
# load. On two CPUs that shape only has the services as the bound when they
# are slower than the gateway: SERVICES_BIN=target/debug (built with
# `cargo build -p user -p content -p comment`) stands in for a backend that
# needs more CPU per call, e.g. one that waits on its database.
#
# MYSQL gives each service a database of its own on that server, as in
# production, instead of a SQLite file (dropped again at the end); with
# SPLIT a local mysqld joins the services on CPU 0. With the services'
# caches off (APP_<SERVICE>__CACHE__TTL=0s) every list then goes to the
# database (three queries, fewer when calls in flight share a load: PAGES):
# a backend bound by its database. Each stage then also gives the server's
# queries per answer.
#
# PAGES=N spreads the requests over N pages of the list, in turn, no two
# sharing an article (the seed grows to 20 × N articles), instead of the
# first page alone. On one page every call in flight asks the same thing
# and the services' single flights share one load among them, so the more
# in flight, the fewer queries per answer (1.7 with a bulkhead of 4, 0.4
# with 16: docs/benchmarks.md); over many pages little is shared, as for
# traffic that is not one hot page.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

BIN=${BIN:-target/release} DURATION=${DURATION:-10} OVERLOAD=${OVERLOAD:-2 5 10} PAGES=${PAGES:-1}
ARTICLES=$((PAGES * 20 > 200 ? PAGES * 20 : 200))
SERVICES_CPU=${SERVICES_CPU:-} CFS_PERIOD_US=${CFS_PERIOD_US:-100000} CGROUP='' SPLIT=${SPLIT:-}
[ -z "$SPLIT" ] || [ -z "$SERVICES_CPU" ] || { echo "SPLIT and SERVICES_CPU are two set-ups: choose one" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs two CPUs: the stack on one, the load on the other" >&2; exit 1; }
case $BIN in /*) ;; *) cargo build --release -p gateway -p user -p content -p comment -p bench --bins ;; esac
LIST="/api/v1/articles?limit=20"
STACK_PORT=18080 STACK_GRPC_PORT=20151 STACK_ADMIN_PORT=19100 STACK_ETCD_PORT=22479
STACK_BIN=$BIN STACK_SERVICES_BIN=${SERVICES_BIN:-} STACK_WORKERS=${WORKERS:-} STACK_LOGS=target/bench/logs/overload
STACK_DATA=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-overload.XXXXXX")
STACK_MYSQL=${MYSQL:-} STACK_MYSQL_PREFIX=overload_$$_ MYSQLD=''
mkdir -p "$STACK_LOGS"
cleanup() {
  stack_stop
  rm -rf "$STACK_DATA"
  [ -z "$CGROUP" ] || rmdir "$CGROUP"
  [ -z "$MYSQLD" ] || taskset -a -p "$MYSQLD_CPUS" "$MYSQLD" >/dev/null || true
  if [ -n "$STACK_MYSQL" ]; then
    for name in "${STACK_SERVICES[@]}"; do stack_mysql "DROP DATABASE IF EXISTS \`$STACK_MYSQL_PREFIX$name\`" || true; done
  fi
}
# limit_services: the services' processes into a CPU cgroup of their own,
# cgroup v2 (cpu.max) or v1 (cfs_quota_us), whichever has the cpu controller.
limit_services() {
  local quota name
  quota=$(awk -v c="$SERVICES_CPU" -v p="$CFS_PERIOD_US" 'BEGIN { printf "%d", c * p }')
  # The kernel refuses a quota under 1 ms with a bare "Invalid argument".
  [ "$quota" -ge 1000 ] || { echo "SERVICES_CPU × CFS_PERIOD_US is ${quota} µs; the kernel's least quota is 1000" >&2; exit 1; }
  if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    CGROUP=/sys/fs/cgroup/newsroom-overload-$$
    mkdir "$CGROUP" && echo "$quota $CFS_PERIOD_US" >"$CGROUP/cpu.max"
  elif [ -d /sys/fs/cgroup/cpu ]; then
    CGROUP=/sys/fs/cgroup/cpu/newsroom-overload-$$
    mkdir "$CGROUP" && echo "$CFS_PERIOD_US" >"$CGROUP/cpu.cfs_period_us" && echo "$quota" >"$CGROUP/cpu.cfs_quota_us"
  else
    echo "SERVICES_CPU needs a cgroup cpu controller (root)" >&2; exit 1
  fi
  for name in "${STACK_SERVICES[@]}"; do echo "${STACK_PIDS[$name]}" >"$CGROUP/cgroup.procs"; done
  echo "services limited to $SERVICES_CPU CPU (quota ${quota} µs per ${CFS_PERIOD_US} µs, $CGROUP)"
}
trap cleanup EXIT
# The seeding's writes are past the write limit.
export APP_GATEWAY__LIMITS__ENABLED=false
stack_start >/dev/null
"$BIN/loadgen" seed "$STACK_URL" --articles "$ARTICLES" --comments 2000 >/dev/null
URLS=("$STACK_URL$LIST") WRK_PAGES=()
if [ "$PAGES" -gt 1 ]; then
  # Each page's own next_cursor leads to the next, so the pages share no article.
  for ((j = 1; j < PAGES; j++)); do
    cursor=$(curl -fsS "${URLS[-1]}" | sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p')
    [ -n "$cursor" ] || { echo "page $j of the list has no next_cursor" >&2; exit 1; }
    URLS+=("$STACK_URL$LIST&cursor=$cursor")
  done
  # wrk takes the same pages in turn.
  printf 'local paths = {%s}\nlocal i = 0\nrequest = function() i = i %% #paths + 1; return wrk.format("GET", paths[i]) end\n' \
    "$(printf '"%s",' "${URLS[@]#"$STACK_URL"}")" >"$STACK_DATA/pages.lua"
  WRK_PAGES=(-s "$STACK_DATA/pages.lua")
  echo "the list's first $PAGES pages in turn ($ARTICLES articles)"
fi
for pid in "${STACK_PIDS[@]}"; do taskset -a -p -c 0 "$pid" >/dev/null; done
if [ -n "$SPLIT" ]; then
  gateway_cpu=1
  [ "$(nproc)" -lt 3 ] || gateway_cpu=2
  taskset -a -p -c "$gateway_cpu" "${STACK_PIDS[gateway]}" >/dev/null
  echo "services alone on CPU 0, the gateway on CPU $gateway_cpu, the load on CPU 1"
  # A local MySQL server is part of the services' CPU: it joins them on
  # CPU 0 for the run (its affinity is put back afterwards).
  if [ -n "$STACK_MYSQL" ] && MYSQLD=$(pidof mariadbd mysqld | awk '{ print $1 }') && [ -n "$MYSQLD" ]; then
    MYSQLD_CPUS=$(taskset -p "$MYSQLD" | awk '{ print $NF }')
    taskset -a -p -c 0 "$MYSQLD" >/dev/null
    echo "MySQL (pid $MYSQLD) on CPU 0 with the services"
  fi
fi
[ -z "$SERVICES_CPU" ] || limit_services

load() { # RATE: one open-loop stage, its RESULT line and the generator's CPU
  taskset -c 1 /usr/bin/time -f "generator_cpu_s=%U+%S" "$BIN/loadgen" http "${URLS[@]}" \
    --rate "$1" --duration "$DURATION" 2>&1 | grep -E '^RESULT|^generator' | tr '\n' ' '
}
# cpu NAME…: user + system seconds these processes have used so far.
# A local mysqld on CPU 0 counts as the services' (every one of its threads).
cpu() {
  local name t=0
  for name in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/${STACK_PIDS[$name]}/stat"))); done
  [ "$*" = gateway ] || [ -z "$MYSQLD" ] || t=$((t + $(awk '{ print $14 + $15 }' "/proc/$MYSQLD/stat")))
  awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
# queries: the MySQL server's statements so far (server-wide: run on a quiet
# server), so a stage's queries per answer is a count, not a timing.
queries() { [ -z "$STACK_MYSQL" ] || stack_mysql "SHOW GLOBAL STATUS LIKE 'Questions'" | awk '{ print $2 }'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
goodput() { # RESULT: 2xx answers a second
  awk -v n="$(field requests "$1")" -v e="$(field errors "$1")" -v d="$DURATION" 'BEGIN { printf "%d", (n - e) / d }'
}

# 2xx answers a second only: a door that refuses under wrk's 50
# connections would otherwise count its 503s as capacity.
max=${MAX:-$(taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" "${WRK_PAGES[@]}" "$STACK_URL$LIST" | awk -v d="$DURATION" '
  / requests in / { n = $1 } /Non-2xx/ { e = $NF } END { printf "%d", (n - e) / d }')}
how="wrk, 50 connections, pinned; 2xx a second"
[ -n "${MAX:-}" ] && how="given"
if [ -n "$SERVICES_CPU" ] && [ -z "${MAX:-}" ]; then
  # Under a quota the closed loop finds less than half of what open-loop
  # load gets answered: the maximum is then the goodput at 4× wrk's.
  r=$(load $((max * 4)))
  how="goodput of open-loop load at 4× wrk's $max/s"
  max=$(goodput "$r")
fi
# Two references for the admitted p99: half the maximum (the docs' tables)
# and a tenth of it, where nothing queues and a quota never runs out.
light=$(load $((max / 10)))
half=$(load $((max / 2)))
echo "maximum ($how): $max/s"
echo "light load (0.1×): $light"
echo "half load: $half"
base=$(field p99_ms "$half") low=$(field p99_ms "$light")
# "degraded": 2xx answers without a low-priority part (authors, comment
# counts), cheaper for the services than whole ones: a setting that
# degrades more reaches a higher goodput on the same CPU.
printf '| load | offered/s | goodput/s | goodput / maximum | degraded share | admitted p99 ms | / half-load p99 | / light-load p99 | gateway / services%s CPU s | generator CPU s |%s\n|---|---:|---:|---:|---:|---:|---:|---:|---|---|%s\n' \
  "${MYSQLD:+ + MySQL}" "${STACK_MYSQL:+ queries per answer |}" "${STACK_MYSQL:+---:|}"
for k in $OVERLOAD; do
  g0=$(cpu gateway) s0=$(cpu "${STACK_SERVICES[@]}") q0=$(queries)
  r=$(load $((max * k)))
  q1=$(queries)
  used=$(awk -v g="$(cpu gateway)" -v s="$(cpu "${STACK_SERVICES[@]}")" -v g0="$g0" -v s0="$s0" 'BEGIN { printf "%.2f / %.2f", g - g0, s - s0 }')
  good=$(goodput "$r")
  p99=$(field p99_ms "$r")
  awk -v k="$k" -v o=$((max * k)) -v g="$good" -v m="$max" -v p="$p99" -v b="$base" -v l="$low" -v d="$(field degraded "$r")" -v n="$(field requests "$r")" -v e="$(field errors "$r")" -v c="${r##*generator_cpu_s=}" -v u="$used" -v q="${q0:+$((q1 - q0))}" \
    'BEGIN { printf "| %s× | %d | %d | **%.2f** | %.0f %% | %.1f | %.1f | %.1f | %s | %s |", k, o, g, g / m, (n > e ? 100 * d / (n - e) : 0), p, p / b, p / l, u, c
             if (q != "") printf " %.2f |", (n > e ? q / (n - e) : 0)
             printf "\n" }'
done
