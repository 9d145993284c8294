#!/usr/bin/env bash
# Profile-guided release binaries (PGO). These servers lose more to
# instruction-cache misses than to instructions (docs/benchmarks.md: the
# platform runs 1.12× the skeleton's instructions per article list but
# takes 1.4× its CPU on an AMD EPYC VM); a profile lets LLVM lay out the hot
# path together and inline where the calls really are.
#
#   scripts/pgo.sh                 # binaries in target/pgo/release
#   scripts/pgo.sh profile         # only the profile, for the images: pgo/merged.profdata
#   DURATION=30 scripts/pgo.sh     # seconds per profiling stage (20)
#
# 1. builds instrumented release binaries (target/pgo-gen);
# 2. runs them: the platform (SQLite, seeded) under wrk with the news-site
#    mix and then the article list, and (not for `profile`) the bench
#    crate's skeleton under the article list, so `make bench` can compare
#    like with like; every process exits gracefully, which writes its
#    profile;
# 3. merges the profiles with llvm-profdata of rustc's own LLVM version
#    (rustup's llvm-tools, or Debian's llvm-<major>: scripts/deps.sh pgo);
# 4. builds the release binaries with the merged profile (target/pgo), or,
#    for `profile`, copies it to pgo/merged.profdata, where the Dockerfile
#    finds it (CI's pgo:profile job; pgo/README.md).
#
# FEATURES are the crate features of both builds: none by default, the
# images' (the Dockerfile's ARG FEATURES) for `profile`. A profile fits the
# build whose features it was made with: a crate built with other
# features gets other symbol names and none of the profile.
#
# Benchmark them with BIN=target/pgo/release (scripts/bench-latency.sh
# MODE=throughput, make bench). A profile from an older source still
# applies to the functions that did not change; regenerate it per release.
# Not run by make test: it is two whole-program LTO builds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

MODE=${1:-build}
case $MODE in build | profile) ;; *) echo "usage: $0 [build|profile]" >&2; exit 2 ;; esac
DURATION=${DURATION:-20} WORKERS=${WORKERS:-0}
GEN=target/pgo-gen USE=target/pgo
PGO_DATA=${PGO_DATA:-$PWD/$GEN/profiles}
PACKAGES=(-p gateway -p user -p content -p comment -p bench)
[ "$MODE" = profile ] && FEATURES=${FEATURES-$(sed -n 's/^ARG FEATURES=//p' Dockerfile)}
[ -n "${FEATURES:-}" ] && PACKAGES+=(--features "$FEATURES")
PROFILE_OUT=pgo/merged.profdata
STACK_PORT=18680 STACK_GRPC_PORT=20751 STACK_ADMIN_PORT=19700 STACK_ETCD_PORT=23079
SKELETON_PORT=18681 SKELETON_GRPC_PORT=20761
LIST_PATH="/api/v1/articles?limit=20"

profdata=$(scripts/deps.sh pgo | tail -n 1)
stack_say "1/4 instrumented build ($GEN)"
RUSTFLAGS="-Cprofile-generate=$PGO_DATA" cargo build --release --target-dir "$GEN" "${PACKAGES[@]}" --bins
rm -rf "$PGO_DATA"

stack_say "2/4 profiling: ${DURATION}s of the mix and ${DURATION}s of the article list$([ "$MODE" = build ] && echo ", then ${DURATION}s of the list on the skeleton")"
bin=$GEN/release
STACK_BIN=$bin STACK_WORKERS=$WORKERS STACK_LOGS=$GEN/logs
STACK_DATA=$(mktemp -d "${TMPDIR:-/tmp}/newsroom-pgo.XXXXXX")
mkdir -p "$STACK_LOGS"
cleanup() {
  skeleton_stop
  stack_stop
  rm -rf "$STACK_DATA"
}
trap cleanup EXIT
stack_raise_limits SIGN_UP LOGIN WRITES
stack_check_ports
stack_start
seeded=$("$bin/loadgen" seed "$STACK_URL" --articles 100 --comments 200)
eval "$(printf '%s\n' "$seeded" | sed -n 's/^\(BENCH_[A-Z_]*=[A-Za-z0-9._-]*\)$/export \1/p')"
MIX=mix wrk -t2 -c50 -d"${DURATION}s" -s loadtest/mix.lua "$STACK_URL" | grep -E 'Requests/sec|Non-2xx' || true
wrk -t2 -c50 -d"${DURATION}s" "$STACK_URL$LIST_PATH" | grep -E 'Requests/sec|Non-2xx' || true
if [ "$MODE" = build ]; then
  skeleton_start "$bin" "$WORKERS" "$STACK_LOGS"
  sleep 1
  wrk -t2 -c50 -d"${DURATION}s" "http://127.0.0.1:$SKELETON_PORT$LIST_PATH" | grep -E 'Requests/sec|Non-2xx' || true
fi
cleanup
trap - EXIT

stack_say "3/4 merging $(find "$PGO_DATA" -name '*.profraw' | wc -l) profiles"
"$profdata" merge -o "$GEN/merged.profdata" "$PGO_DATA"
if [ "$MODE" = profile ]; then
  cp "$GEN/merged.profdata" "$PROFILE_OUT"
  stack_say "profile for the images (features: ${FEATURES:-none}): $PROFILE_OUT, $(du -h "$PROFILE_OUT" | cut -f1)"
  exit 0
fi

stack_say "4/4 release build with the profile ($USE)"
# A function the profile does not know (changed since) is built as usual.
RUSTFLAGS="-Cprofile-use=$PWD/$GEN/merged.profdata" cargo build --release --target-dir "$USE" "${PACKAGES[@]}" --bins
stack_say "profile-guided binaries: $USE/release"
