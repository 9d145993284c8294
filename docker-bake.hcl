// Every image of newsroom in one build: `make images` (docker buildx bake).
// One Dockerfile stage (`builder`) compiles the four binaries once; the four
// runtime targets only copy their binary out of it, and BuildKit runs that
// shared stage once for all of them within this single bake invocation.
//
// Names: $REGISTRY/newsroom-<component>:$TAG, the one image story of
// k8s/overlays/dev (localhost:5001, dev) and scripts/deploy.sh:
//   REGISTRY=registry.gitlab.com/me/newsroom TAG=v1.2.0 docker buildx bake --push
variable "REGISTRY" {
  default = "localhost:5001"
}

variable "TAG" {
  default = "dev"
}

group "default" {
  targets = ["gateway", "user", "content", "comment", "loadgen"] // new-service: list
}

// A profile for profile-guided binaries, relative to the context: CI's
// pgo:profile job writes pgo/merged.profdata (scripts/pgo.sh profile) and
// images:push sets PGO_PROFILE to it. Empty: the plain release build.
variable "PGO_PROFILE" {
  default = ""
}

target "_rust" {
  context    = "."
  dockerfile = "Dockerfile"
  args = {
    RUSTFLAGS = PGO_PROFILE == "" ? "" : "-Cprofile-use=/src/${PGO_PROFILE}"
  }
}

target "gateway" {
  inherits = ["_rust"]
  target   = "gateway"
  tags     = ["${REGISTRY}/newsroom-gateway:${TAG}"]
}

target "user" {
  inherits = ["_rust"]
  target   = "user"
  tags     = ["${REGISTRY}/newsroom-user:${TAG}"]
}

target "content" {
  inherits = ["_rust"]
  target   = "content"
  tags     = ["${REGISTRY}/newsroom-content:${TAG}"]
}

target "comment" {
  inherits = ["_rust"]
  target   = "comment"
  tags     = ["${REGISTRY}/newsroom-comment:${TAG}"]
}

// new-service: targets

// locust with the traffic mix, for k8s/overlays/dev-loadtest.
target "loadgen" {
  context = "loadtest"
  tags    = ["${REGISTRY}/newsroom-loadgen:${TAG}"]
}
