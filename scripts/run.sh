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
source scripts/stack.sh

STACK_PORT=${PORT:-8080}
STACK_ETCD_PORT=${ETCD_PORT:-22379}
STACK_BIN=${BIN:-target/release}
STACK_DATA=${DATA:-data}
PORT=$STACK_PORT

stop_all() {
  trap - INT TERM EXIT
  stack_say "stopping (graceful: leave etcd, drain, exit)"
  stack_stop
  stack_say "stopped"
}

stack_check_ports
trap stop_all INT TERM EXIT
stack_start

scripts/demo-data.sh "$STACK_URL"

cat <<EOF

  newsroom is running.

    API          http://127.0.0.1:$PORT/api/v1/articles
    OpenAPI      http://127.0.0.1:$PORT/openapi.json
    readiness    http://127.0.0.1:$PORT/readyz
    metrics      http://127.0.0.1:9100/metrics  (services: 9101 user, 9102 content, 9103 comment)
    etcd         $STACK_ETCD   (etcdctl --endpoints $STACK_ETCD get --prefix /newsroom)

  Try:  curl -s http://127.0.0.1:$PORT/api/v1/articles | python3 -m json.tool
  Demo login: username "editor", password "newsroom-demo"

  Ctrl-C stops everything.

EOF

# Stay in the foreground until a signal, or until a process dies.
while true; do
  if ! stack_alive; then
    echo "a process exited unexpectedly; stopping the rest" >&2
    exit 1
  fi
  sleep 1 &
  wait $! || true
done
