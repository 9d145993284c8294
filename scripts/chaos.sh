#!/usr/bin/env bash
# make chaos: kills, restarts and partitions real processes under load and
# prints what the clients saw, as a table. The scenarios are the tests of
# gateway/tests/chaos (some only run here: they are #[ignore]d in make test).
# The partition scenarios need root (network namespaces); elsewhere they say
# SKIP and pass. Latency and loss use tc netem, or, on a kernel without
# sch_netem, nftables loss and a delaying relay: the row names which.
set -euo pipefail
cd "$(dirname "$0")/.."

log=target/chaos.log
mkdir -p target
set +e
# --workspace: make test's feature set, so its build is reused.
cargo test --workspace --test chaos -- --nocapture --test-threads=1 --include-ignored \
  sigkill rolling etcd_down cluster:: partition:: 2>&1 | tee "$log" | grep --line-buffered -oE '(CHAOS |SKIP|test result|panicked).*'
status=${PIPESTATUS[0]}
set -e

echo
rows=$(grep -oE 'CHAOS-ROW.*' "$log" || true)
{
  printf 'scenario\trequests\tfailed\trecovery\n'
  printf -- '--------\t--------\t------\t--------\n'
  printf '%s\n' "$rows" | cut -f2-
} | column -t -s $'\t'
echo "(full log: $log)"
exit "$status"
