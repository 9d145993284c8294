# shellcheck shell=bash
# Sourced, not run: starts a private etcd, the three services and the
# gateway in the background, and stops them. Used by run.sh (make run),
# loadtest.sh (make loadtest) and bench.sh (make bench).
#
# Set before stack_start (defaults are make run's):
#   STACK_BIN        binaries (target/release)
#   STACK_SERVICES_BIN the services' binaries, when not from STACK_BIN
#   STACK_DATA       SQLite files (data)
#   STACK_MYSQL      a MySQL server (mysql://root@127.0.0.1:3306) where each
#                    service gets a database of its own, as in production:
#                    <STACK_MYSQL_PREFIX><name> (newsroom_<name>), created
#                    if missing; unset = a SQLite file each under STACK_DATA.
#                    For benchmarks (bench-overload.sh's MYSQL): run.sh's
#                    demo data and make reset know only the SQLite files
#   STACK_PORT       gateway HTTP (8080); its admin port is STACK_ADMIN_PORT (9100)
#   STACK_GRPC_PORT  first service port (50051): user, content, comment follow
#   STACK_ADMIN_PORT gateway admin port; the services' admin ports follow (9101…)
#   STACK_ETCD_PORT  private etcd (22379; the next port is its peer port)
#   STACK_RUN_DIR    etcd's data, a pid file per process (NAME.pid) and, when
#                    STACK_LOGS is unset, the logs; unset = a temporary
#                    directory removed by stack_stop
#   STACK_LOGS       a directory for one log file per process; unset = this
#                    terminal, each line prefixed with the process name (and
#                    kept in $STACK_RUN_DIR/logs/NAME.log)
#   STACK_WORKERS    tokio worker threads per process (0 = one per core);
#                    unset = each process's configuration
#   STACK_WRAP       a command the gateway and services run under (e.g.
#                    valgrind …; word-split), with STACK_PROCESS=<name> in
#                    their environment; unset = none
#   STACK_START_TIMEOUT seconds stack_start waits for the gateway (30)
# Other settings pass through the APP_* environment.
#
# After stack_start: STACK_PIDS[name] for name in STACK_NAMES, STACK_URL,
# STACK_RUN_DIR. `stack_launch NAME` starts one of them again,
# `stack_log NAME` is its log file, `stack_ready NAME` waits until it serves.
#
# Every process runs in a session of its own (setsid): Ctrl-C in the
# terminal reaches only the script, which stops them in order (gateway and
# services first, while etcd still answers their lease revocations; etcd
# last) instead of all of them dying at the same instant.

STACK_SERVICES=(user content comment) # new-service: list
STACK_NAMES=(etcd "${STACK_SERVICES[@]}" gateway)
declare -A STACK_PIDS=()
STACK_SETSID=()
command -v setsid >/dev/null && STACK_SETSID=(setsid)

# stack_raise_limits CLASS…: the gateway's rate limits of these classes
# (SIGN_UP, LOGIN, WRITES) raised out of the way of a client that seeds or
# loads far faster than a person: what a benchmark measures is their cost,
# not their refusals (README, "Limits"). Before stack_start.
stack_raise_limits() {
  local class
  for class in "$@"; do
    export "APP_GATEWAY__LIMITS__${class}__REQUESTS=1000000" "APP_GATEWAY__LIMITS__${class}__PER=1s" \
      "APP_GATEWAY__LIMITS__${class}__BURST=1000000"
  done
}

stack_defaults() {
  STACK_BIN=${STACK_BIN:-target/release}
  STACK_DATA=${STACK_DATA:-data}
  STACK_PORT=${STACK_PORT:-8080}
  STACK_GRPC_PORT=${STACK_GRPC_PORT:-50051}
  STACK_ADMIN_PORT=${STACK_ADMIN_PORT:-9100}
  STACK_ETCD_PORT=${STACK_ETCD_PORT:-22379}
  STACK_URL="http://127.0.0.1:$STACK_PORT"
  STACK_ETCD="http://127.0.0.1:$STACK_ETCD_PORT"
}

# Colour only on a terminal: a log file gets plain text (NO_COLOR honoured).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  stack_say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
else
  stack_say() { printf '==> %s\n' "$*"; }
fi

