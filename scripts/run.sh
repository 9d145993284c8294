#!/usr/bin/env bash
# `make run`: a private etcd, the three services and the gateway, in the
# foreground, with demo data.
#
# A process that dies is reported once (its exit status, the last lines of
# its log and the command that starts it again); the rest keep serving.
# Ctrl-C (or SIGTERM) stops everything in order and exits 0: the gateway and
# services get SIGTERM and run their graceful shutdown (they revoke their
# etcd leases while etcd still answers), then etcd stops.
#
# From a second terminal, while make run runs:
#   scripts/run.sh restart NAME   start NAME again (a dead one, or a live one
#                                 gracefully); make restart NAME=…
#   scripts/run.sh kill NAME      SIGKILL NAME, as a crash would
#   scripts/run.sh status         each process and its pid
#   scripts/run.sh stop           what Ctrl-C does
# and when it does not run:
#   scripts/run.sh reset          delete the data (make reset)
# NAME is etcd, user, content, comment or gateway.
#
# Knobs: PORT (gateway, default 8080), ADMIN_PORT (gateway admin, 9100; the
# services' follow), GRPC_PORT (first service, 50051), ETCD_PORT (default
# 22379, away from a developer's own etcd), BIN (default target/debug, what make run builds),
# DATA (SQLite files, default data/), FRESH=1 (delete DATA first),
# RUN_STATE (pids and logs, default target/run; the other commands find the
# stack through it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

STACK_PORT=${PORT:-8080}
STACK_ADMIN_PORT=${ADMIN_PORT:-9100}
STACK_GRPC_PORT=${GRPC_PORT:-50051}
STACK_ETCD_PORT=${ETCD_PORT:-22379}
STACK_BIN=${BIN:-target/debug}
STACK_DATA=${DATA:-data}
STACK_RUN_DIR=${RUN_STATE:-target/run}
stack_defaults

die() { echo "$*" >&2; exit 1; }

# How to reach this stack from another terminal: the same RUN_STATE.
state_prefix() { [ "$STACK_RUN_DIR" = target/run ] || echo "RUN_STATE=$STACK_RUN_DIR "; }
again() { echo "$(state_prefix)scripts/run.sh $*"; }

valid_name() {
  local name
  for name in "${STACK_NAMES[@]}"; do [ "$name" = "${1:-}" ] && return 0; done
  die "unknown process '${1:-}': one of ${STACK_NAMES[*]}"
}

# The pid of the running make run, if any.
runner_pid() {
  local pid
  pid=$(cat "$STACK_RUN_DIR/run.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

need_runner() {
  runner_pid || die "no make run is running here (no live pid in $STACK_RUN_DIR/run.pid)"
}

pid_of() { cat "$STACK_RUN_DIR/$1.pid" 2>/dev/null || true; }

# --- commands for a second terminal ------------------------------------------

# The running make run starts the process (so it stays its child: its output
# goes to the first terminal, Ctrl-C there stops it, a second death is
# reported); this command asks and waits until it serves again.
cmd_restart() {
  local name=$1 runner old new
  valid_name "$name"
  runner=$(need_runner)
  old=$(pid_of "$name")
  mkdir -p "$STACK_RUN_DIR/requests"
  : >"$STACK_RUN_DIR/requests/$name"
  kill -USR1 "$runner"
  for _ in $(seq 1 600); do
    new=$(pid_of "$name")
    [ ! -e "$STACK_RUN_DIR/requests/$name" ] && [ -n "$new" ] && [ "$new" != "$old" ] && break
    kill -0 "$runner" 2>/dev/null || die "make run stopped"
    sleep 0.1
  done
  if [ -z "$new" ] || [ "$new" = "$old" ]; then die "make run did not start $name again within 60 s"; fi
  STACK_PIDS[$name]=$new
  if ! stack_ready "$name" 60; then
    die "$name (pid $new) did not come up; see the make run terminal or $(stack_log "$name")"
  fi
  case $name in
    etcd) echo "etcd is back (pid $new); the services register again on their own" ;;
    gateway) echo "gateway is back (pid $new) on $STACK_URL" ;;
    *) echo "$name is back (pid $new), registered in etcd; the gateway sends it traffic as soon as its watch sees it" ;;
  esac
}

