"""Real cameras for the producer: HTTP MJPEG (in this process) and RTSP (GStreamer's server).

:class:`MjpegCamera` serves ``multipart/x-mixed-replace`` JPEGs at a fixed
rate; :class:`RtspCamera` runs ``rtsp_server.py`` with Debian's
``/usr/bin/python3`` (where the GStreamer bindings are). Both can be stopped
and started again on the same port, as a camera that drops out would.
"""

from __future__ import annotations

import select
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

BOUNDARY = "kvaframe"


def _jpeg(count: int, width: int, height: int) -> bytes:
    image = np.full((height, width, 3), (40, 90, 160), np.uint8)
    x = (count * 8) % (width - 20)
    image[:, x : x + 20] = 255
    cv2.putText(
        image, f"{count:06d}", (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2
    )
    ok, buffer = cv2.imencode(".jpg", image)
    assert ok
    return buffer.tobytes()


class MjpegCamera:
    """Serves ``/cam`` on 127.0.0.1:``port`` (0 = any); :meth:`stop` drops every client."""

    def __init__(self, port: int = 0, fps: float = 15, width: int = 480, height: int = 270) -> None:
        self.stopped = threading.Event()
        #: While set, connections stay open but no frame is sent (a frozen camera).
        self.paused = threading.Event()
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/cam":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                camera.stream(self.wfile, fps, width, height)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/cam"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stream(self, out, fps: float, width: int, height: int) -> None:  # noqa: ANN001
        count = 0
        next_at = time.monotonic()
        while not self.stopped.is_set():
            if self.paused.is_set():
                self.stopped.wait(0.05)
                next_at = time.monotonic()
                continue
            data = _jpeg(count, width, height)
            try:
                out.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                    + b"\r\n"
                )
                out.flush()
            except OSError:
                return
            count += 1
            next_at += 1 / fps
            self.stopped.wait(max(0.0, next_at - time.monotonic()))  # the camera's frame clock

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")


def gst_rtsp_missing() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None when it can."""
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot run: {exc}"
    if done.returncode != 0:
        return (
            "GStreamer RTSP server bindings (python3-gi, gir1.2-gst-rtsp-server-1.0) are not "
            f"installed for {SYSTEM_PYTHON}: {done.stderr.strip().splitlines()[-1:]}"
        )
    return None


class RtspCamera:
    """GStreamer's RTSP server as a subprocess on ``port``; stop and start it again at will."""

    def __init__(self, port: int, fps: int = 15, width: int = 640, height: int = 360) -> None:
        self.port, self.fps, self.width, self.height = port, fps, width, height
        self.url = f"rtsp://127.0.0.1:{port}/cam"
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20) -> RtspCamera:
        """Start the server; returns once it printed ``READY`` (AssertionError otherwise)."""
        self.process = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(RTSP_SERVER),
                str(self.port),
                str(self.fps),
                str(self.width),
                str(self.height),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.strip() == "READY":
                    return self
                assert line, f"RTSP server exited: {self.process.poll()}"
        raise AssertionError("RTSP server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