stack_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Fails when a port the stack needs is taken.
stack_check_ports() {
  stack_defaults
  local port
  local ports=("$STACK_PORT" "$STACK_ETCD_PORT" "$STACK_ADMIN_PORT") i
  for i in "${!STACK_SERVICES[@]}"; do
    ports+=($((STACK_GRPC_PORT + i)) $((STACK_ADMIN_PORT + 1 + i)))
  done
  for port in "${ports[@]}"; do
    if stack_port_open "$port"; then
      echo "port $port is already in use (another make run? scripts/run.sh stop); stop it or set PORT/ETCD_PORT" >&2
      return 1
    fi
  done
}

# The index of a service: its gRPC port is STACK_GRPC_PORT + index, its admin
# port STACK_ADMIN_PORT + 1 + index.
stack_index() {
  local i
  for i in "${!STACK_SERVICES[@]}"; do
    [ "${STACK_SERVICES[$i]}" = "$1" ] && { echo "$i"; return 0; }
  done
  return 1
}

stack_log() { echo "${STACK_LOGS:-$STACK_RUN_DIR/logs}/$1.log"; }

# stack_spawn NAME COMMAND…: in the background, in a session of its own,
# output appended to its log file and, without STACK_LOGS, also shown on
# this terminal with each line prefixed (etcd only logs errors, to its file).
stack_spawn() {
  local name=$1 log
  shift
  log=$(stack_log "$name")
  if [ -n "${STACK_LOGS:-}" ] || [ "$name" = etcd ]; then
    "${STACK_SETSID[@]}" "$@" >>"$log" 2>&1 &
  else
    # The prefixer ignores Ctrl-C so the services' shutdown logs still show.
    # Through the pipe the processes would log without colours; on a
    # terminal they keep them.
    local colour=()
    [ -t 1 ] && colour=(env CLICOLOR_FORCE=1)
    "${STACK_SETSID[@]}" "${colour[@]}" "$@" > >(trap '' INT; tee -a "$log" | sed -u "s/^/[$name] /") 2>&1 &
  fi
  STACK_PIDS[$name]=$!
  echo "$!" >"$STACK_RUN_DIR/$name.pid"
}

# True while every process of the stack runs.
stack_alive() {
  local name
  for name in "${STACK_NAMES[@]}"; do
    kill -0 "${STACK_PIDS[$name]:-0}" 2>/dev/null || return 1
  done
}

stack_start_etcd() {
  stack_say "starting etcd on $STACK_ETCD (data in $STACK_RUN_DIR/etcd)"
  stack_spawn etcd etcd --name newsroom --data-dir "$STACK_RUN_DIR/etcd" \
    --listen-client-urls "$STACK_ETCD" --advertise-client-urls "$STACK_ETCD" \
    --listen-peer-urls "http://127.0.0.1:$((STACK_ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((STACK_ETCD_PORT + 1))" \
    --initial-cluster "newsroom=http://127.0.0.1:$((STACK_ETCD_PORT + 1))" \
    --log-level error
  for _ in $(seq 1 100); do stack_port_open "$STACK_ETCD_PORT" && break; sleep 0.1; done
}