cmd_kill() {
  local name=$1 pid
  valid_name "$name"
  need_runner >/dev/null
  pid=$(pid_of "$name")
  kill -0 "$pid" 2>/dev/null || die "$name is not running"
  kill -KILL "$pid"
  echo "sent SIGKILL to $name (pid $pid)"
}

cmd_status() {
  local name pid runner
  runner=$(need_runner)
  echo "make run: pid $runner ($STACK_RUN_DIR)"
  for name in "${STACK_NAMES[@]}"; do
    pid=$(pid_of "$name")
    if kill -0 "$pid" 2>/dev/null; then
      printf '  %-8s pid %s\n' "$name" "$pid"
    else
      printf '  %-8s dead (%s)\n' "$name" "$(again restart "$name")"
    fi
  done
}

cmd_stop() {
  local runner
  if runner=$(runner_pid); then
    kill -TERM "$runner"
    for _ in $(seq 1 600); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$runner" 2>/dev/null && die "make run (pid $runner) is still stopping"
    echo "stopped"
    return 0
  fi
  # make run itself is gone (SIGKILL, a closed terminal): stop what it left,
  # in the same order.
  local name pid pids=()
  for name in gateway "${STACK_SERVICES[@]}"; do
    pid=$(pid_of "$name")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && pids+=("$pid")
  done
  [ ${#pids[@]} -gt 0 ] && stack_halt 30 "${pids[@]}"
  pid=$(pid_of etcd)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && stack_halt 10 "$pid"
  rm -f "$STACK_RUN_DIR"/*.pid
  echo "stopped what was left"
}

cmd_reset() {
  local runner
  if runner=$(runner_pid); then die "make run is running (pid $runner): stop it first"; fi
  # Only the stack's own files: DATA may be a directory with other things in it.
  local service
  for service in "${STACK_SERVICES[@]}"; do
    rm -f "$STACK_DATA/$service.db" "$STACK_DATA/$service.db-wal" "$STACK_DATA/$service.db-shm"
  done
  rmdir "$STACK_DATA" 2>/dev/null || true
  echo "deleted the SQLite files in $STACK_DATA/; the next make run starts empty and loads the demo data"
}

case ${1:-} in
  restart | kill) [ $# -eq 2 ] || die "usage: scripts/run.sh $1 NAME (${STACK_NAMES[*]})"; "cmd_$1" "$2"; exit ;;
  status | stop | reset) "cmd_$1"; exit ;;
  "") ;;
  *) die "usage: scripts/run.sh [restart NAME | kill NAME | status | stop | reset]" ;;
esac

# --- make run -------------------------------------------------------------------

if runner=$(runner_pid); then
  die "make run is already running (pid $runner); $(again stop) stops it"
fi
stack_check_ports
[ "${FRESH:-}" = 1 ] && cmd_reset
# The processes write into pipes; they colour their logs only when this
# output is a terminal.
[ -t 1 ] || export NO_COLOR=1

stopping=false
stop_all() {
  local status=$1
  $stopping && return
  stopping=true
  # Finish stopping even when nothing can be printed any more (SIGHUP: the
  # terminal is gone).
  set +e
  trap - USR1
  trap force_stop INT TERM HUP
  stack_say "stopping: gateway and services first (they leave etcd, drain, exit), then etcd (Ctrl-C again: kill them now)"
  stack_stop
  rm -rf "$STACK_RUN_DIR/run.pid" "$STACK_RUN_DIR/requests"
  stack_say "stopped"
  exit "$status"
}
# An impatient second Ctrl-C: nobody waits for the graceful path.
force_stop() {
  trap - INT TERM HUP EXIT
  local pid
  for pid in "${STACK_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$STACK_RUN_DIR/run.pid" "$STACK_RUN_DIR/requests" "$STACK_RUN_DIR/etcd" "$STACK_RUN_DIR"/*.pid
  stack_say "killed"
  exit 130
}
# A signal is a request to stop: exit 0. Anything else that ends the script
# (a failed start-up) keeps its status.
trap 'stop_all 0' INT TERM HUP
trap 'stop_all $?' EXIT
# `restart` wakes the loop below at once.
trap ':' USR1

mkdir -p "$STACK_RUN_DIR"
rm -rf "$STACK_RUN_DIR/requests"
echo $$ >"$STACK_RUN_DIR/run.pid"
stack_start
scripts/demo-data.sh "$STACK_URL" || stack_say "demo data not loaded (see above); the stack serves anyway"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
admin="http://127.0.0.1:$STACK_ADMIN_PORT"
token=${APP_GATEWAY__ADMIN_TOKEN:-newsroom-demo-admin}
service_ports=""
for i in "${!STACK_SERVICES[@]}"; do
  service_ports+="${service_ports:+, }$((STACK_ADMIN_PORT + 1 + i)) ${STACK_SERVICES[$i]}"
done
cat <<EOF

  ${bold}newsroom is running.${plain}

    API          $STACK_URL/api/v1/articles
    API page     $STACK_URL/docs   (OpenAPI: $STACK_URL/openapi.json)
    dashboard    $admin/admin/dashboard  (any user name, the admin token as password)
    readiness    $STACK_URL/readyz
    metrics      $admin/metrics  (services: $service_ports)
    etcd         $STACK_ETCD   (etcdctl --endpoints $STACK_ETCD get --prefix /newsroom)
    data         $STACK_DATA/   (make reset empties it)   logs: $STACK_RUN_DIR/logs/

  Demo login     username "editor", password "newsroom-demo"
  Admin token    $token   (APP_GATEWAY__ADMIN_TOKEN overrides it)
                 curl -H "authorization: Bearer $token" $admin/admin/breakers

  Try:  curl -s $STACK_URL/api/v1/articles | python3 -m json.tool

  A process that dies is reported here and the rest keep serving;
  $(again restart NAME) starts it again. Ctrl-C stops everything.

EOF

# Reports a death once: which process, how it ended, its last words, and
# the command that brings it back.
declare -A reported=()
report_death() {
  local name=$1 status=$2 how log
  if [ "$status" -gt 128 ]; then
    how="killed by SIG$(kill -l $((status - 128)) 2>/dev/null || echo "?") (exit status $status)"
  else
    how="exited with status $status"
  fi
  log=$(stack_log "$name")
  {
    echo
    stack_say "$name $how; the rest keep serving. Its last lines ($log):"
    tail -n 12 "$log" 2>/dev/null | sed 's/^/    | /'
    echo "    Start it again:  $(again restart "$name")   (or: $(state_prefix)make restart NAME=$name)"
    echo
  } >&2
}

# restart NAME, asked for by a second terminal: stop it if it still runs,
# start it again.
serve_requests() {
  local request name pid
  for request in "$STACK_RUN_DIR"/requests/*; do
    [ -e "$request" ] || continue
    name=${request##*/}
    pid=${STACK_PIDS[$name]:-}
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      stack_say "restarting $name (pid $pid): graceful stop, then start"
      stack_halt 30 "$pid"
    else
      wait "$pid" 2>/dev/null || true
    fi
    stack_launch "$name"
    unset "reported[$name]"
    rm -f "$request"
  done
}

# Stay in the foreground until a signal.
while true; do
  serve_requests
  for name in "${STACK_NAMES[@]}"; do
    [ -n "${reported[$name]:-}" ] && continue
    pid=${STACK_PIDS[$name]:-0}
    kill -0 "$pid" 2>/dev/null && continue
    status=0
    wait "$pid" 2>/dev/null || status=$?
    report_death "$name" "$status"
    reported[$name]=1
  done
  sleep 1 &
  # 2>/dev/null: bash's own "Killed" line for a dead child; report_death says it better.
  wait $! 2>/dev/null || true
done
