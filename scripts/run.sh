#!/usr/bin/env bash
# `make run`: a private etcd, the three services and the gateway, in the
# foreground, with demo data. Ctrl-C (or SIGTERM) stops everything cleanly:
# the gateway and services get SIGTERM and run their graceful shutdown, then
# etcd stops.
#
# Knobs: PORT (gateway, default 8080), ETCD_PORT (default 22379, away from a
# developer's own etcd), BIN (default target/release), DATA (SQLite files,
# default data/).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-8080}
ETCD_PORT=${ETCD_PORT:-22379}
BIN=${BIN:-target/release}
DATA=${DATA:-data}
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-run.XXXXXX")
ETCD="http://127.0.0.1:$ETCD_PORT"

pids=()
etcd_pid=""

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

stop_all() {
  trap - INT TERM EXIT
  say "stopping (graceful: leave etcd, drain, exit)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$etcd_pid" ] && kill -TERM "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
  rm -rf "$RUN_DIR"
  say "stopped"
}
trap stop_all INT TERM EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in "$PORT" "$ETCD_PORT" 50051 50052 50053 9100 9101 9102 9103; do
  if port_open "$port"; then
    echo "port $port is already in use (another make run?); stop it or set PORT/ETCD_PORT" >&2
    exit 1
  fi
done

# Prefix each process's output with its name, keep colours.
start() {
  local name=$1; shift
  # The prefixer ignores Ctrl-C so the services' shutdown logs still show.
  "$@" > >(trap '' INT; exec sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
}

say "starting etcd on $ETCD (data in $RUN_DIR/etcd)"
etcd --name newsroom --data-dir "$RUN_DIR/etcd" \
  --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "newsroom=http://127.0.0.1:$((ETCD_PORT + 1))" \
  --log-level error >"$RUN_DIR/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 1 100); do port_open "$ETCD_PORT" && break; sleep 0.1; done

mkdir -p "$DATA"
export APP_ENVIRONMENT=local
for service in user content comment; do
  say "starting $service"
  APP_CONFIG_DIR="services/$service/config" \
  APP_PLATFORM__DISCOVERY__ENDPOINTS="[\"$ETCD\"]" \
  APP_DATABASE__URL="sqlite://$DATA/$service.db" \
    start "$service" "$BIN/$service"
done
say "starting gateway on 127.0.0.1:$PORT"
APP_CONFIG_DIR=gateway/config \
APP_HTTP__PORT=$PORT \
APP_DISCOVERY__ENDPOINTS="[\"$ETCD\"]" \
  start gateway "$BIN/gateway"

for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a process exited during start-up; see its output above" >&2; exit 1; }
  done
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "the gateway never became ready" >&2; exit 1; }

scripts/demo-data.sh "http://127.0.0.1:$PORT"

cat <<EOF

  newsroom is running.

    API          http://127.0.0.1:$PORT/api/v1/articles
    OpenAPI      http://127.0.0.1:$PORT/openapi.json
    readiness    http://127.0.0.1:$PORT/readyz
    metrics      http://127.0.0.1:9100/metrics  (services: 9101 user, 9102 content, 9103 comment)
    etcd         $ETCD   (etcdctl --endpoints $ETCD get --prefix /newsroom)

  Try:  curl -s http://127.0.0.1:$PORT/api/v1/articles | python3 -m json.tool
  Demo login: username "editor", password "newsroom-demo"

  Ctrl-C stops everything.

EOF

# Stay in the foreground until a signal, or until a process dies.
while true; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a process exited unexpectedly; stopping the rest" >&2
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true
done
