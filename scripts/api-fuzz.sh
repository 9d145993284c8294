#!/usr/bin/env bash
# schemathesis against a live stack: the API must be exactly what
# /openapi.json says. Every check (`--checks all`: no 5xx, documented
# statuses, headers and bodies; schema-valid requests accepted,
# schema-invalid ones refused; auth enforced; …) over the examples,
# coverage, fuzzing and stateful phases, with a bearer token for the
# operations that need one. `make test` runs it (scripts/test.sh); so does
# `make api-fuzz`. Any failure fails the run.
#
# Starts its own stack (scripts/stack.sh: a private etcd, the three services
# and the gateway) on free ports away from make run's, with a temporary data
# directory, and stops it at the end.
#
# Knobs: BIN (target/debug), EXAMPLES (examples per operation and phase,
# default 100: 1,150 cases in about 90 s on a loaded 2-core machine), SEED
# (fixed, so a failure reproduces; SEED=random draws one), KEEP=1 keeps the
# logs and reports, SCHEMATHESIS_VENV (where schemathesis is installed when
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

BIN=${BIN:-target/debug}
CONFIG=$PWD/scripts/api-fuzz.toml
EXAMPLES=${EXAMPLES:-100}
SEED=${SEED:-20261129}
SCHEMATHESIS_VERSION=4.32.5
VENV=${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/newsroom/schemathesis-$SCHEMATHESIS_VERSION}

say() { stack_say "$@"; }

# A venv of its own: the machine's Python stays untouched, and the version is
# pinned, so a new schemathesis release cannot fail an unchanged API.
ensure_schemathesis() {
  if "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
    return 0
  fi
  say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get install -y -qq python3-venv >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv >/dev/null
    }
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

# The first set of ports (gateway, admin…, gRPC…, etcd and its peer) that is
# wholly free: 18580, 19580…, 20651…, 22679… then +10, +20, …
pick_ports() {
  local offset port taken
  for offset in $(seq 0 10 190); do
    STACK_PORT=$((18580 + offset)) STACK_ADMIN_PORT=$((19580 + offset))
    STACK_GRPC_PORT=$((20651 + offset)) STACK_ETCD_PORT=$((22679 + offset))
    taken=false
    for port in "$STACK_PORT" "$STACK_ETCD_PORT" $((STACK_ETCD_PORT + 1)) \
      "$STACK_GRPC_PORT" $((STACK_GRPC_PORT + 1)) $((STACK_GRPC_PORT + 2)) \
      "$STACK_ADMIN_PORT" $((STACK_ADMIN_PORT + 1)) $((STACK_ADMIN_PORT + 2)) $((STACK_ADMIN_PORT + 3)); do
      stack_port_open "$port" && { taken=true; break; }
    done
    $taken || return 0
  done
  echo "no free set of ports for the stack" >&2
  return 1
}

for binary in gateway user content comment; do
  [ -x "$BIN/$binary" ] || { say "building the binaries ($BIN/$binary is missing)"; cargo build --workspace --bins; break; }
done
ensure_schemathesis

WORK=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-api-fuzz.XXXXXX")
cleanup() {
  local status=$?
  stack_stop
  if [ "$status" != 0 ] || [ "${KEEP:-}" = 1 ]; then
    say "kept $WORK (logs in $WORK/logs, reports in $WORK/report)"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

pick_ports
STACK_BIN=$BIN STACK_DATA=$WORK/data STACK_LOGS=$WORK/logs
say "starting a stack on 127.0.0.1:$STACK_PORT ($BIN)"
stack_start

# A user of its own and its token, for the operations that need one.
user=fuzz-$RANDOM$RANDOM
password="fuzz password $RANDOM"
curl -fsS -XPOST "$STACK_URL/api/v1/users" -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$password\"}" >/dev/null
token=$(curl -fsS -XPOST "$STACK_URL/api/v1/sessions" -H 'content-type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

[ "$SEED" = random ] && SEED=$RANDOM$RANDOM
say "schemathesis: every check, phases examples,coverage,fuzzing,stateful, $EXAMPLES examples, seed $SEED"
started=$(date +%s)
status=0
# No example database: each run starts from the seed alone, so a green run
# stays green on another machine. Run from the work directory: schemathesis
# keeps a cache (.schemathesis/) in its current directory.
(cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$CONFIG" \
  run "$STACK_URL/openapi.json" \
  --url "$STACK_URL" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --generation-database none \
  --workers 2 \
  --request-timeout 20 \
  --no-color \
  --report junit,ndjson --report-dir "$WORK/report") \
  || status=$?
say "schemathesis took $(($(date +%s) - started)) s"
if ! stack_alive; then
  echo "a process of the stack died during the run; see $WORK/logs" >&2
  status=1
fi
exit "$status"
