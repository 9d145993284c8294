#!/usr/bin/env bash
# The whole test suite; `make test` runs it after scripts/deps.sh has
# installed and started etcd, MariaDB and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

# Colour only on a terminal: a log file gets plain text (NO_COLOR honoured).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi

step "format"
cargo fmt --all -- --check

step "one version of each core crate"
dups=$(cargo tree --workspace -d -e normal --depth 0 --prefix none 2>/dev/null \
  | grep -E '^(tonic|prost|opentelemetry[a-z_-]*|tracing-opentelemetry|tower|hyper|axum|http) v' | sort -u | awk '{print $1}' | uniq -d || true)
if [ -n "$dups" ]; then
  echo "two versions of a core crate in the build (pin one in Cargo.toml):" >&2
  echo "$dups" >&2
  exit 1
fi

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "drop test databases left by earlier runs"
# shellcheck source=scripts/stack.sh
source scripts/stack.sh # stack_mysql: the URL's host, port, user and password
STACK_MYSQL=${NEWSROOM_TEST_MYSQL:-mysql://root@127.0.0.1:3306}
stack_mysql "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 't\\_%'" 2>/dev/null \
  | while read -r db; do stack_mysql "DROP DATABASE \`$db\`"; done || true

step "docs (broken intra-doc links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "deploy manifests and CI"
scripts/check-deploy.sh

step "tests"
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc

step "the long chaos scenarios (ignored by a plain cargo test; make chaos runs them too)"
# --workspace, not -p gateway: the same feature set as the step above, so the
# chaos binary it built is reused (-p gateway alone recompiled ~40 crates).
cargo test --workspace --test chaos -- --ignored --test-threads=1

step "the README's walks against a make run stack (debug binaries)"
BIN=target/debug scripts/readme-test.py

step "schemathesis: the API against its OpenAPI document (every check and phase, debug binaries)"
BIN=target/debug scripts/api-fuzz.sh

step "TLS to etcd, Redis and MariaDB (the kit/tls build of the Docker image)"
cargo clippy -p kit --features tls --all-targets -- -D warnings
cargo test -p kit --features tls --test tls

step "manifest contract (every overlay against the binaries' --check-config)"
cargo build --workspace --bins
scripts/check-deploy.sh contract

step "docs/configuration.md matches the settings structs (scripts/config-reference.py)"
scripts/config-reference.py --check

step "bench smoke"
scripts/bench.sh --smoke

step "spike smoke (make spike, short and slow: thresholds hold with the cache on)"
scripts/spike.sh --smoke

step "make new-service, remove-service and rename in copies of the repository"
scripts/test-generator.sh

step "instructions per article-list request (callgrind, debug build) within scripts/bench/instr-budget"
scripts/bench-instr.sh --budget
