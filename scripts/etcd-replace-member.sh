#!/usr/bin/env bash
# Replaces an etcd member that lost its data directory (new disk, lost
# volume, wiped pod) so it can rejoin its cluster. Run it while the broken
# member is stopped; docs/etcd.md explains when and why.
#
#   scripts/etcd-replace-member.sh NAME PEER_URL
#
# Talks to the healthy members through etcdctl: set ETCDCTL_ENDPOINTS to
# their client URLs, or ETCDCTL to a command that runs etcdctl where it can
# reach them, e.g. in Kubernetes:
#   ETCDCTL="kubectl -n newsroom exec etcd-0 -- etcdctl" \
#     scripts/etcd-replace-member.sh etcd-2 \
#     http://etcd-2.etcd-headless.newsroom.svc:2380
#
# A member restarted on an empty data directory with its old identity and
# --initial-cluster-state=new does not rejoin: the leader still remembers its
# log position and the empty member panics ("tocommit(N) is out of range
# [lastIndex(0)]"), or it bootstraps a cluster of its own. The way back is
# etcd's runtime reconfiguration: remove the old member, add it again (a new
# member ID), then start it on an empty data directory with
# --initial-cluster-state=existing and the --initial-cluster printed below.
set -euo pipefail

if [ $# -ne 2 ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
name=$1
peer_url=$2
read -r -a etcdctl <<<"${ETCDCTL:-etcdctl}"
export ETCDCTL_API=3

# Refuse without a quorum: removing or adding a member needs a leader, and
# a cluster that has none must be repaired first (docs/etcd.md).
"${etcdctl[@]}" endpoint health >&2 || {
  echo "etcd-replace-member: a healthy member did not answer; is ETCDCTL_ENDPOINTS right?" >&2
  exit 1
}

# member list -w simple: ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS[, IS LEARNER]
old_id=$("${etcdctl[@]}" member list -w simple | awk -F', ' -v n="$name" '$3 == n { print $1 }')
if [ -z "$old_id" ]; then
  # An earlier run may have stopped between remove and add: the member then
  # shows up with its peer URL and no name yet ("unstarted").
  old_id=$("${etcdctl[@]}" member list -w simple | awk -F', ' -v p="$peer_url" '$4 == p { print $1 }')
fi
if [ -n "$old_id" ]; then
  echo "removing member $name ($old_id)" >&2
  "${etcdctl[@]}" member remove "$old_id" >&2
fi

echo "adding member $name at $peer_url" >&2
# etcd refuses ("unhealthy cluster") until its members have been connected
# for a few seconds, e.g. just after a removal or a leader's start: retry.
for attempt in $(seq 1 30); do
  if added=$("${etcdctl[@]}" member add "$name" --peer-urls="$peer_url" 2>/tmp/etcd-replace-member.$$); then
    break
  fi
  if [ "$attempt" = 30 ] || ! grep -q 'unhealthy cluster' /tmp/etcd-replace-member.$$; then
    cat /tmp/etcd-replace-member.$$ >&2
    rm -f /tmp/etcd-replace-member.$$
    exit 1
  fi
  sleep 1
done
rm -f /tmp/etcd-replace-member.$$
echo "$added" >&2
# Start the member with these (empty data directory):
echo "$added" | grep -E '^ETCD_INITIAL_CLUSTER(_STATE)?=' | sed 's/"//g'
