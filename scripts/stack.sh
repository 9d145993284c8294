# Sourced, not run: starts a private etcd, the three services and the
# gateway in the background, and stops them. Used by run.sh (make run),
# loadtest.sh (make loadtest) and bench.sh (make bench).
#
# Set before stack_start (defaults are make run's):
#   STACK_BIN        binaries (target/release)
#   STACK_DATA       SQLite files (data)
#   STACK_PORT       gateway HTTP (8080); its admin port is STACK_ADMIN_PORT (9100)
#   STACK_GRPC_PORT  first service port (50051): user, content, comment follow
#   STACK_ADMIN_PORT gateway admin port; the services' admin ports follow (9101…)
#   STACK_ETCD_PORT  private etcd (22379; the next port is its peer port)
#   STACK_LOGS       a directory for one log file per process; unset = this
#                    terminal, each line prefixed with the process name
#   STACK_WORKERS    tokio worker threads per process (0 = one per core);
#                    unset = each process's configuration
# Other settings pass through the APP_* environment.
#
# After stack_start: STACK_PIDS[name] for name in gateway user content comment
# etcd, STACK_URL, STACK_RUN_DIR.

STACK_SERVICES=(user content comment)
declare -A STACK_PIDS=()

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
  for port in "$STACK_PORT" "$STACK_ETCD_PORT" \
    "$STACK_GRPC_PORT" $((STACK_GRPC_PORT + 1)) $((STACK_GRPC_PORT + 2)) \
    "$STACK_ADMIN_PORT" $((STACK_ADMIN_PORT + 1)) $((STACK_ADMIN_PORT + 2)) $((STACK_ADMIN_PORT + 3)); do
    if stack_port_open "$port"; then
      echo "port $port is already in use (another make run?); stop it or set PORT/ETCD_PORT" >&2
      return 1
    fi
  done
}

# stack_spawn NAME COMMAND…: in the background, output to the terminal
# (prefixed) or to $STACK_LOGS/NAME.log.
stack_spawn() {
  local name=$1; shift
  if [ -n "${STACK_LOGS:-}" ]; then
    "$@" >"$STACK_LOGS/$name.log" 2>&1 &
  else
    # The prefixer ignores Ctrl-C so the services' shutdown logs still show.
    "$@" > >(trap '' INT; exec sed -u "s/^/[$name] /") 2>&1 &
  fi
  STACK_PIDS[$name]=$!
}

# True while every process of the stack runs.
stack_alive() {
  local name
  for name in gateway "${STACK_SERVICES[@]}"; do
    kill -0 "${STACK_PIDS[$name]:-0}" 2>/dev/null || return 1
  done
}

# Starts everything and waits until the gateway is ready.
stack_start() {
  stack_defaults
  STACK_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-run.XXXXXX")
  [ -n "${STACK_LOGS:-}" ] && mkdir -p "$STACK_LOGS"
  stack_say "starting etcd on $STACK_ETCD (data in $STACK_RUN_DIR/etcd)"
  etcd --name newsroom --data-dir "$STACK_RUN_DIR/etcd" \
    --listen-client-urls "$STACK_ETCD" --advertise-client-urls "$STACK_ETCD" \
    --listen-peer-urls "http://127.0.0.1:$((STACK_ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((STACK_ETCD_PORT + 1))" \
    --initial-cluster "newsroom=http://127.0.0.1:$((STACK_ETCD_PORT + 1))" \
    --log-level error >"$STACK_RUN_DIR/etcd.log" 2>&1 &
  STACK_PIDS[etcd]=$!
  for _ in $(seq 1 100); do stack_port_open "$STACK_ETCD_PORT" && break; sleep 0.1; done

  mkdir -p "$STACK_DATA"
  local i=0 service tuning
  for service in "${STACK_SERVICES[@]}"; do
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
        "APP_${service^^}__DATABASE__URL=sqlite://$STACK_DATA/$service.db" \
        "$STACK_BIN/$service"
    i=$((i + 1))
  done
  stack_say "starting gateway on 127.0.0.1:$STACK_PORT"
  APP_ENVIRONMENT=local \
  APP_CONFIG_DIR=gateway/config \
  APP_GATEWAY__HTTP__PORT=$STACK_PORT \
  APP_PLATFORM__ADMIN__PORT=$STACK_ADMIN_PORT \
  APP_PLATFORM__DISCOVERY__ENDPOINTS="[\"$STACK_ETCD\"]" \
    stack_spawn gateway env ${STACK_WORKERS:+APP_PLATFORM__RUNTIME__WORKER_THREADS=$STACK_WORKERS} \
      "$STACK_BIN/gateway"

  for _ in $(seq 1 300); do
    curl -fsS "$STACK_URL/readyz" >/dev/null 2>&1 && return 0
    stack_alive || { echo "a process exited during start-up; see its output ${STACK_LOGS:-above}" >&2; return 1; }
    sleep 0.1
  done
  curl -fsS "$STACK_URL/readyz" >/dev/null || { echo "the gateway never became ready" >&2; return 1; }
}

# Graceful: the gateway and services get SIGTERM (leave etcd, drain, exit),
# then etcd stops.
stack_stop() {
  local name
  for name in gateway "${STACK_SERVICES[@]}"; do
    [ -n "${STACK_PIDS[$name]:-}" ] && kill -TERM "${STACK_PIDS[$name]}" 2>/dev/null || true
  done
  for name in gateway "${STACK_SERVICES[@]}"; do
    [ -n "${STACK_PIDS[$name]:-}" ] && wait "${STACK_PIDS[$name]}" 2>/dev/null || true
  done
  if [ -n "${STACK_PIDS[etcd]:-}" ]; then
    kill -TERM "${STACK_PIDS[etcd]}" 2>/dev/null && wait "${STACK_PIDS[etcd]}" 2>/dev/null || true
  fi
  STACK_PIDS=()
  [ -n "${STACK_RUN_DIR:-}" ] && rm -rf "$STACK_RUN_DIR"
  STACK_RUN_DIR=""
}
