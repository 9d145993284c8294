#!/usr/bin/env bash
# Read-heavy benchmark of the data layer through the gateway, on the SQLite +
# in-process cache default or on MariaDB + Redis:
#
#   scripts/bench/data.sh sqlite     # zero-setup default
#   scripts/bench/data.sh mysql      # MariaDB at 127.0.0.1:3306, Redis at :6379
#
# Starts a private etcd, the three services and the gateway from
# target/release on ports away from `make run`'s, seeds ARTICLES articles
# (with comments) through the API, runs wrk (THREADS, CONNECTIONS, DURATION)
# with scripts/bench/read-mix.lua, then prints the cache hit rate and SQL
# queries from the services' /metrics. Figures on a shared machine are
# indicative only.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODE=${1:-sqlite}
BIN=${BIN:-target/release}
ARTICLES=${ARTICLES:-200}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-50}
DURATION=${DURATION:-20s}
BASE_PORT=${BASE_PORT:-38000}
MYSQL=${MYSQL:-mysql://root@127.0.0.1:3306}
REDIS=${REDIS:-redis://127.0.0.1:6379}

HTTP=$BASE_PORT ADMIN=$((BASE_PORT + 1)) ETCD_PORT=$((BASE_PORT + 2))
RUN=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-bench.XXXXXX")
ETCD="http://127.0.0.1:$ETCD_PORT"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT

etcd --name bench --data-dir "$RUN/etcd" \
  --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "bench=http://127.0.0.1:$((ETCD_PORT + 1))" \
  --log-level error >"$RUN/etcd.log" 2>&1 &
pids+=("$!")
sleep 1

export APP_ENVIRONMENT=local
run_id=$(date +%s)
i=0
for service in user content comment; do
  i=$((i + 1))
  case $MODE in
    sqlite) db="sqlite://$RUN/$service.db"; redis="" ;;
    mysql)
      name="bench_${service}_$run_id"
      mysql -h 127.0.0.1 -u root -e "CREATE DATABASE $name"
      db="$MYSQL/$name"; redis="$REDIS" ;;
    *) echo "mode is sqlite or mysql" >&2; exit 2 ;;
  esac
  env APP_CONFIG_DIR="services/$service/config" \
    APP_PLATFORM__DISCOVERY__ENDPOINTS="[\"$ETCD\"]" \
    APP_PLATFORM__DISCOVERY__PREFIX="/bench$run_id" \
    APP_PLATFORM__GRPC__PORT=$((BASE_PORT + 10 + i)) \
    APP_PLATFORM__ADMIN__PORT=$((BASE_PORT + 20 + i)) \
    APP_PLATFORM__TELEMETRY__LOG_FILTER=warn \
    "APP_${service^^}__DATABASE__URL=$db" \
    "APP_${service^^}__DATABASE__MAX_CONNECTIONS=20" \
    "APP_${service^^}__CACHE__PREFIX=bench$run_id:$service:" \
    ${redis:+"APP_${service^^}__CACHE__REDIS_URL=$redis"} \
    "$BIN/$service" >"$RUN/$service.log" 2>&1 &
  pids+=("$!")
done
APP_CONFIG_DIR=gateway/config APP_GATEWAY__HTTP__PORT=$HTTP APP_PLATFORM__ADMIN__PORT=$ADMIN \
  APP_PLATFORM__DISCOVERY__ENDPOINTS="[\"$ETCD\"]" APP_PLATFORM__DISCOVERY__PREFIX="/bench$run_id" \
  "$BIN/gateway" >"$RUN/gateway.log" 2>&1 &
pids+=("$!")

BASE="http://127.0.0.1:$HTTP"
for _ in $(seq 1 300); do curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$BASE/readyz" >/dev/null

json() { curl -fsS -H 'content-type: application/json' "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
tokens=()
for u in $(seq 1 10); do
  json -X POST "$BASE/api/v1/users" -d "{\"username\":\"writer$u\",\"password\":\"bench-password\"}" >/dev/null
  tokens+=("$(json -X POST "$BASE/api/v1/sessions" -d "{\"username\":\"writer$u\",\"password\":\"bench-password\"}" | field "['token']")")
done
body=$(python3 -c "print('Markets moved. ' * 100)")
for a in $(seq 1 "$ARTICLES"); do
  t=${tokens[$((a % 10))]}
  id=$(json -X POST "$BASE/api/v1/articles" -H "authorization: Bearer $t" \
    -d "{\"title\":\"Story $a\",\"body\":\"$body\"}" | field "['id']")
  for c in 1 2 3; do
    json -X POST "$BASE/api/v1/articles/$id/comments" -H "authorization: Bearer ${tokens[$(((a + c) % 10))]}" \
      -d "{\"body\":\"Comment $c\"}" >/dev/null
  done
done
echo "seeded $ARTICLES articles, $((ARTICLES * 3)) comments ($MODE)"

ARTICLES=$ARTICLES wrk --latency -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" \
  -s scripts/bench/read-mix.lua "$BASE"

metric() { # port name label-filter
  curl -fsS "http://127.0.0.1:$1/metrics" | { grep -E "^$2\{" || true; } | { grep -E "$3" || true; } \
    | awk '{s += $NF} END {printf "%d", s}'
}
hits=0 misses=0
i=0
for service in user content comment; do
  i=$((i + 1))
  port=$((BASE_PORT + 20 + i))
  h=$(metric "$port" cache_requests_total 'result="hit"')
  m=$(metric "$port" cache_requests_total 'result="miss"')
  q=$(metric "$port" db_queries_total '.')
  echo "$service: cache hits $h, misses $m, SQL queries $q"
  hits=$((hits + h)) misses=$((misses + m))
done
python3 -c "h, m = $hits, $misses; print(f'cache hit rate: {h / max(h + m, 1):.1%} ({h} hits, {m} misses)')"
if [ "$MODE" = mysql ]; then
  for service in user content comment; do
    mysql -h 127.0.0.1 -u root -e "DROP DATABASE bench_${service}_$run_id"
  done
fi
