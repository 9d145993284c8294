#!/usr/bin/env bash
# Deploys one kustomize overlay to one namespace with images of one tag; the
# GitLab deploy jobs call it, and so can a person.
#
#   scripts/deploy.sh render   OVERLAY NAMESPACE [TAG]  # print the manifests
#   scripts/deploy.sh apply    OVERLAY NAMESPACE [TAG]  # apply, wait, roll back on failure
#   scripts/deploy.sh rollback OVERLAY NAMESPACE        # previous ReplicaSets
#
# OVERLAY is a directory under k8s/overlays (dev, prod, dev-loadtest). Our
# images become $REGISTRY/newsroom-<component>:TAG (REGISTRY defaults to
# $CI_REGISTRY_IMAGE, then to localhost:5001, what `make images` builds);
# without TAG the overlay's own tag stays. `apply` first creates or updates the
# Secrets from these variables when they are set (dev generates its own):
# NEWSROOM_JWT_SECRET, NEWSROOM_ADMIN_TOKEN,
# NEWSROOM_{USER,CONTENT,COMMENT}_{DATABASE,REDIS}_URL, and
# registry-credentials from REGISTRY_USER/REGISTRY_PASSWORD; for prod it then
# refuses to go on while a required Secret key is missing. When a rollout does
# not finish within ROLLOUT_TIMEOUT (default 10m) it rolls every Deployment
# back (`kubectl rollout undo`), says so, and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,20p' "$0" >&2; exit 2; }
[ $# -ge 3 ] || usage
action=$1 overlay=$2 namespace=$3 tag=${4:-}
[ -d "k8s/overlays/$overlay" ] || { echo "no overlay k8s/overlays/$overlay" >&2; exit 2; }
KUBECTL=${KUBECTL:-kubectl}
REGISTRY=${REGISTRY:-${CI_REGISTRY_IMAGE:-localhost:5001}}
ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-10m}
# The gRPC services, each with a <name>-secrets Secret (make new-service adds to it).
SERVICES=(user content comment) # new-service: list

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
    if [ -n "${REGISTRY_USER:-}" ] && [ -n "${REGISTRY_PASSWORD:-}" ]; then
      echo "components:"
      echo "  - ../components/image-pull-secret"
    fi
    if [ -n "$tag" ]; then
      # Match the names the overlay already gave our images (…/newsroom-<c>).
      echo "images:"
      $KUBECTL kustomize "k8s/overlays/$overlay" \
        | sed -n 's/^ *image: \([^ ]*\/newsroom-[a-z]*\):[^ ]*$/\1/p' | sort -u \
        | while read -r name; do
            printf '  - name: %s\n    newName: %s/%s\n    newTag: "%s"\n' "$name" "$REGISTRY" "${name##*/}" "$tag"
          done
    fi
  } >"$dir/kustomization.yaml"
}

# Deployments and StatefulSets of this deploy, as kind/name lines.
workloads() {
  $KUBECTL kustomize "$dir" \
    | awk '/^kind: (Deployment|StatefulSet)$/ { kind = tolower($2) }
           kind && /^  name: / { print kind "/" $2; kind = "" }'
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
  secret gateway-secrets "jwt-secret=${NEWSROOM_JWT_SECRET:-}" "admin-token=${NEWSROOM_ADMIN_TOKEN:-}"
  for svc in "${SERVICES[@]}"; do
    local upper=${svc^^}
    local db_var="NEWSROOM_${upper}_DATABASE_URL" redis_var="NEWSROOM_${upper}_REDIS_URL"
    secret "$svc-secrets" "database-url=${!db_var:-}" "redis-url=${!redis_var:-}"
  done
  if [ -n "${REGISTRY_USER:-}" ] && [ -n "${REGISTRY_PASSWORD:-}" ]; then
    $KUBECTL -n "$namespace" create secret docker-registry registry-credentials \
      --docker-server="${REGISTRY%%/*}" --docker-username="$REGISTRY_USER" \
      --docker-password="$REGISTRY_PASSWORD" --dry-run=client -o yaml | $KUBECTL apply -f -
  fi
}

# prod generates no Secret: every key the pods read must exist before they
# roll, or they sit in CreateContainerConfigError until the timeout.
require_secrets() {
  local missing=() pair name key
  local pairs=(gateway-secrets/jwt-secret gateway-secrets/admin-token) svc
  for svc in "${SERVICES[@]}"; do pairs+=("$svc-secrets/database-url" "$svc-secrets/redis-url"); done
  for pair in "${pairs[@]}"; do
    name=${pair%/*} key=${pair#*/}
    [ -n "$($KUBECTL -n "$namespace" get secret "$name" -o "jsonpath={.data.$key}" 2>/dev/null)" ] \
      || missing+=("$pair")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing Secret keys in namespace $namespace: ${missing[*]} (docs/deploy.md, Secrets)" >&2
    exit 1
  fi
}

rollback() {
  # StatefulSets (etcd, dev databases) keep no revisions to undo to and
  # change rarely; rolling back means the application Deployments.
  local workload
  for workload in $(workloads | grep '^deployment/'); do
    $KUBECTL -n "$namespace" rollout undo "$workload" || true
  done
  for workload in $(workloads | grep '^deployment/'); do
    $KUBECTL -n "$namespace" rollout status "$workload" --timeout="$ROLLOUT_TIMEOUT"
  done
}

write_kustomization
case $action in
  render)
    $KUBECTL kustomize "$dir"
    ;;
  apply)
    # The overlay creates the namespace too; Secrets need it first.
    $KUBECTL create namespace "$namespace" --dry-run=client -o yaml | $KUBECTL apply -f -
    apply_secrets
    [ "$overlay" = prod ] && require_secrets
    $KUBECTL apply -k "$dir"
    failed=""
    for workload in $(workloads); do
      $KUBECTL -n "$namespace" rollout status "$workload" --timeout="$ROLLOUT_TIMEOUT" \
        || { failed=$workload; break; }
    done
    if [ -n "$failed" ]; then
      echo "ROLLOUT FAILED: $failed did not become ready within $ROLLOUT_TIMEOUT." >&2
      $KUBECTL -n "$namespace" get pods -o wide >&2 || true
      echo "ROLLING BACK: kubectl rollout undo of every Deployment in $namespace" >&2
      rollback
      echo "ROLLED BACK to the previous revision; this deploy failed." >&2
      exit 1
    fi
    echo "deployed $overlay to $namespace${tag:+ with tag $tag}"
    ;;
  rollback)
    rollback
    ;;
  *) usage ;;
esac
