"""Headless Chromium (Debian's /usr/bin/chromium, flags that work as root): screenshots, the
DOM after a page has loaded, and :class:`DevToolsPage` for reading a page that stays open."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

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


class DevToolsPage:
    """One headless Chromium page driven over the DevTools protocol, on a pipe.

    ``--remote-debugging-pipe`` makes Chromium read protocol commands from its
    file descriptor 3 and write replies to 4 (JSON, each message ended by a NUL
    byte), so a test can read the live DOM of a page that stays open (no reload,
    no port, no extra package)::

        with DevToolsPage(url) as page:
            page.evaluate("document.title")
    """

    def __init__(self, url: str, width: int = 1280, height: int = 800, timeout: float = 30) -> None:
        self.url = url
        self._size = (width, height)
        self._timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self._session: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> DevToolsPage:
        self._profile = tempfile.TemporaryDirectory(prefix="kva-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        width, height = self._size
        args = [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={self._profile.name}",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # bash puts the pipe ends on the descriptors Chromium expects (3 in, 4 out); dash
        # cannot (it refuses descriptors above 9)
        command = f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self._proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell input from outside
            ["/bin/bash", "-c", command, "chromium", *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]
        self._call("Page.enable")
        self._call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self._call("Page.navigate", {"url": self.url})
        return self

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript ``expression`` in the page (JSON-able values)."""
        reply = self._call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression[:80]!r} raised: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, out: Path) -> np.ndarray:
        """The page as it is now, saved as PNG to ``out`` and returned as BGR."""
        data = base64.b64decode(self._call("Page.captureScreenshot", {"format": "png"})["data"])
        out.write_bytes(data)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise RuntimeError("chromium sent a screenshot that is not a PNG")
        return image

    def _call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self._timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") != self._next_id:
                continue  # an event, or the reply to another session's command
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError(f"chromium did not answer within {self._timeout:g} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe (it exited)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def __exit__(self, *_exc: object) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                self._session = None
                self._call("Browser.close")
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        for fd in (getattr(self, "_to_browser", None), getattr(self, "_from_browser", None)):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._profile is not None:
            self._profile.cleanup()


def click_across(selector: str, fraction: float) -> str:
    """JavaScript clicking the element ``selector`` at ``fraction`` of its width, halfway down
    (where a person's click on a bar such as the viewer's timeline would land)."""
    return f"""(() => {{
  const target = document.querySelector({json.dumps(selector)});
  const box = target.getBoundingClientRect();
  target.dispatchEvent(new MouseEvent('click', {{bubbles: true,
    clientX: box.left + box.width * {float(fraction)!r}, clientY: box.top + box.height / 2}}));
  return true;
}})()"""
