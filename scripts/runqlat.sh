#!/usr/bin/env bash
# How long the threads of named processes waited for a CPU while a command
# ran: the time from a thread becoming runnable (woken, or preempted while
# still runnable) to its running again, from the scheduler's tracepoints
# (bpftrace, root). On a 2-vCPU machine shared by five processes and a load
# generator, this is the part of a request's latency that no process's code
# can remove: a request through the gateway wakes a thread about seven
# times on its way (docs/benchmarks.md).
#
#   scripts/runqlat.sh OUT gateway=PID user=PID … -- COMMAND…
#
# Prints the machine's CPU shares during the command (steal included: what
# the hypervisor gave other guests), then a table per process: wake-ups,
# waits at p50 / p99 / p99.9 / max, total waited. Rows: the named
# processes, "command" (the command's own threads, e.g. the load
# generator) and "others" (etcd, kernel threads, bpftrace). Also written to
# OUT. Exits with the command's status.
set -euo pipefail
out=$1
shift
declare -A names=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  names[${1#*=}]=${1%%=*}
  shift
done
shift
[ "$(id -u)" = 0 ] || { echo "runqlat: needs root (bpftrace)" >&2; exit 1; }
command -v bpftrace >/dev/null || apt-get install -y -qq bpftrace >/dev/null
# Minimal VMs boot without tracefs mounted; the tracepoints live there.
[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
# Waits in 50 µs buckets up to 50 ms (the last bucket holds the rest),
# summed per thread: a histogram per thread, not a line per wake-up.
bpftrace -e '
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @since[args->pid] = nsecs; }
tracepoint:sched:sched_switch {
  if (args->prev_state == 0) { @since[args->prev_pid] = nsecs; }
  $t = @since[args->next_pid];
  if ($t != 0) {
    $us = (nsecs - $t) / 1000;
    $b = $us / 50;
    if ($b > 1000) { $b = 1000; }
    @wait[args->next_pid, args->next_comm, $b] = count();
    @total[args->next_pid, args->next_comm] = sum($us);
    delete(@since[args->next_pid]);
  }
}
END { clear(@since); }' >"$raw" 2>&1 &
tracer=$!
sleep 2 # attaching takes a moment
cpu_before=$(head -1 /proc/stat)
"$@" &
command=$!
sleep 1
# tid → process name: the command's threads now (it is gone at the end),
# the named processes' threads at the end.
map=$(for task in /proc/"$command"/task/*; do echo "${task##*/} command"; done 2>/dev/null)
status=0
wait "$command" || status=$?
cpu_after=$(head -1 /proc/stat)
kill -INT "$tracer"
wait "$tracer" || true
map+=$'\n'$(for pid in "${!names[@]}"; do
  for task in /proc/"$pid"/task/*; do echo "${task##*/} ${names[$pid]}"; done 2>/dev/null
done)
python3 - "$raw" "$map" "$cpu_before" "$cpu_after" <<'EOF' | tee "$out"
import re, sys
raw, mapping = open(sys.argv[1]).read(), sys.argv[2]
# /proc/stat's first line: user nice system idle iowait irq softirq steal.
before, after = ([int(v) for v in line.split()[1:9]] for line in sys.argv[3:5])
ticks = [a - b for a, b in zip(after, before)]
shares = {name: 100 * ticks[i] / max(sum(ticks), 1)
          for i, name in enumerate("user nice system idle iowait irq softirq steal".split())}
print("CPU time of the whole machine during the command: "
      + ", ".join(f"{name} {shares[name]:.1f} %" for name in ("user", "system", "softirq", "idle", "steal"))
      + " (steal: taken by the hypervisor for other guests)")
print()
proc = dict(line.split() for line in mapping.splitlines() if line.strip())
hist, total = {}, {}
for tid, comm, bucket, n in re.findall(r"@wait\[(\d+), (.*?), (\d+)\]: (\d+)", raw):
    who = proc.get(tid, "others")
    h = hist.setdefault(who, {})
    h[int(bucket)] = h.get(int(bucket), 0) + int(n)
for tid, comm, us in re.findall(r"@total\[(\d+), (.*?)\]: (\d+)", raw):
    who = proc.get(tid, "others")
    total[who] = total.get(who, 0) + int(us)
def quantile(h, q):
    n, seen = sum(h.values()), 0
    for b in sorted(h):
        seen += h[b]
        if seen >= q * n:
            return "≥50000" if b == 1000 else f"≤{(b + 1) * 50}"
    return "–"
print("| process | wake-ups | wait p50 µs | p99 µs | p99.9 µs | max µs | waited, total ms |")
print("|---|---:|---:|---:|---:|---:|---:|")
for who in sorted(hist, key=lambda w: (w in ("command", "others"), w)):
    h = hist[who]
    print(f"| {who} | {sum(h.values())} | {quantile(h, .5)} | {quantile(h, .99)} | {quantile(h, .999)} | "
          f"{quantile(h, 1)} | {total.get(who, 0) / 1000:.1f} |")
EOF
exit "$status"
