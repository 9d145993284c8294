# syntax=docker/dockerfile:1.7
#
# One Dockerfile, one target per binary; every target copies its binary out
# of the same `builder` stage, so building all four costs one compile.
# `make images` builds them all in one `docker buildx bake` (docker-bake.hcl)
# as $REGISTRY/newsroom-<component>:$TAG, e.g. localhost:5001/newsroom-gateway:dev.
#
# Stages: chef (toolchain + protoc + cargo-chef) → planner (recipe.json: the
# dependency graph only) → builder (cook the recipe, a layer that changes only
# with Cargo.lock/Cargo.toml, then build the workspace) → one tiny runtime
# image per binary. No HEALTHCHECK: Kubernetes probes own health.

# sqlx 0.9 needs rustc 1.94+; CI and `make` use the same toolchain.
ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
# protoc compiles the contracts in proto/build.rs. The builder is thrown away,
# so apt versions float with Debian stable's point releases (see .hadolint.yaml).
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# TLS for Sentry, so an https DSN (sentry.io, a self-hosted Sentry behind
# TLS) works, and to MySQL, Redis (rediss://) and etcd (https://); `make run`
# and CI builds leave both out to stay lean. gateway/redis: rate limits shared
# by every gateway pod once `limits.store: redis` is set (the default stays
# per pod), without rebuilding the image.
ARG FEATURES=kit/sentry-tls,kit/tls,gateway/redis
# Profile-guided binaries (docs/benchmarks.md: about a third less CPU per
# article list): CI's images:push passes -Cprofile-use=/src/pgo/merged.profdata,
# the profile its pgo:profile job made with these FEATURES (pgo/README.md);
# empty, the plain release build. Cargo reads the build argument as the
# RUSTFLAGS environment variable, so the dependencies cooked below are
# profile-guided too: most of a request's instructions are hyper's, h2's
# and tonic's.
ARG RUSTFLAGS=""
COPY pgo/ pgo/
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --features "${FEATURES}" --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --features "${FEATURES}" --bin gateway --bin user --bin content --bin comment

# distroless/cc: glibc, libgcc, CA certificates and tzdata, nothing else (no
# shell, no package manager); `nonroot` runs as uid/gid 65532. Nothing is
# written outside /tmp, so readOnlyRootFilesystem works with an emptyDir there.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /app
ENV APP_ENVIRONMENT=production \
    APP_CONFIG_DIR=/app/config
USER 65532:65532

FROM runtime AS gateway
COPY --from=builder /src/target/release/gateway /app/gateway
COPY gateway/config /app/config
EXPOSE 8080 9100
ENTRYPOINT ["/app/gateway"]

FROM runtime AS user
# argon2 takes 19 MiB per hash: hand it back to the OS as soon as the hash
# ends rather than after mimalloc's purge delay, so idle pods stay small.
ENV MIMALLOC_PURGE_DELAY=0
COPY --from=builder /src/target/release/user /app/user
COPY services/user/config /app/config
EXPOSE 50051 9101
ENTRYPOINT ["/app/user"]

FROM runtime AS content
COPY --from=builder /src/target/release/content /app/content
COPY services/content/config /app/config
EXPOSE 50052 9102
ENTRYPOINT ["/app/content"]

FROM runtime AS comment
COPY --from=builder /src/target/release/comment /app/comment
COPY services/comment/config /app/config
EXPOSE 50053 9103
ENTRYPOINT ["/app/comment"]

# new-service: images
