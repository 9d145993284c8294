#!/usr/bin/env bash
# `make loadtest`: locust, headless, for a fixed time against TARGET, with
# HTML and CSV reports in loadtest/reports/. Exits non-zero when the failure
# ratio or the p95 breaks its threshold (see loadtest/locustfile.py).
#
# Without TARGET it uses a stack of its own on 127.0.0.1:$PORT (default
# 18180), starting one like `make run` does (release binaries, private etcd,
# SQLite in a temporary directory, ports away from make run's) when nothing
# answers there, and stopping it afterwards.
#
# Knobs: TARGET, PORT, USERS (50), SPAWN_RATE (10/s), RUN_TIME (60s),
# LOCUST_MAX_FAIL_RATIO (0.01), LOCUST_MAX_P95_MS (500), REPORTS
# (loadtest/reports), LOCUST_VENV (reused between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

USERS=${USERS:-50}
SPAWN_RATE=${SPAWN_RATE:-10}
RUN_TIME=${RUN_TIME:-60s}
REPORTS=${REPORTS:-loadtest/reports}
LOCUST_VERSION=2.47.0
VENV=${LOCUST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/newsroom/venv-locust}

mkdir -p "$REPORTS"
if [ -n "${TARGET:-}" ]; then
  curl -fsS "$TARGET/readyz" >/dev/null || { echo "nothing ready answers on $TARGET/readyz" >&2; exit 1; }
  stack_say "load testing $TARGET"
else
  STACK_PORT=${PORT:-18180}
  STACK_GRPC_PORT=${GRPC_PORT:-20351}
  STACK_ADMIN_PORT=${ADMIN_PORT:-19180}
  STACK_ETCD_PORT=${ETCD_PORT:-22579}
  TARGET=http://127.0.0.1:$STACK_PORT
  if curl -fsS "$TARGET/readyz" >/dev/null 2>&1; then
    stack_say "load testing the stack already on $TARGET"
  else
    STACK_BIN=${BIN:-target/release}
    STACK_DATA=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-loadtest.XXXXXX")
    STACK_LOGS=$REPORTS/logs
    stop() {
      stack_say "stopping the stack"
      stack_stop
      rm -rf "$STACK_DATA"
    }
    stack_check_ports
    trap stop EXIT
    trap 'exit 130' INT TERM
    # Every locust user signs up and logs in from 127.0.0.1: per-IP limits
    # sized for one person would refuse all but the first few. Per-user
    # write limits stay as configured.
    stack_raise_limits SIGN_UP LOGIN
    stack_start
  fi
fi

if [ "$("$VENV/bin/locust" --version 2>/dev/null | awk '{print $2}')" != "$LOCUST_VERSION" ]; then
  stack_say "installing locust $LOCUST_VERSION in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "locust==$LOCUST_VERSION"
fi

stack_say "locust: $USERS users (+$SPAWN_RATE/s) for $RUN_TIME; reports in $REPORTS/"
status=0
"$VENV/bin/locust" -f loadtest/locustfile.py --headless --host "$TARGET" \
  --users "$USERS" --spawn-rate "$SPAWN_RATE" --run-time "$RUN_TIME" \
  --html "$REPORTS/report.html" --csv "$REPORTS/newsroom" --only-summary || status=$?
stack_say "reports: $REPORTS/report.html, $REPORTS/newsroom_stats.csv"
exit "$status"
