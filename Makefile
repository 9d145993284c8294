# The two commands a new user needs: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PORT ?= 8080
# The one image story (docs/deploy.md): $(REGISTRY)/newsroom-<component>:$(TAG).
REGISTRY ?= localhost:5001
TAG ?= dev

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
		'{ name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1) } \
		 END { for (i = 1; i <= NR; i++) printf "  make %-*s  %s\n", width, name[i], text[i] }'

# make run builds the served binaries only (not bench's), with kit's
# features unified across them: one kit, one sqlx, one build. By binary, not
# package: a service may share its name with a crate of the dependency tree.
SERVICES := $(sort $(patsubst services/%/Cargo.toml,%,$(wildcard services/*/Cargo.toml)))
# make run serves debug builds, as `cargo run` does: on a fresh 2-core machine
# they build in about 4 minutes where release takes 12 and more (release
# links with whole-program LTO: about 20 on a busy VM), and `make test` then
# reuses them instead of building everything a second time. PROFILE=release
# serves the optimised binaries that make bench, make loadtest and the
# images use.
PROFILE ?= dev
PROFILE_DIR := $(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
.PHONY: run
run: ## Install what is missing, build, start etcd + services + gateway on 127.0.0.1:$(PORT) with demo data (FRESH=1: empty DATA first; PROFILE=release: optimised)
	@scripts/deps.sh build
	@cargo build --profile $(PROFILE) --bin gateway $(addprefix --bin ,$(SERVICES))
	@PORT=$(PORT) BIN=target/$(PROFILE_DIR) scripts/run.sh

.PHONY: restart
restart: ## Start a process of the running make run again: make restart NAME=comment
	@scripts/run.sh restart $(NAME)

.PHONY: reset
reset: ## Delete make run's data (DATA, default data/): the next make run starts empty
	@scripts/run.sh reset

.PHONY: test
test: ## The whole test suite (installs and starts etcd, MariaDB and Redis when missing)
	@scripts/deps.sh test
	@scripts/test.sh

.PHONY: api-fuzz
api-fuzz: ## schemathesis (every check and phase) against a stack of its own: the API is what /openapi.json says
	@scripts/deps.sh build
	@cargo build --workspace --bins
	@scripts/api-fuzz.sh

.PHONY: loadtest
loadtest: ## Locust, headless, 60 s against TARGET or a stack of its own; reports in loadtest/reports/
	@scripts/deps.sh build
	@[ -n "$(TARGET)" ] || cargo build --release -p gateway -p user -p content -p comment
	@scripts/loadtest.sh

.PHONY: bench
bench: ## Throughput, latency and memory vs a bare skeleton (several minutes; docs/benchmarks.md)
	@scripts/deps.sh bench
	@scripts/bench.sh

.PHONY: spike
spike: ## A news spike with faults (10× load, comment and content killed, etcd restarted) against a stack of its own; target/spike/report.md
	@scripts/deps.sh build
	@scripts/spike.sh

.PHONY: bench-instr
bench-instr: ## Instructions (callgrind) and system calls per request, per process, platform vs bare skeleton (docs/benchmarks.md)
	@scripts/deps.sh bench
	@scripts/bench-instr.sh

.PHONY: pgo
pgo: ## Profile-guided release binaries in target/pgo/release (two LTO builds and a profiling run; docs/benchmarks.md)
	@scripts/pgo.sh

.PHONY: lint
lint: ## cargo fmt --check and clippy -D warnings
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: deploy-check
deploy-check: ## Check k8s manifests, Dockerfile, .gitlab-ci.yml, Prometheus rules (installs its tools)
	@scripts/check-deploy.sh

.PHONY: deploy-contract
deploy-contract: ## Every overlay against the debug binaries' --check-config: env, ports, grace, NetworkPolicies
	@cargo build --workspace --bins
	@scripts/check-deploy.sh contract

.PHONY: images
images: ## Build every image with docker buildx bake: $(REGISTRY)/newsroom-<component>:$(TAG)
	REGISTRY=$(REGISTRY) TAG=$(TAG) docker buildx bake --load

.PHONY: kind-up
kind-up: ## A local kind (or k3d: TOOL=k3d) cluster running the dev overlay from `make images`
	@REGISTRY=$(REGISTRY) TAG=$(TAG) scripts/kind-up.sh

.PHONY: new-service
new-service: ## A new gRPC service with its proto, gateway routes, k8s and stack wiring: make new-service NAME=quote (docs/new-service.md)
	@scripts/service.py new "$(NAME)"

.PHONY: remove-service
remove-service: ## Undo make new-service exactly: make remove-service NAME=quote
	@scripts/service.py remove "$(NAME)"

.PHONY: rename
rename: ## Rename the project (crates' docs, images, k8s, etcd prefix, metrics) from newsroom: make rename NAME=acme
	@scripts/service.py rename "$(NAME)"

.PHONY: fmt
fmt: ## Format the code
	cargo fmt --all

.PHONY: chaos
chaos: ## Kill, restart and partition real processes under load (SIGKILL failover, rolling restart, etcd cluster, network cuts) and print a table of figures
	@scripts/deps.sh test
	@cargo build --workspace --bins
	@scripts/chaos.sh
