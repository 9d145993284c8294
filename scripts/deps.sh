#!/usr/bin/env bash
# Installs and starts what newsroom needs on a Debian/Ubuntu machine, skipping
# whatever is already there. Idempotent; safe to run before every command.
#
#   scripts/deps.sh build   # protoc (to compile the contracts) and etcd
#   scripts/deps.sh test    # + a running etcd, MariaDB and Redis for tests
#   scripts/deps.sh bench   # + wrk, valgrind and strace (make bench, make bench-instr)
#   scripts/deps.sh pgo     # bench's, and prints the path of an llvm-profdata of
#                           # rustc's own LLVM (make pgo, CI's pgo:profile)
set -euo pipefail

mode=${1:-build}
ETCD_ENDPOINT=${NEWSROOM_TEST_ETCD:-http://127.0.0.1:2379}
# MariaDB and Redis of the tests (kit::testing reads the same variables): in
# GitLab CI they are services at other hosts; only a local one is started here.
MYSQL_URL=${NEWSROOM_TEST_MYSQL:-mysql://root@127.0.0.1:3306}
REDIS_URL=${NEWSROOM_TEST_REDIS:-redis://127.0.0.1:6379}
STATE_DIR=${NEWSROOM_STATE_DIR:-${TMPDIR:-/tmp}/newsroom}

# Colour only on a terminal: a log file gets plain text (NO_COLOR honoured).
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
else
  log() { printf '==> %s\n' "$*" >&2; }
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root to run: $*" >&2; return 1
  fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} = 0 ] && return 0
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    as_root apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  }
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.1; done
  echo "nothing answers on $1:$2" >&2; return 1
}

# host and port of scheme://[user@]host:port[/…]
url_host() { local a=${1#*://}; a=${a%%/*}; a=${a##*@}; echo "${a%:*}"; }
url_port() { local a=${1#*://}; a=${a%%/*}; a=${a##*@}; echo "${a##*:}"; }

is_local() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ]; }

ensure_cargo() {
  command -v cargo >/dev/null && return 0
  [ -x "$HOME/.cargo/bin/cargo" ] && return 0
  apt_install curl ca-certificates build-essential
  log "installing Rust with rustup"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
}

ensure_etcd_running() {
  local hostport=${ETCD_ENDPOINT#http://}
  local host=${hostport%:*} port=${hostport##*:}
  port_open "$host" "$port" && return 0
  log "starting etcd on $ETCD_ENDPOINT (data in $STATE_DIR/etcd-test)"
  mkdir -p "$STATE_DIR"
  nohup etcd --name newsroom-test --data-dir "$STATE_DIR/etcd-test" \
    --listen-client-urls "$ETCD_ENDPOINT" --advertise-client-urls "$ETCD_ENDPOINT" \
    --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "newsroom-test=http://127.0.0.1:$((port + 1))" \
    --log-level error >"$STATE_DIR/etcd-test.log" 2>&1 &
  wait_port "$host" "$port"
}

ensure_mariadb_running() {
  local host port
  host=$(url_host "$MYSQL_URL") port=$(url_port "$MYSQL_URL")
  if ! is_local "$host"; then
    apt_install mariadb-client
    wait_port "$host" "$port"; return
  fi
  port_open 127.0.0.1 3306 && return 0
  apt_install mariadb-server
  log "starting MariaDB"
  if command -v start-stop-daemon >/dev/null && [ -x /usr/sbin/mariadbd ]; then
    as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  else
    as_root service mariadb start
  fi
  wait_port 127.0.0.1 3306
}

ensure_redis_running() {
  # Installed even when a Redis already answers: cache tests start (and kill)
  # private redis-server processes of their own.
  apt_install redis-server
  local host port
  host=$(url_host "$REDIS_URL") port=$(url_port "$REDIS_URL")
  if ! is_local "$host"; then
    wait_port "$host" "$port"; return
  fi
  port_open 127.0.0.1 6379 && return 0
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_port 127.0.0.1 6379
}

# rustup's llvm-tools carry rustc's exact LLVM; without rustup, Debian's
# llvm-<major> (bookworm-security carries llvm-22 for its browsers' builds).
# A profile written by one LLVM major is not read by another.
llvm_profdata() {
  local host major tool
  host=$(rustc -vV | sed -n 's/^host: //p')
  tool=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
  if [ ! -x "$tool" ] && command -v rustup >/dev/null; then
    log "adding rustup's llvm-tools (llvm-profdata)"
    rustup component add llvm-tools >/dev/null 2>&1 || true
  fi
  if [ ! -x "$tool" ]; then
    major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
    apt_install "llvm-$major"
    tool=/usr/lib/llvm-$major/bin/llvm-profdata
  fi
  echo "$tool"
}

ensure_cargo
apt_install protobuf-compiler etcd-server etcd-client
# The test suite runs a short smoke of make bench and counts the article
# list's instructions (valgrind); make bench-instr also counts system calls.
if [ "$mode" = test ] || [ "$mode" = bench ] || [ "$mode" = pgo ]; then
  apt_install wrk valgrind strace
fi
if [ "$mode" = pgo ]; then
  llvm_profdata
fi
if [ "$mode" = test ]; then
  # promtool lints /metrics; chromium renders the live dashboard.
  apt_install prometheus chromium
  # The partition tests put processes on network namespaces (iproute2) and
  # cut links between them (nftables; tc netem comes with iproute2).
  apt_install iproute2 nftables
  ensure_etcd_running
  ensure_mariadb_running
  ensure_redis_running
fi
