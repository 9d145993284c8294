#!/usr/bin/env bash
# make test's check of the starter tools (docs/new-service.md), each in a
# copy of the repository (its tracked files, as they are in this tree):
#
#   1. `make new-service NAME=quote`; the copy is formatted, lint-clean and
#      builds; the generated service's own tests and its gateway test pass;
#      a stack of the debug binaries with it (scripts/stack.sh: private etcd,
#      the services, the gateway) answers its route through the gateway,
#      which found the service through etcd; the k8s overlays render and pass
#      scripts/check-manifests.py against the copy's binaries; then
#      `make remove-service NAME=quote` gives back the copy byte for byte
#      (git status clean);
#   2. `make rename NAME=acme` in a second copy, which then builds and passes
#      its unit tests.
#
# Both copies build into this tree's target dir (CARGO_TARGET_DIR), so the
# dependencies are compiled once for everything. Cargo names a workspace
# crate's artifacts after its path *relative to the workspace*, which a copy
# shares with this tree: left alone, a copy's kit would overwrite this tree's
# kit and then pass for fresh here. A profile override of the copy's own
# crates (a no-op setting, in a .cargo/config.toml above the copy, outside
# its tree) gives them names of their own; the dependencies keep theirs.
# Last, this tree's binaries are linked back into target/debug.
#
#   scripts/test-generator.sh [new|rename]   (both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-generator.XXXXXX")
cleanup() {
  # In a subshell: stack.sh's variables are local to the function that
  # sourced it, and an unset one is fatal under `set -u`, even here.
  if declare -F stack_stop >/dev/null; then (stack_stop) >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '==> %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
now() { date +%s; }

# copy NAME: the tracked files into $WORK/NAME/repo, committed to a fresh
# git repository there.
copy() {
  local dir=$WORK/$1/repo
  mkdir -p "$dir" "$WORK/$1/.cargo"
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$dir"
  (cd "$dir" && git init -q && git add -A &&
    git -c user.name=test -c user.email=test@localhost commit -qm original)
  echo "$dir"
}

# override DIR CODEGEN_UNITS: the copy's workspace crates (name@version, so a
# registry crate of the same name is not touched) get a profile of their own.
override() {
  local dir=$1 units=$2 version name
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
  {
    echo "# scripts/test-generator.sh: artifact names of this copy's own."
    for name in $(cd "$dir" && find proto kit gateway services bench -maxdepth 2 -name Cargo.toml \
      -exec sed -n 's/^name = "\(.*\)"/\1/p' {} \;); do
      echo "[profile.dev.package.\"$name@$version\"]"
      echo "codegen-units = $units"
    done
  } >"$(dirname "$dir")/.cargo/config.toml"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

new_service() {
  local dir start generated built
  dir=$(copy quote)
  cd "$dir"
  start=$(now)
  make -s new-service NAME=quote >"$WORK/new-service.log" || { cat "$WORK/new-service.log"; fail "make new-service"; }
  generated=$(now)
  override "$dir" 256
  say "new-service NAME=quote: $((generated - start)) s; building the copy"
  cargo build --bin gateway --bin user --bin content --bin comment --bin quote
  built=$(now)
  say "generation + first build of the copy: $((built - start)) s"
  cargo fmt --all -- --check || fail "the generated code is not rustfmt-clean"
  make -s new-service NAME=quote 2>/dev/null && fail "a second make new-service NAME=quote was accepted"
  # The whole workspace, as make test lints it: the same features, so the
  # dependencies checked for it are reused.
  cargo clippy --workspace --all-targets -- -D warnings
  say "the quote service's tests, and its routes through the gateway"
  cargo test --manifest-path services/quote/Cargo.toml
  cargo test -p gateway --test api quotes

  say "a stack with quote: the route through the gateway, found through etcd"
  # The copy's stack.sh: make new-service added quote to its services.
  # shellcheck source=stack.sh
  source scripts/stack.sh
  STACK_BIN=$CARGO_TARGET_DIR/debug STACK_DATA=$WORK/data STACK_LOGS=$WORK/logs
  STACK_PORT=$(free_port) STACK_ADMIN_PORT=$((31000 + RANDOM % 2000)) STACK_GRPC_PORT=$((24000 + RANDOM % 2000))
  STACK_ETCD_PORT=$((26000 + RANDOM % 2000)) APP_GATEWAY__AUTH__JWT_SECRET=test-only-secret-of-at-least-32-bytes-0000
  export APP_GATEWAY__AUTH__JWT_SECRET
  [[ " ${STACK_SERVICES[*]} " == *" quote "* ]] || fail "scripts/stack.sh does not start quote"
  stack_check_ports
  stack_start || { tail -n 20 "$WORK"/logs/*.log; fail "the stack with quote did not start"; }
  local base=$STACK_URL token created listed
  curl -fsS -X POST "$base/api/v1/users" -H 'content-type: application/json' \
    -d '{"username":"quoter","password":"correct horse"}' >/dev/null
  token=$(curl -fsS -X POST "$base/api/v1/sessions" -H 'content-type: application/json' \
    -d '{"username":"quoter","password":"correct horse"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  created=$(curl -fsS -X POST "$base/api/v1/quotes" -H 'content-type: application/json' \
    -H "authorization: Bearer $token" -d '{"text":"All happy families are alike."}')
  listed=$(curl -fsS "$base/api/v1/quotes")
  echo "POST /api/v1/quotes → $created"
  echo "GET /api/v1/quotes → $listed"
  [[ $listed == *'All happy families are alike.'* ]] || fail "the quote is not listed through the gateway"
  # The gateway's readiness lists the instances it found in etcd.
  curl -fsS "$base/readyz" | grep -q '"quote":1' || fail "the gateway did not find quote in etcd"
  stack_stop

  say "the deploy checks and the k8s overlays' contract with quote, against the copy's binaries"
  scripts/check-deploy.sh
  scripts/check-deploy.sh contract

  say "make remove-service NAME=quote gives back the original tree"
  make -s remove-service NAME=quote
  if [ -n "$(git status --porcelain)" ]; then
    git status --short
    git diff | head -50
    fail "make remove-service left changes"
  fi
  say "new-service: generation + first build $((built - start)) s, whole check $(($(now) - start)) s"
  cd "$ROOT"
}

rename_project() {
  local dir start
  dir=$(copy acme)
  cd "$dir"
  start=$(now)
  make -s rename NAME=acme
  override "$dir" 255
  if grep -rIqi newsroom --exclude-dir=.git .; then
    grep -rIni newsroom --exclude-dir=.git . | head
    fail "make rename left the old name"
  fi
  cargo build --workspace --bins
  cargo test --workspace --lib
  say "rename + build + unit tests: $(($(now) - start)) s"
  # The markers survive a rename: the generator still finds them all (and
  # the project's new name), and undoes itself.
  git add -A && git -c user.name=test -c user.email=test@localhost commit -qm renamed
  make -s new-service NAME=quote >/dev/null
  grep -q 'prefix: "acme:quote:"' services/quote/config/base.yaml || fail "the generated service is not acme's"
  make -s remove-service NAME=quote >/dev/null
  [ -z "$(git status --porcelain)" ] || { git status --short; fail "new + remove after a rename left changes"; }
  cd "$ROOT"
}

case ${1:-all} in
  new) new_service ;;
  rename) rename_project ;;
  all) new_service; rename_project ;;
  *) echo "usage: $0 [new|rename]" >&2; exit 2 ;;
esac

# The copies' binaries were linked to target/debug/<name>; link this tree's
# back (all fresh: nothing compiles).
cargo build --workspace --bins
