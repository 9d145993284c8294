#!/usr/bin/env bash
# `make kind-up`: newsroom's dev overlay on a local cluster, from nothing.
#   1. a kind cluster named $CLUSTER (default newsroom), or k3d with TOOL=k3d,
#      created unless it exists (kubectl's context then points at it);
#   2. `make images` ($REGISTRY/newsroom-<component>:$TAG, default
#      localhost:5001/…:dev) loaded into the cluster's nodes, so nothing is
#      pulled from a registry for our images;
#   3. scripts/deploy.sh apply dev newsroom-dev $TAG, which waits for every
#      rollout (and rolls back if one fails); on a cluster that already ran
#      them, our Deployments restart onto the freshly loaded images.
# Needs docker with buildx, kind (or k3d) and kubectl on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOL=${TOOL:-kind}
CLUSTER=${CLUSTER:-newsroom}
REGISTRY=${REGISTRY:-localhost:5001}
# The gRPC services (make new-service adds to it).
SERVICES=(user content comment) # new-service: list
TAG=${TAG:-dev}
NAMESPACE=${NAMESPACE:-newsroom-dev}
export REGISTRY TAG

need() { command -v "$1" >/dev/null || { echo "kind-up needs $1 on PATH ($2)" >&2; exit 1; }; }
need docker "https://docs.docker.com/engine/install/"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
docker buildx version >/dev/null 2>&1 || { echo "kind-up needs docker buildx" >&2; exit 1; }

case $TOOL in
  kind)
    need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
    kubectl config use-context "kind-$CLUSTER" >/dev/null
    ;;
  k3d)
    need k3d "https://k3d.io/#installation"
    k3d cluster list "$CLUSTER" >/dev/null 2>&1 || k3d cluster create "$CLUSTER" --wait
    kubectl config use-context "k3d-$CLUSTER" >/dev/null
    ;;
  *) echo "TOOL must be kind or k3d" >&2; exit 2 ;;
esac

docker buildx bake --load
images=()
for component in gateway "${SERVICES[@]}"; do
  images+=("$REGISTRY/newsroom-$component:$TAG")
done
case $TOOL in
  kind) kind load docker-image --name "$CLUSTER" "${images[@]}" ;;
  k3d) k3d image import --cluster "$CLUSTER" "${images[@]}" ;;
esac

# A second run reuses the tag: the Deployments do not change, so restart
# them to pick up the images just loaded.
existed=$(kubectl -n "$NAMESPACE" get deployment gateway -o name 2>/dev/null || true)
scripts/deploy.sh apply dev "$NAMESPACE" "$TAG"
if [ -n "$existed" ]; then
  for component in gateway "${SERVICES[@]}"; do
    kubectl -n "$NAMESPACE" rollout restart "deployment/$component"
  done
  for component in gateway "${SERVICES[@]}"; do
    kubectl -n "$NAMESPACE" rollout status "deployment/$component" --timeout=10m
  done
fi
cat <<MSG

newsroom runs in namespace $NAMESPACE. Try it:
  kubectl -n $NAMESPACE port-forward svc/gateway 8080:8080 &
  curl -s 'http://127.0.0.1:8080/api/v1/articles?limit=5'
MSG
