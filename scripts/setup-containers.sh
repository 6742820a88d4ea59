#!/usr/bin/env bash
# Sets up what `make test-deploy` needs to run the compose files for real on a machine
# with no Docker engine and no registry but Debian's, PyPI and the Go module proxy:
# Podman (runc, cgroupfs; settings in tests/deploy/real/containers.conf through
# CONTAINERS_CONF, nothing system-wide), Docker Compose v2 built from its Go module into
# ~/.cache/kva/bin, and the base images the compose files name, built locally into
# Podman's storage: debian:bookworm (debootstrap), stand-ins for python:3.11-slim,
# apache/kafka, prom/prometheus and zookeeper (Dockerfiles in tests/deploy/real/images/).
#
# Idempotent: whatever exists is kept (FORCE=1 rebuilds the images). Prints the time of
# each stage; exits non-zero with a message naming the stage that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CACHE=${KVA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kva}
BIN=$CACHE/bin
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
COMPOSE_VERSION=v2.40.3
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGES=$ROOT/tests/deploy/real/images
VENV=${VENV:-.venv}
FORCE=${FORCE:-0}
# Built into $BIN by this script (tests/deploy/test_tools_installed.py reads both lists).
CACHE_BIN_TOOLS=(docker-compose)
CONTAINERS_APT_PACKAGES=(podman runc uidmap slirp4netns fuse-overlayfs
  containernetworking-plugins golang-github-containernetworking-plugin-dnsname debootstrap)
export CONTAINERS_CONF=$ROOT/tests/deploy/real/containers.conf

STAGE=""
STAGE_STARTED=0
trap 'echo "setup-containers: FAILED in stage \"$STAGE\" (exit $?)" >&2' ERR

stage() {
  STAGE=$1
  STAGE_STARTED=$SECONDS
  echo "==> $STAGE"
}

stage_done() {
  echo "    $STAGE: $((SECONDS - STAGE_STARTED)) s${1:+ ($1)}"
}