# stack_mysql SQL: runs SQL on the STACK_MYSQL server, as the URL's user.
stack_mysql() {
  local rest=${STACK_MYSQL#*://} user=root pass='' hostport
  hostport=${rest%%/*}
  if [[ $hostport == *@* ]]; then
    user=${hostport%@*} hostport=${hostport##*@}
    [[ $user != *:* ]] || { pass=${user#*:}; user=${user%%:*}; }
  fi
  MYSQL_PWD=$pass mariadb -h "${hostport%:*}" -P "${hostport##*:}" -u "$user" -N -e "$1"
}

# stack_database_url NAME: the service's database, created on MySQL.
stack_database_url() {
  [ -n "${STACK_MYSQL:-}" ] || { echo "sqlite://$STACK_DATA/$1.db"; return; }
  local db=${STACK_MYSQL_PREFIX:-newsroom_}$1
  stack_mysql "CREATE DATABASE IF NOT EXISTS \`$db\`" >&2
  echo "${STACK_MYSQL%/}/$db"
}

# stack_start_services NAME…
stack_start_services() {
  mkdir -p "$STACK_DATA"
  local i service tuning
  for service in "$@"; do
    i=$(stack_index "$service")
    stack_say "starting $service"
    # argon2's 19 MiB per hash goes back to the OS when the hash ends, not
    # whenever mimalloc next purges (the Dockerfile's user image does the same).
    tuning=()
    [ "$service" = user ] && tuning=(MIMALLOC_PURGE_DELAY=0)
    APP_ENVIRONMENT=local \
    APP_CONFIG_DIR="services/$service/config" \
    APP_PLATFORM__GRPC__PORT=$((STACK_GRPC_PORT + i)) \
    APP_PLATFORM__ADMIN__PORT=$((STACK_ADMIN_PORT + 1 + i)) \
    APP_PLATFORM__DISCOVERY__ENDPOINTS="[\"$STACK_ETCD\"]" \
      stack_spawn "$service" env "${tuning[@]}" ${STACK_WORKERS:+APP_PLATFORM__RUNTIME__WORKER_THREADS=$STACK_WORKERS} \
        "APP_${service^^}__DATABASE__URL=$(stack_database_url "$service")" \
        STACK_PROCESS="$service" ${STACK_WRAP:-} "${STACK_SERVICES_BIN:-$STACK_BIN}/$service"
  done
}

stack_start_gateway() {
  stack_say "starting gateway on 127.0.0.1:$STACK_PORT"
  APP_ENVIRONMENT=local \
  APP_CONFIG_DIR=gateway/config \
  APP_GATEWAY__HTTP__PORT=$STACK_PORT \
  APP_PLATFORM__ADMIN__PORT=$STACK_ADMIN_PORT \
  APP_PLATFORM__DISCOVERY__ENDPOINTS="[\"$STACK_ETCD\"]" \
    stack_spawn gateway env ${STACK_WORKERS:+APP_PLATFORM__RUNTIME__WORKER_THREADS=$STACK_WORKERS} \
      STACK_PROCESS=gateway ${STACK_WRAP:-} "$STACK_BIN/gateway"
}

# stack_launch NAME: starts one process of the stack (again), with the
# settings stack_start gave it.
stack_launch() {
  case $1 in
    etcd) stack_start_etcd ;;
    gateway) stack_start_gateway ;;
    *) stack_start_services "$1" ;;
  esac
}

# stack_ready NAME [SECONDS]: waits until NAME serves: etcd answers, a
# service has registered in etcd (its admin /readyz), the gateway answers.
stack_ready() {
  local name=$1 tries=$((${2:-60} * 10)) i
  for _ in $(seq 1 "$tries"); do
    kill -0 "${STACK_PIDS[$name]:-0}" 2>/dev/null || return 1
    case $name in
      etcd) stack_port_open "$STACK_ETCD_PORT" && return 0 ;;
      gateway) curl -fsS "$STACK_URL/healthz" >/dev/null 2>&1 && return 0 ;;
      *)
        i=$(stack_index "$name")
        curl -fsS "http://127.0.0.1:$((STACK_ADMIN_PORT + 1 + i))/readyz" >/dev/null 2>&1 && return 0
        ;;
    esac
    sleep 0.1
  done
  return 1
}

# Starts everything and waits until the gateway is ready.
stack_start() {
  stack_defaults
  if [ -n "${STACK_RUN_DIR:-}" ]; then
    rm -rf "$STACK_RUN_DIR/etcd" "$STACK_RUN_DIR/logs"
    STACK_OWN_RUN_DIR=false
  else
    STACK_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-run.XXXXXX")
    STACK_OWN_RUN_DIR=true
  fi
  mkdir -p "$STACK_RUN_DIR"
  if [ -n "${STACK_LOGS:-}" ]; then
    mkdir -p "$STACK_LOGS"
    local name
    for name in "${STACK_NAMES[@]}"; do rm -f "$STACK_LOGS/$name.log"; done
  else
    mkdir -p "$STACK_RUN_DIR/logs"
  fi
  stack_start_etcd
  stack_start_services "${STACK_SERVICES[@]}"
  stack_start_gateway

  # The admin port's /readyz: start-up polls are not API requests, so they
  # do not show up as 5xx on the dashboard. Ready needs only the critical
  # backend (content), while a script's first request may go to any
  # service: wait until the gateway has found an instance of each (on a
  # loaded machine user, migrating its SQLite file in a debug build, can
  # register after the gateway is ready, and a first sign-up got a 503).
  local ready="http://127.0.0.1:$STACK_ADMIN_PORT/readyz" body
  for _ in $(seq 1 $((${STACK_START_TIMEOUT:-30} * 10))); do
    body=$(curl -fsS "$ready" 2>/dev/null) && stack_found_all "$body" && return 0
    stack_alive || { echo "a process exited during start-up; see its output ${STACK_LOGS:-above}" >&2; return 1; }
    sleep 0.1
  done
  body=$(curl -fsS "$ready") || { echo "the gateway never became ready" >&2; return 1; }
  stack_found_all "$body" || { echo "the gateway never found every service: $body" >&2; return 1; }
}

# stack_found_all READYZ_BODY: the gateway's view holds an instance of
# every service of STACK_SERVICES.
stack_found_all() {
  local service
  for service in "${STACK_SERVICES[@]}"; do
    [[ $1 == *"\"$service\":"[1-9]* ]] || return 1
  done
}

# stack_halt SECONDS [-SIGNAL] PID…: SIGTERM (or SIGNAL), then SIGKILL
# whatever still runs after SECONDS (every process bounds its own shutdown
# well below that).
stack_halt() {
  local seconds=$1 signal=TERM pid live
  shift
  case ${1:-} in -*) signal=${1#-}; shift ;; esac
  for pid in "$@"; do kill -"$signal" "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 $((seconds * 10))); do
    live=false
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && live=true; done
    $live || break
    sleep 0.1
  done
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "pid $pid did not stop within $seconds s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

# Graceful: the gateway and services get SIGTERM (leave etcd, drain, exit),
# then etcd stops.
stack_stop() {
  local name pids=()
  for name in gateway "${STACK_SERVICES[@]}"; do
    [ -n "${STACK_PIDS[$name]:-}" ] && pids+=("${STACK_PIDS[$name]}")
  done
  [ ${#pids[@]} -gt 0 ] && stack_halt 30 "${pids[@]}"
  [ -n "${STACK_PIDS[etcd]:-}" ] && stack_halt 10 "${STACK_PIDS[etcd]}"
  STACK_PIDS=()
  if [ -n "${STACK_RUN_DIR:-}" ]; then
    if ${STACK_OWN_RUN_DIR:-true}; then
      rm -rf "$STACK_RUN_DIR"
      STACK_RUN_DIR=""
    else
      rm -rf "$STACK_RUN_DIR/etcd" "$STACK_RUN_DIR"/*.pid
    fi
  fi
}

# skeleton_start BIN WORKERS LOGS: the bench crate's bare skeleton, the
# platform's process topology with nothing else (three canned services on
# SKELETON_GRPC_PORT + 0, 1, 2 and its gateway on SKELETON_PORT). Pids in
# SKELETON_PIDS: user, content, comment, gateway; skeleton_stop ends them.
SKELETON_PIDS=()
skeleton_start() {
  local bin=$1 workers=$2 logs=$3 i names=(user content comment)
  for i in 0 1 2; do
    APP_PLATFORM__RUNTIME__WORKER_THREADS=$workers "$bin/skeleton-service" "127.0.0.1:$((SKELETON_GRPC_PORT + i))" \
      >"$logs/skeleton-${names[$i]}.log" 2>&1 &
    SKELETON_PIDS+=("$!")
  done
  APP_PLATFORM__RUNTIME__WORKER_THREADS=$workers "$bin/skeleton-gateway" "127.0.0.1:$SKELETON_PORT" \
    --user "127.0.0.1:$SKELETON_GRPC_PORT" --content "127.0.0.1:$((SKELETON_GRPC_PORT + 1))" \
    --comment "127.0.0.1:$((SKELETON_GRPC_PORT + 2))" >"$logs/skeleton-gateway.log" 2>&1 &
  SKELETON_PIDS+=("$!")
}

# SIGINT: the skeleton's binaries end cleanly on it (a profiling build
# writes its profile then; scripts/pgo.sh).
skeleton_stop() {
  [ ${#SKELETON_PIDS[@]} -eq 0 ] || stack_halt 10 -INT "${SKELETON_PIDS[@]}"
  SKELETON_PIDS=()
}
