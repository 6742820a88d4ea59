"""Headless Chromium screenshots (Debian's /usr/bin/chromium, flags that work as root)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def screenshot(
    url: str, out: Path, width: int = 1280, height: int = 800, wait_ms: int = 3000
) -> np.ndarray:
    """Load ``url`` for ``wait_ms`` (MJPEG pages never finish loading) and return the PNG as BGR."""
    with tempfile.TemporaryDirectory(prefix="kva-chromium-") as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--timeout={wait_ms}",
                f"--screenshot={out}",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    image = cv2.imread(str(out), cv2.IMREAD_COLOR)
    if result.returncode != 0 or image is None:
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
    return image


def find_photo(screen: np.ndarray, photo: np.ndarray) -> tuple[float, tuple[int, int, int, int]]:
    """Best match of ``photo`` (any scale 20-100 %) in ``screen``: (score, (x, y, w, h))."""
    best = (-1.0, (0, 0, 0, 0))
    half = 0.5  # match at half resolution: fast, and precise enough to locate the image
    gray_screen = cv2.resize(cv2.cvtColor(screen, cv2.COLOR_BGR2GRAY), None, fx=half, fy=half)
    gray_photo = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    for scale in np.linspace(0.2, 1.0, 33):
        w, h = int(photo.shape[1] * scale * half), int(photo.shape[0] * scale * half)
        if w >= gray_screen.shape[1] or h >= gray_screen.shape[0] or w < 16:
            continue
        template = cv2.resize(gray_photo, (w, h), interpolation=cv2.INTER_AREA)
        scores = cv2.matchTemplate(gray_screen, template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (x, y) = cv2.minMaxLoc(scores)
        if score > best[0]:
            best = (float(score), (int(x / half), int(y / half), int(w / half), int(h / half)))
    return best


def dump_dom(url: str, wait_ms: int = 3000) -> str:
    """The page's DOM after its script has run (Chromium's ``--dump-dom``)."""
    with tempfile.TemporaryDirectory(prefix="kva-chromium-") as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--timeout={wait_ms}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    return result.stdout