# A stand-in is rebuilt when its folder under tests/deploy/real/images changed: the
# image carries the digest of that folder as a label.
digest() {  # digest "DIR [DIR...]": of the stand-in's folder and those of its base images
  (cd "$IMAGES" && find $1 -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
}

image_exists() {  # image_exists TAG ["DIRS"]
  [ "$FORCE" != 1 ] && podman image exists "$1" || return 1
  [ -z "${2:-}" ] && return 0
  [ "$(podman image inspect --format '{{index .Labels "io.github.kva.standin"}}' "$1")" = "$(digest "$2")" ]
}

# --- host packages ------------------------------------------------------------------
stage "host packages"
# shellcheck source=scripts/apt-packages.sh
. "$ROOT/scripts/apt-packages.sh"
apt_install_missing "${CONTAINERS_APT_PACKAGES[@]}"
if ((${#APT_INSTALLED[@]})); then
  stage_done "installed ${APT_INSTALLED[*]}"
else
  stage_done "already installed"
fi
podman info >/dev/null

# --- localhost/debian:bookworm ------------------------------------------------------
stage "image localhost/debian:bookworm (debootstrap)"
if image_exists localhost/debian:bookworm; then
  stage_done "cached"
else
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >/dev/null
  # As in Debian's official images: no service starts inside a build, no apt caches.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import -q --change 'CMD ["bash"]' - localhost/debian:bookworm >/dev/null
  rm -rf "$rootfs"
  stage_done "imported"
fi

build() {  # build TAG "DIRS" [context files...]: a stand-in from images/<last of DIRS>
  local tag=$1 dirs=$2 dir=${2##* }
  shift 2
  local context
  context=$(mktemp -d)
  cp -r "$IMAGES/$dir/." "$context/"
  for extra in "$@"; do cp -r "$extra" "$context/"; done
  # Docker format keeps HEALTHCHECK (OCI drops it); --pull=never: no registry here.
  podman build --format docker --pull=never --layers --label "io.github.kva.standin=$(digest "$dirs")" \
    -t "$tag" "$context" >"$context.log" 2>&1 \
    || { tail -40 "$context.log" >&2; rm -rf "$context" "$context.log"; false; }
  rm -rf "$context" "$context.log"
}

# --- python:3.11-slim stand-in ------------------------------------------------------
stage "image docker.io/library/python:3.11-slim (stand-in)"
if image_exists docker.io/library/python:3.11-slim python; then
  stage_done "cached"
else
  pipdir=$(mktemp -d)
  cp /etc/ssl/certs/ca-certificates.crt "$pipdir/"
  # The machine's pip index settings (pip config and PIP_* variables), its CA bundle
  # standing in for whatever certificate they named.
  {
    echo "[global]"
    echo "cert = /etc/ssl/certs/ca-certificates.crt"
    if [ -x "$VENV/bin/python" ]; then
      "$VENV/bin/python" -m pip config list 2>/dev/null \
        | sed -n "s/^[a-z:]*\.\(index-url\|extra-index-url\|trusted-host\|timeout\|default-timeout\|retries\)='\(.*\)'$/\1 = \2/p"
    fi
    env | sed -n 's/^PIP_\(INDEX_URL\|EXTRA_INDEX_URL\|TRUSTED_HOST\|DEFAULT_TIMEOUT\|TIMEOUT\|RETRIES\)=\(.*\)$/\1 = \2/p' \
      | tr 'A-Z_' 'a-z-'
  } | awk '!seen[$1]++' >"$pipdir/pip.conf"
  build docker.io/library/python:3.11-slim python "$pipdir/ca-certificates.crt" "$pipdir/pip.conf"
  rm -rf "$pipdir"
  stage_done "built"
fi

# --- apache/kafka and zookeeper stand-ins (the jars kva already resolves) ---------
stage "image docker.io/apache/kafka:3.9.1 (stand-in)"
if image_exists docker.io/apache/kafka:3.9.1 kafka; then
  stage_done "cached"
else
  [ -x "$VENV/bin/python" ] || { echo "setup-containers: run scripts/setup.sh first (no $VENV)" >&2; false; }
  jars=$("$VENV/bin/python" -c "from kva.zookeeper.jars import jar_dir; print(jar_dir())")
  libs=$(mktemp -d)/libs
  mkdir -p "$libs" && cp "$jars"/*.jar "$libs/"
  build docker.io/apache/kafka:3.9.1 kafka "$libs"
  rm -rf "$(dirname "$libs")"
  stage_done "built"
fi

stage "image docker.io/library/zookeeper:3.8.4 (stand-in)"
if image_exists docker.io/library/zookeeper:3.8.4 "kafka zookeeper"; then
  stage_done "cached"
else
  build docker.io/library/zookeeper:3.8.4 "kafka zookeeper"
  stage_done "built"
fi

# --- prom/prometheus stand-in (Debian's prometheus) ---------------------------------
stage "image docker.io/prom/prometheus:v3.7.3 (stand-in)"
if image_exists docker.io/prom/prometheus:v3.7.3 prometheus; then
  stage_done "cached"
else
  build docker.io/prom/prometheus:v3.7.3 prometheus
  stage_done "built"
fi

# --- Docker Compose v2 --------------------------------------------------------------
stage "docker-compose $COMPOSE_VERSION"
if [ -x "$BIN/docker-compose" ] && "$BIN/docker-compose" version 2>/dev/null | grep -q "$COMPOSE_VERSION"; then
  stage_done "cached in $BIN"
else
  [ -x "$GO" ] || { echo "setup-containers: Go not found (set GO=...)" >&2; false; }
  # Two Go builds at once on 2 cores take longer than one after the other.
  while pgrep -f build-k8s-tools >/dev/null; do
    echo "    waiting for build-k8s-tools to finish (polling once a minute)"
    sleep 60
  done
  module=$("$GO" mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$module" ] || { echo "setup-containers: could not download the compose module" >&2; false; }
  # `go install` refuses the module (its go.mod has exclude directives): build in a copy.
  work=$(mktemp -d)
  cp -r "$module/." "$work/" && chmod -R u+w "$work"
  mkdir -p "$BIN"
  (cd "$work" && CGO_ENABLED=0 "$GO" build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
    -o "$BIN/docker-compose.partial" ./cmd)
  mv "$BIN/docker-compose.partial" "$BIN/docker-compose"
  rm -rf "$work"
  stage_done "built into $BIN"
fi

STAGE="done"
echo "==> containers set up in $SECONDS s (docker-compose: $BIN/docker-compose)"
