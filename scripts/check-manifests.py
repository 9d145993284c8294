#!/usr/bin/env python3
"""The manifest contract test: what each rendered overlay deploys must be
what the binaries need, checked without a cluster.

For every overlay it renders the manifests (kubectl kustomize) and, for each
container running one of our binaries:

1. materialises the container as Kubernetes would start it: the image's
   config files (the Dockerfile's `COPY <dir> /app/config` of that target)
   and ENV, mounted ConfigMaps and Secrets as files, and the environment
   from envFrom and env (ConfigMaps, Secrets: the overlay's own, or for prod
   the documented placeholders of SECRET_SHAPES; the downward API), in a
   temporary root and a clean environment;
2. runs the debug binary there with `--check-config`, which loads and
   validates exactly that configuration, binds nothing and prints the
   binary's contract: the ports it serves, what it dials, its shutdown budget;
3. checks the manifests against the contracts: container, Service,
   probe and scrape ports are ports the binary serves;
   terminationGracePeriodSeconds covers preStop + the shutdown budget; the
   NetworkPolicies, evaluated like a CNI would, allow every connection the
   configs make (each dial, discovered services, DNS, Prometheus → admin
   ports, the Ingress controller → gateway) and deny what they must not
   (gateway → any datastore, a service → another service's datastore);
   every image of ours is qualified and of one registry and tag.

`--self-test` then breaks the rendered overlays in known ways (a port moved
on one side, an env key misspelt, a policy edge removed, a grace period cut,
datastores opened to the gateway or to another service) and fails unless
each mutation produces a problem the intact overlay does not have.

    scripts/check-manifests.py [--bin-dir target/debug] [--self-test] [OVERLAY...]

Needs PyYAML and kubectl with kustomize v5 ($KUBECTL). Hand-written policy
evaluation: the NetworkPolicy semantics used here (pod/namespace selectors,
ipBlock with except, named ports, policyTypes) are small and stable, and no
offline evaluator is packaged for Python.
"""

import argparse
import base64
import copy
import ipaddress
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The gRPC services: every crate under services/ (make new-service adds one).
SERVICES = tuple(sorted(d for d in os.listdir(os.path.join(ROOT, "services"))
                        if os.path.isfile(os.path.join(ROOT, "services", d, "Cargo.toml"))))
BINARIES = ("gateway",) + SERVICES
OUR_IMAGE = re.compile(r"^(?P<registry>.+)/newsroom-(?P<component>[a-z]+):(?P<tag>[^:/@]+)$")

# What docs/deploy.md ("Secrets") tells prod users to create; stands in for
# Secrets an overlay does not generate. A key a workload reads that is not
# here is a problem: the docs and the manifests disagree.
SECRET_SHAPES = {
    ("gateway-secrets", "jwt-secret"): "placeholder-jwt-secret-of-at-least-32-bytes-0123456789",
    ("gateway-secrets", "admin-token"): "placeholder-admin-token",
    **{
        (f"{svc}-secrets", "database-url"): f"mysql://{svc}:placeholder@mysql-{svc}:3306/{svc}"
        for svc in SERVICES
    },
    **{
        (f"{svc}-secrets", "redis-url"): f"redis://redis-{svc}:6379"
        for svc in SERVICES
    },
}

# Pods outside the overlay that the policies must let in or out.
DNS_POD = {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"},
           "ports": {"dns": 53, "dns-tcp": 53}, "ip": "10.96.0.10"}
MONITORING_PROMETHEUS = {"name": "prometheus (namespace labelled newsroom/monitoring=true)",
                         "namespace": "monitoring",
                         "labels": {"app.kubernetes.io/name": "prometheus"}, "ports": {},
                         "ip": "10.244.200.1"}
INGRESS_CONTROLLER = {"name": "ingress-nginx controller", "namespace": "ingress-nginx",
                      "labels": {"app.kubernetes.io/name": "ingress-nginx"}, "ports": {},
                      "ip": "10.244.201.1"}
EXTERNAL_NAMESPACE_LABELS = {
    "kube-system": {},
    "monitoring": {"newsroom/monitoring": "true"},
    "ingress-nginx": {},
}


def kubectl():
    return os.environ.get("KUBECTL", "kubectl")


