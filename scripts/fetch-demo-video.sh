#!/usr/bin/env bash
# Puts kva up's demo video into kva's cache, once: vtest.avi (768x576, 10 fps, 795 frames of
# people walking in a square), from Debian's opencv-doc package (OpenCV's sample data, BSD).
# It downloads the package (about 95 MB) with `apt-get download` (no install, no root needed
# once the package lists are there), extracts the one file and checks its sha256.
#
#   scripts/fetch-demo-video.sh        prints the video's path; does nothing when it is there
#
# The path is the one kva.paths.demo_video() names: $KVA_CACHE_DIR/demo/vtest.avi, else
# $XDG_CACHE_HOME/kva/demo/vtest.avi, else ~/.cache/kva/demo/vtest.avi.
set -euo pipefail

CACHE=${KVA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kva}
TARGET=$CACHE/demo/vtest.avi
SHA256=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
MEMBER=./usr/share/doc/opencv-doc/examples/data/vtest.avi

if [ -f "$TARGET" ] && echo "$SHA256  $TARGET" | sha256sum --check --status; then
  echo "$TARGET"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Started as root, apt-get downloads as its _apt user, who must be able to write here.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
if ! apt-cache show opencv-doc >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "==> apt-get update (to find opencv-doc)" >&2
  $sudo apt-get update -qq
fi
echo "==> apt-get download opencv-doc (about 95 MB) for the demo video" >&2
(cd "$work" && apt-get download -qq opencv-doc)
dpkg-deb --fsys-tarfile "$work"/opencv-doc_*.deb | tar -x -C "$work" "$MEMBER"
if ! echo "$SHA256  $work/$MEMBER" | sha256sum --check --status; then
  echo "error: $MEMBER in $(basename "$work"/opencv-doc_*.deb) has sha256" \
    "$(sha256sum "$work/$MEMBER" | cut -d' ' -f1), expected $SHA256" >&2
  exit 1
fi
mkdir -p "$(dirname "$TARGET")"
mv "$work/$MEMBER" "$TARGET.partial"
mv "$TARGET.partial" "$TARGET"
echo "$TARGET"
