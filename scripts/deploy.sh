#!/usr/bin/env bash
# Deploys one kustomize overlay to one namespace with images of one tag; the
# GitLab deploy and rollback jobs call it, and so can a person.
#
#   scripts/deploy.sh render   OVERLAY NAMESPACE [TAG]  # print the manifests
#   scripts/deploy.sh apply    OVERLAY NAMESPACE [TAG]  # apply, wait for rollout
#   scripts/deploy.sh rollback OVERLAY NAMESPACE        # previous ReplicaSets
#
# OVERLAY is dev or prod (k8s/overlays/*). Images are
# $REGISTRY/{gateway,user,content,comment,loadgen}:TAG (REGISTRY defaults to
# $CI_REGISTRY_IMAGE, then to `newsroom`). `apply` first creates or updates
# the Secrets from these variables when they are set (prod needs them; dev
# generates its own): NEWSROOM_JWT_SECRET, NEWSROOM_{USER,CONTENT,COMMENT}_DATABASE_URL,
# NEWSROOM_{USER,CONTENT,COMMENT}_REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,14p' "$0" >&2; exit 2; }
[ $# -ge 3 ] || usage
action=$1 overlay=$2 namespace=$3 tag=${4:-}
[ -d "k8s/overlays/$overlay" ] || { echo "no overlay k8s/overlays/$overlay" >&2; exit 2; }
KUBECTL=${KUBECTL:-kubectl}
REGISTRY=${REGISTRY:-${CI_REGISTRY_IMAGE:-newsroom}}
ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-10m}

# Deployments and StatefulSets in the overlay, as kind/name lines.
workloads() {
  $KUBECTL kustomize "k8s/overlays/$overlay" \
    | awk '/^kind: (Deployment|StatefulSet)$/ { kind = tolower($2) }
           kind && /^  name: / { print kind "/" $2; kind = "" }'
}

# A throwaway kustomization on top of the overlay: the namespace and image
# tags of this deploy, without editing tracked files. kustomize takes only
# relative resource paths, hence a directory beside the overlays.
dir=$(mktemp -d k8s/.deploy.XXXXXX)
trap 'rm -rf "$dir"' EXIT
write_kustomization() {
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "namespace: $namespace"
    echo "resources:"
    echo "  - ../overlays/$overlay"
    if [ -n "$tag" ]; then
      echo "images:"
      for image in gateway user content comment loadgen; do
        printf '  - name: newsroom/%s\n    newName: %s/%s\n    newTag: "%s"\n' "$image" "$REGISTRY" "$image" "$tag"
      done
    fi
  } >"$dir/kustomization.yaml"
}

# Secrets are created here rather than committed: kubectl renders them from
# the CI variables and applies them, so values never touch the repository.
apply_secrets() {
  secret() {
    local name=$1; shift
    local args=() pair
    for pair in "$@"; do
      [ -n "${pair#*=}" ] || return 0
      args+=("--from-literal=$pair")
    done
    $KUBECTL -n "$namespace" create secret generic "$name" "${args[@]}" \
      --dry-run=client -o yaml | $KUBECTL apply -f -
  }
  secret gateway-secrets "jwt-secret=${NEWSROOM_JWT_SECRET:-}"
  for svc in user content comment; do
    local upper=${svc^^}
    local db_var="NEWSROOM_${upper}_DATABASE_URL" redis_var="NEWSROOM_${upper}_REDIS_URL"
    secret "$svc-secrets" "database-url=${!db_var:-}" "redis-url=${!redis_var:-}"
  done
}

case $action in
  render)
    write_kustomization
    $KUBECTL kustomize "$dir"
    ;;
  apply)
    $KUBECTL create namespace "$namespace" --dry-run=client -o yaml | $KUBECTL apply -f -
    apply_secrets
    write_kustomization
    $KUBECTL apply -k "$dir"
    for workload in $(workloads); do
      $KUBECTL -n "$namespace" rollout status "$workload" --timeout="$ROLLOUT_TIMEOUT"
    done
    ;;
  rollback)
    # StatefulSets (etcd, dev databases) keep no revisions to undo to and
    # change rarely; rolling back means the application Deployments.
    for workload in $(workloads | grep '^deployment/'); do
      $KUBECTL -n "$namespace" rollout undo "$workload"
    done
    for workload in $(workloads | grep '^deployment/'); do
      $KUBECTL -n "$namespace" rollout status "$workload" --timeout="$ROLLOUT_TIMEOUT"
    done
    ;;
  *) usage ;;
esac