def render(overlay):
    out = subprocess.run([kubectl(), "kustomize", os.path.join(ROOT, "k8s", "overlays", overlay)],
                         check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


# --- the image as the Dockerfile builds it ------------------------------------

def dockerfile_targets():
    """target name → {"env": {...}, "copies": [(src, dst)]}, following FROM
    chains inside the Dockerfile so a target inherits its base's ENV."""
    stages, current = {}, None
    text = open(os.path.join(ROOT, "Dockerfile")).read().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            base, name = m.group(1), (m.group(2) or "").lower()
            parent = stages.get(base.lower(), {"env": {}, "copies": []})
            current = {"env": dict(parent["env"]), "copies": list(parent["copies"])}
            stages[name] = current
        elif word == "ENV" and current is not None:
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                current["env"][key] = value.strip('"')
        elif word == "COPY" and current is not None and "--from" not in rest:
            parts = rest.split()
            current["copies"].append((parts[0], parts[-1]))
    return stages


# --- the container as Kubernetes starts it ------------------------------------

class Problems(list):
    def add(self, where, text):
        self.append(f"{where}: {text}")


def index(docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return by_kind


def pod_templates(docs):
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield d, d["spec"]["template"]


def secret_value(objs, overlay, name, key, optional, problems, where):
    secret = objs.get("Secret", {}).get(name)
    if secret is not None:
        if key in secret.get("data", {}):
            return base64.b64decode(secret["data"][key]).decode()
        if key in secret.get("stringData", {}):
            return secret["stringData"][key]
        if not optional:
            problems.add(where, f"Secret {name} has no key {key}")
        return None
    if (name, key) in SECRET_SHAPES:
        return SECRET_SHAPES[(name, key)]
    if not optional:
        problems.add(where, f"Secret {name}/{key} is neither in overlay {overlay} nor documented "
                            "(docs/deploy.md, Secrets; SECRET_SHAPES here)")
    return None


def configmap_data(objs, name, problems, where, optional=False):
    cm = objs.get("ConfigMap", {}).get(name)
    if cm is None:
        if not optional:
            problems.add(where, f"ConfigMap {name} does not exist in the overlay")
        return {}
    return cm.get("data", {})


def expand(value, env):
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def container_environment(objs, overlay, pod, container, image_env, problems, where):
    env = dict(image_env)
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            for k, v in configmap_data(objs, ref["name"], problems, where, ref.get("optional", False)).items():
                env[prefix + k] = v
        elif "secretRef" in source:
            ref = source["secretRef"]
            secret = objs.get("Secret", {}).get(ref["name"])
            if secret is None and not ref.get("optional", False):
                problems.add(where, f"envFrom Secret {ref['name']} does not exist")
            for k, v in (secret or {}).get("data", {}).items():
                env[prefix + k] = base64.b64decode(v).decode()
    for var in container.get("env", []):
        name = var["name"]
        if "value" in var:
            env[name] = expand(str(var["value"]), env)
            continue
        source = var.get("valueFrom", {})
        value = None
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secret_value(objs, overlay, ref["name"], ref["key"], ref.get("optional", False), problems,
                                 f"{where} env {name}")
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = configmap_data(objs, ref["name"], problems, f"{where} env {name}", ref.get("optional", False))
            value = data.get(ref["key"])
            if value is None and not ref.get("optional", False):
                problems.add(f"{where} env {name}", f"ConfigMap {ref['name']} has no key {ref['key']}")
        elif "fieldRef" in source:
            value = {"status.podIP": pod["ip"], "metadata.name": pod["name"],
                     "metadata.namespace": pod["namespace"], "spec.nodeName": "node-1",
                     "status.hostIP": "10.0.0.1"}.get(source["fieldRef"]["fieldPath"], "x")
        elif "resourceFieldRef" in source:
            value = "1"
        if value is not None:
            env[name] = value
    return env


def materialise(objs, overlay, workload, template, container, binary, targets, pod, bin_dir, problems):
    """Runs `binary --check-config` in the container's files and environment;
    returns its contract (or None after recording the problem)."""
    where = f"{overlay}: {workload['kind']}/{workload['metadata']['name']} container {container['name']}"
    target = targets.get(binary)
    if target is None:
        problems.add(where, f"the Dockerfile has no target {binary}")
        return None
    root = tempfile.mkdtemp(prefix=f"contract-{binary}-")
    try:
        for src, dst in target["copies"]:
            src_path = os.path.join(ROOT, src)
            dst_path = os.path.join(root, dst.lstrip("/"))
            if os.path.isdir(src_path):
                shutil.copytree(src_path, dst_path, dirs_exist_ok=True)
            elif os.path.isfile(src_path):
                os.makedirs(os.path.dirname(dst_path), exist_ok=True)
                shutil.copy(src_path, dst_path)
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"])
            if volume is None:
                problems.add(where, f"volumeMount {mount['name']} has no volume")
                continue
            files = {}
            if "configMap" in volume:
                files = configmap_data(objs, volume["configMap"]["name"], problems, where,
                                       volume["configMap"].get("optional", False))
            elif "secret" in volume:
                secret = objs.get("Secret", {}).get(volume["secret"]["secretName"], {})
                files = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
            else:
                os.makedirs(os.path.join(root, mount["mountPath"].lstrip("/")), exist_ok=True)
                continue
            target_dir = os.path.join(root, mount["mountPath"].lstrip("/"))
            if "subPath" in mount:
                os.makedirs(os.path.dirname(target_dir), exist_ok=True)
                open(target_dir, "w").write(files.get(mount["subPath"], ""))
            else:
                if os.path.isdir(target_dir):
                    shutil.rmtree(target_dir)  # a mount hides what the image had there
                os.makedirs(target_dir, exist_ok=True)
                for k, v in files.items():
                    open(os.path.join(target_dir, k), "w").write(v)
        env = container_environment(objs, overlay, pod, container, target["env"], problems, where)
        # Absolute paths inside the container live under the temporary root.
        for k, v in env.items():
            if v.startswith("/") and os.path.exists(os.path.join(root, v.lstrip("/"))):
                env[k] = os.path.join(root, v.lstrip("/"))
        env["PATH"] = "/usr/bin:/bin"
        binary_path = os.path.join(bin_dir, binary)
        if not os.access(binary_path, os.X_OK):
            problems.add(where, f"no binary {binary_path} (cargo build --bins)")
            return None
        run = subprocess.run([binary_path, "--check-config"], env=env, cwd=root, capture_output=True,
                             text=True, timeout=60)
        if run.returncode != 0:
            err = (run.stderr.strip() or run.stdout.strip()).splitlines()
            problems.add(where, f"{binary} --check-config exits {run.returncode}: {' | '.join(err[-3:])}")
            return None
        for line in run.stdout.splitlines():
            if line.startswith("contract: "):
                return json.loads(line[len("contract: "):])
        problems.add(where, f"{binary} --check-config printed no contract")
        return None
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- NetworkPolicy evaluation ---------------------------------------------------

def selector_matches(selector, labels):
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


class Network:
    def __init__(self, docs, namespace):
        self.namespace = namespace
        self.policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
        self.ns_labels = {namespace: {}}
        for d in docs:
            if d["kind"] == "Namespace":
                self.ns_labels[d["metadata"]["name"]] = dict(d["metadata"].get("labels") or {})
        self.ns_labels.update(copy.deepcopy(EXTERNAL_NAMESPACE_LABELS))
        for name, labels in self.ns_labels.items():
            labels["kubernetes.io/metadata.name"] = name

    def policy_types(self, policy):
        types = policy["spec"].get("policyTypes")
        if types:
            return types
        return ["Ingress"] + (["Egress"] if "egress" in policy["spec"] else [])

    def selecting(self, pod, direction):
        return [p for p in self.policies
                if p["metadata"].get("namespace", self.namespace) == pod["namespace"]
                and selector_matches(p["spec"].get("podSelector", {}), pod["labels"])
                and direction in self.policy_types(p)]

    def peer_matches(self, peer, policy_ns, other):
        """Does a from/to peer admit `other` (a pod dict, or {"ip": ...})?"""
        if "ipBlock" in peer:
            ip = ipaddress.ip_address(other["ip"])
            block = peer["ipBlock"]
            if ip not in ipaddress.ip_network(block["cidr"]):
                return False
            return not any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
        if "labels" not in other:  # an address outside the cluster: only ipBlocks match
            return False
        if "namespaceSelector" in peer:
            if not selector_matches(peer["namespaceSelector"], self.ns_labels.get(other["namespace"], {})):
                return False
        elif other["namespace"] != policy_ns:
            return False
        if "podSelector" in peer:
            return selector_matches(peer["podSelector"], other["labels"])
        return True

    @staticmethod
    def port_matches(rule_ports, port, protocol, dst):
        if not rule_ports:
            return True
        for p in rule_ports:
            if p.get("protocol", "TCP") != protocol:
                continue
            want = p.get("port")
            if want is None:
                return True
            if isinstance(want, str):
                want = dst.get("ports", {}).get(want)
            end = p.get("endPort", want)
            if want is not None and want <= port <= end:
                return True
        return False

    def side_allows(self, pod, other, port, protocol, direction, dst):
        policies = self.selecting(pod, direction)
        if not policies:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in policies:
            ns = policy["metadata"].get("namespace", self.namespace)
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self.peer_matches(peer, ns, other) for peer in peers):
                    continue
                if self.port_matches(rule.get("ports"), port, protocol, dst):
                    return True
        return False

    def allows(self, src, dst, port, protocol="TCP"):
        if not self.side_allows(src, dst, port, protocol, "Egress", dst):
            return False
        if "labels" in dst and not self.side_allows(dst, src, port, protocol, "Ingress", dst):
            return False
        return True


# --- the checks ------------------------------------------------------------------

def check_overlay(overlay, docs, bin_dir, targets):
    problems = Problems()
    objs = index(docs)
    namespaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    if len(namespaces) != 1:
        problems.add(overlay, f"the overlay must create exactly one Namespace, has {namespaces}")
    namespace = namespaces[0] if namespaces else "default"
    for d in docs:
        ns = d["metadata"].get("namespace")
        if d["kind"] != "Namespace" and ns not in (None, namespace):
            problems.add(overlay, f"{d['kind']}/{d['metadata']['name']} is in namespace {ns}, not {namespace}")

    # Images: ours qualified, one registry and one tag.
    ours = set()
    for workload, template in pod_templates(docs):
        for c in template["spec"].get("containers", []) + template["spec"].get("initContainers", []):
            image = c["image"]
            first = image.split("/")[0]
            if "/" not in image or not ("." in first or ":" in first or first == "localhost"):
                problems.add(overlay, f"{workload['metadata']['name']}: image {image} is not qualified "
                                      "with a registry (it would resolve to Docker Hub)")
            m = OUR_IMAGE.match(image)
            if m:
                ours.add((m.group("registry"), m.group("tag")))
            elif "newsroom" in image:
                problems.add(overlay, f"{workload['metadata']['name']}: image {image} is not "
                                      "$REGISTRY/newsroom-<component>:$TAG")
    if len(ours) > 1:
        problems.add(overlay, f"our images mix registries/tags: {sorted(ours)}")

    # Pods, with the binary each runs.
    pods = []
    for n, (workload, template) in enumerate(pod_templates(docs)):
        labels = dict(template["metadata"].get("labels") or {})
        ports = {}
        for c in template["spec"]["containers"]:
            for p in c.get("ports", []):
                if "name" in p:
                    ports[p["name"]] = p["containerPort"]
        pod = {"name": workload["metadata"]["name"], "namespace": namespace, "labels": labels,
               "ports": ports, "ip": f"10.244.{n // 250}.{n % 250 + 2}", "workload": workload,
               "template": template, "binary": None, "contract": None}
        for c in template["spec"]["containers"]:
            m = OUR_IMAGE.match(c["image"])
            if m and m.group("component") in BINARIES:
                pod["binary"], pod["container"] = m.group("component"), c
                pod["contract"] = materialise(objs, overlay, workload, template, c, m.group("component"),
                                              targets, pod, bin_dir, problems)
        pods.append(pod)

    ours = [p for p in pods if p["contract"] is not None]
    by_binary = {p["binary"]: p for p in ours}
    net = Network(docs, namespace)

    def resolve(pod, port):
        return pod["ports"].get(port) if isinstance(port, str) else port

    for pod in ours:
        contract, c = pod["contract"], pod["container"]
        where = f"{overlay}: {pod['binary']}"
        served = {l["port"]: l["name"] for l in contract["listens"]}
        declared = {p["containerPort"] for p in c.get("ports", [])}
        for port, name in served.items():
            if port not in declared:
                problems.add(where, f"serves {name} on {port}, which the container does not declare")
        for port in declared - set(served):
            problems.add(where, f"the container declares port {port}, which the binary does not serve")
        for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = c.get(probe_kind)
            if not probe:
                continue
            for handler in ("httpGet", "tcpSocket", "grpc"):
                if handler in probe:
                    port = resolve(pod, probe[handler]["port"])
                    if port not in served:
                        problems.add(where, f"{probe_kind} {handler} port {probe[handler]['port']} "
                                            f"(= {port}) is not a port the binary serves {sorted(served)}")
        annotations = pod["template"]["metadata"].get("annotations") or {}
        if "prometheus.io/port" in annotations:
            port = int(annotations["prometheus.io/port"])
            if served.get(port) != "admin":
                problems.add(where, f"prometheus.io/port {port} is not the admin port")
        for svc in objs.get("Service", {}).values():
            selector = svc["spec"].get("selector")
            if not selector or not all(pod["labels"].get(k) == v for k, v in selector.items()):
                continue
            for sp in svc["spec"].get("ports", []):
                target = resolve(pod, sp.get("targetPort", sp["port"]))
                if target not in served:
                    problems.add(where, f"Service {svc['metadata']['name']} port {sp['port']} targets "
                                        f"{sp.get('targetPort')} (= {target}), not a port the binary serves "
                                        f"{sorted(served)}")
        for monitor in objs.get("PodMonitor", {}).values():
            if selector_matches(monitor["spec"].get("selector", {}), pod["labels"]):
                for ep in monitor["spec"].get("podMetricsEndpoints", []):
                    if served.get(resolve(pod, ep.get("port"))) != "admin":
                        problems.add(where, f"PodMonitor {monitor['metadata']['name']} scrapes "
                                            f"{ep.get('port')}, not the admin port")

        # Grace period ≥ preStop + shutdown budget.
        spec = pod["template"]["spec"]
        grace = spec.get("terminationGracePeriodSeconds", 30)
        pre_stop = 0
        hook = (c.get("lifecycle") or {}).get("preStop") or {}
        if "sleep" in hook:
            pre_stop = hook["sleep"]["seconds"]
        elif "exec" in hook:
            m = re.search(r"sleep\s+(\d+)", " ".join(hook["exec"].get("command", [])))
            pre_stop = int(m.group(1)) if m else 0
        budget = math.ceil(contract["shutdown_budget_ms"] / 1000)
        if grace < pre_stop + budget:
            problems.add(where, f"terminationGracePeriodSeconds {grace} < preStop {pre_stop}s + shutdown "
                                f"budget {budget}s (propagation_delay + drain_timeout + flush_timeout)")

    # Connections the configs make must be allowed.
    def service_targets(host, port, where):
        """(pod-or-address, port) the name host:port reaches, or None."""
        name = host.split(".")[0]
        svc = objs.get("Service", {}).get(name)
        if svc is None or (host.count(".") >= 1 and host.split(".")[1] not in (namespace, "svc")):
            problems.add(where, f"dials {host}:{port}, but the overlay has no Service {name}")
            return []
        if svc["spec"].get("type") == "ExternalName":
            cidr = (svc["metadata"].get("annotations") or {}).get("newsroom/cidr")
            if not cidr:
                problems.add(where, f"dials ExternalName Service {name}, which has no newsroom/cidr "
                                    "annotation to check the NetworkPolicies against")
                return []
            net_ = ipaddress.ip_network(cidr)
            return [({"name": f"{name} ({cidr})", "ip": str(next(net_.hosts()))}, port)]
        sp = next((p for p in svc["spec"].get("ports", []) if p["port"] == port), None)
        if sp is None:
            problems.add(where, f"dials {host}:{port}, but Service {name} has no port {port}")
            return []
        selected = [p for p in pods if svc["spec"].get("selector")
                    and all(p["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())]
        if not selected:
            problems.add(where, f"Service {name} selects no pod of the overlay")
        return [(p, resolve(p, sp.get("targetPort", sp["port"]))) for p in selected]

    def require(src, dst, port, why, protocol="TCP"):
        if port is None:
            problems.add(overlay, f"{why}: the destination port does not resolve")
        elif not net.allows(src, dst, port, protocol):
            problems.add(overlay, f"NetworkPolicies block {src['name']} → {dst['name']}:{port}/{protocol} "
                                  f"({why})")

    datastores = {}  # binary → [(destination, port)]
    registered = {p["contract"].get("registers_as") for p in ours}
    for pod in ours:
        where = f"{overlay}: {pod['binary']}"
        for backend in pod["contract"].get("critical", []):
            if backend not in registered:
                problems.add(where, f"readiness requires {backend}, which no workload of the overlay registers "
                                    "as: the pods would never become ready")
        require(pod, DNS_POD, 53, "cluster DNS", "UDP")
        for dial in pod["contract"]["dials"]:
            if dial["kind"] == "address":
                for dst, port in service_targets(dial["host"], dial["port"], where):
                    require(pod, dst, port, f"{pod['binary']} {dial['role']} {dial['host']}:{dial['port']}")
                    if dial["role"] in ("database", "cache"):
                        datastores.setdefault(pod["binary"], []).append((dst, port, dial["host"]))
            else:
                callee = [p for p in ours if p["contract"].get("registers_as") == dial["service"]]
                if not callee:
                    problems.add(where, f"calls {dial['service']}, which no workload registers as")
                for dst in callee:
                    grpc = next(l["port"] for l in dst["contract"]["listens"] if l["name"] == "grpc")
                    require(pod, dst, grpc, f"{pod['binary']} calls {dial['service']} (discovered)")
        admin = next((l["port"] for l in pod["contract"]["listens"] if l["name"] == "admin"), None)
        scrapers = [MONITORING_PROMETHEUS] + [p for p in pods
                                              if p["labels"].get("app.kubernetes.io/name") == "prometheus"]
        for scraper in scrapers:
            require(scraper, pod, admin, "Prometheus scrapes the admin port")
    # The load test's workers drive LOCUST_HOST and report to their master.
    for pod in pods:
        for c in pod["template"]["spec"]["containers"]:
            args = c.get("args") or []
            if "--worker" not in args:
                continue
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            dials = []
            if env.get("LOCUST_HOST"):
                m = re.match(r"https?://([^:/]+)(?::(\d+))?", env["LOCUST_HOST"])
                dials.append((m.group(1), int(m.group(2) or 80), "load on LOCUST_HOST"))
            for a in args:
                if a.startswith("--master-host="):
                    dials.append((a.split("=", 1)[1], 5557, "locust worker → master"))
            for host, port, why in dials:
                for dst, dst_port in service_targets(host, port, f"{overlay}: {pod['name']}"):
                    require(pod, dst, dst_port, why)

    # Alerts must reach the Alertmanager prometheus.yml names.
    for cm in objs.get("ConfigMap", {}).values():
        text = (cm.get("data") or {}).get("prometheus.yml")
        if not text:
            continue
        config = yaml.safe_load(text) or {}
        prometheus = [p for p in pods if p["labels"].get("app.kubernetes.io/name") == "prometheus"]
        for am in (config.get("alerting") or {}).get("alertmanagers", []):
            for sc in am.get("static_configs", []):
                for target in sc.get("targets", []):
                    host, port = target.rsplit(":", 1)
                    for src in prometheus:
                        for dst, dst_port in service_targets(host, int(port), f"{overlay}: prometheus.yml"):
                            require(src, dst, dst_port, f"Prometheus sends alerts to {target}")
    if "gateway" in by_binary:
        gw = by_binary["gateway"]
        http = next(l["port"] for l in gw["contract"]["listens"] if l["name"] == "http")
        require(INGRESS_CONTROLLER, gw, http, "the Ingress routes to the gateway")

    # … and connections nobody needs must be denied.
    for owner, stores in datastores.items():
        for pod in ours:
            if pod["binary"] == owner:
                continue
            for dst, port, host in stores:
                if net.allows(pod, dst, port):
                    problems.add(overlay, f"NetworkPolicies let {pod['binary']} reach {owner}'s datastore "
                                          f"{host}:{port}")
    return problems, {p["binary"]: p["contract"] for p in ours}


# --- mutations for --self-test -----------------------------------------------------

def find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def move_gateway_service_port(docs):
    find(docs, "Service", "gateway")["spec"]["ports"][0]["targetPort"] = 8081
    return "gateway Service targetPort moved to 8081 (the container still serves 8080)"


def move_probe_port(docs):
    c = find(docs, "Deployment", "content")["spec"]["template"]["spec"]["containers"][0]
    c["readinessProbe"]["httpGet"]["port"] = 9101
    return "content readiness probe moved to port 9101"


def misspell_env_key(docs):
    c = find(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    var = next(v for v in c["env"] if v["name"].endswith("__JWT_SECRET"))
    var["name"] = var["name"].replace("JWT_SECRET", "JWT_SECRT")
    return f"gateway env key misspelt: {var['name']}"


def remove_comment_to_content(docs):
    docs.remove(find(docs, "NetworkPolicy", "comment-to-content"))
    return "NetworkPolicy comment-to-content removed"


def remove_dns(docs):
    docs.remove(find(docs, "NetworkPolicy", "allow-dns"))
    return "NetworkPolicy allow-dns removed"


def drop_monitoring_namespace(docs):
    policy = find(docs, "NetworkPolicy", "allow-scrape")
    policy["spec"]["ingress"][0]["from"] = [p for p in policy["spec"]["ingress"][0]["from"]
                                            if "namespaceSelector" not in p]
    return "allow-scrape no longer admits the labelled monitoring namespace"


def misspell_database_host(docs):
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].startswith("user-secrets"))
    url = base64.b64decode(secret["data"]["database-url"]).decode().replace("@mysql-user:", "@mysql-usr:")
    secret["data"]["database-url"] = base64.b64encode(url.encode()).decode()
    return "user's database URL names host mysql-usr"


def cut_alerts(docs):
    policy = find(docs, "NetworkPolicy", "alertmanager")
    policy["spec"]["ingress"] = []
    return "Alertmanager admits nobody (Prometheus' alerts would go nowhere)"


def close_gateway_to_loadgen(docs):
    docs.remove(find(docs, "NetworkPolicy", "gateway-from-loadgen"))
    return "dev-loadtest: NetworkPolicy gateway-from-loadgen removed"


def remove_content(docs):
    docs.remove(find(docs, "Deployment", "content"))
    return "content Deployment removed (the gateway's critical backend)"


def widen_user_datastore_cidr(docs):
    policy = find(docs, "NetworkPolicy", "user-to-datastores")
    policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = "10.100.0.0/16"
    return "prod: user's database CIDR widened to 10.100.0.0/16 (every service's databases)"


def open_datastores_to_gateway(docs):
    policy = find(docs, "NetworkPolicy", "gateway")
    policy["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]})
    return "prod: gateway egress opened to 10.0.0.0/8"


def shorten_grace(docs):
    find(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 20
    return "gateway terminationGracePeriodSeconds 20 (< 5s preStop + budget)"


MUTATIONS = [("dev", move_gateway_service_port), ("dev", move_probe_port), ("dev", misspell_env_key),
             ("dev", remove_comment_to_content), ("dev", shorten_grace), ("dev", remove_dns),
             ("dev", drop_monitoring_namespace), ("dev", misspell_database_host), ("dev", remove_content),
             ("dev", cut_alerts), ("dev-loadtest", close_gateway_to_loadgen),
             ("prod", widen_user_datastore_cidr), ("prod", open_datastores_to_gateway)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overlays", nargs="*", default=None)
    # A copy of the repository may build into another tree's target dir
    # (scripts/test-generator.sh): CARGO_TARGET_DIR says where.
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    parser.add_argument("--bin-dir", default=os.path.join(target, "debug"))
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    overlays = args.overlays or sorted(os.listdir(os.path.join(ROOT, "k8s", "overlays")))
    targets = dockerfile_targets()
    failed = False
    for overlay in overlays:
        docs = render(overlay)
        problems, contracts = check_overlay(overlay, docs, args.bin_dir, targets)
        for binary, contract in sorted(contracts.items()):
            listens = ", ".join(f"{l['name']}:{l['port']}" for l in contract["listens"])
            print(f"{overlay}: {binary} --check-config OK (serves {listens}; {len(contract['dials'])} dials; "
                  f"shutdown budget {contract['shutdown_budget_ms'] / 1000:g}s)")
        if problems:
            failed = True
            print(f"{overlay}: {len(problems)} problem(s)")
            for p in problems:
                print(f"  FAIL {p}")
        else:
            print(f"{overlay}: {len(docs)} objects, contract holds")
    if args.self_test:
        rendered, baselines = {}, {}
        for overlay, mutate in MUTATIONS:
            if overlay not in rendered:
                rendered[overlay] = render(overlay)
                baselines[overlay], _ = check_overlay(overlay, rendered[overlay], args.bin_dir, targets)
            baseline = baselines[overlay]
            mutated = copy.deepcopy(rendered[overlay])
            what = mutate(mutated)
            problems, _ = check_overlay(overlay, mutated, args.bin_dir, targets)
            new = [p for p in problems if p not in baseline]
            if new:
                print(f"mutation caught: {what}\n  → {new[0]}")
            else:
                failed = True
                print(f"MUTATION MISSED: {what}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
