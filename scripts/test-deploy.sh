#!/usr/bin/env bash
# `make test-deploy`: the deployment files run for real. Sets up what it needs,
# idempotently (Debian packages; Go builds cached under ~/.cache/kva; base images in
# Podman's storage), then runs tests/deploy/real/: docker compose up under Podman
# (tests/deploy/real/compose.py) and kubectl apply on a real kube-apiserver, controller
# manager, scheduler and kwok nodes (tests/deploy/real/cluster.py). Prints the time of
# each stage.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DEPLOY_APT_PACKAGES=(etcd-server openssl)
# shellcheck source=scripts/apt-packages.sh
. scripts/apt-packages.sh

stage_started=$(date +%s)
stage() { local now; now=$(date +%s); echo "==> [$1] $(( now - stage_started ))s"; stage_started=$now; }

apt_install_missing "${DEPLOY_APT_PACKAGES[@]}"
stage "apt packages"
./scripts/build-k8s-tools.sh
stage "kubernetes binaries (go build, cached)"
VENV=$VENV ./scripts/setup-containers.sh
stage "podman, docker compose and base images (cached)"
KVA_TEST_DEPLOY=1 "$VENV/bin/python" -m pytest -p no:cacheprovider --durations=0 tests/deploy/real "$@"
stage "compose and kubernetes for real"
