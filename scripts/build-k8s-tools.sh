#!/usr/bin/env bash
# Builds what the real-Kubernetes deploy test runs, idempotently, into ~/.cache/kva/bin:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the k8s.io/kubernetes
# Go module (in a wrapper module whose replaces point its ./staging paths at the
# published k8s.io/* modules), and kwok (go install). etcd comes from Debian (setup).
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.34.2}
KWOK_VERSION=${KWOK_VERSION:-v0.7.0}
GO=${GO:-/usr/local/go/bin/go}
CACHE=${KVA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kva}
BIN="$CACHE/bin"
mkdir -p "$BIN"

# Built into $BIN (tests/deploy/test_tools_installed.py reads this list).
K8S_CACHE_BIN_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
missing=()
for cmd in "${COMMANDS[@]}"; do [ -x "$BIN/$cmd" ] || missing+=("$cmd"); done
if ((${#missing[@]})); then
  work="$CACHE/k8s-wrapper-$K8S_VERSION"
  mkdir -p "$work"
  cd "$work"
  gomod=$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  staging_version="v0${K8S_VERSION#v1}"
  {
    echo "module kvawrapper"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # k8s.io/kubernetes replaces k8s.io/api etc. with ./staging/...: point them at the releases.
    grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod
  echo "==> building ${missing[*]} $K8S_VERSION (several minutes)"
  for cmd in "${missing[@]}"; do
    "$GO" get "k8s.io/kubernetes/cmd/$cmd@$K8S_VERSION"
  done
  for cmd in "${missing[@]}"; do
    CGO_ENABLED=0 "$GO" build -trimpath -ldflags=-s -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
fi

if [ ! -x "$BIN/kwok" ]; then
  echo "==> go install kwok $KWOK_VERSION"
  GOBIN="$BIN" CGO_ENABLED=0 "$GO" install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi
echo "==> k8s tools in $BIN"
