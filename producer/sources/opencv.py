"""Sources read through OpenCV's ``VideoCapture``: video files, network cameras, webcams.

Live sources (RTSP, HTTP MJPEG/HLS, webcams) are drained by a capture thread
that owns the ``VideoCapture`` (so it is never released while another thread
reads it) and keeps only the newest frame. Files are read on demand, one
frame per call, and loop or end.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import cv2

from kva.producer.sources.base import Captured, Image, SourceEnded, SourceError
from kva.producer.sources.latest import LatestSlot
from kva.redact import redact_url

logger = logging.getLogger(__name__)

#: FFmpeg options unless the user sets the variable: RTSP over TCP (survives lossy links and
#: NAT, notices a dead server at once) and a 0.5 s stream probe (opens in ~0.3 s, not ~1.5 s).
_FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_DEFAULT_FFMPEG_OPTIONS = "rtsp_transport;tcp|analyzeduration;500000"
#: How long ``close`` waits for a capture thread blocked in a read before leaving it behind.
_CLOSE_WAIT = 1.0


def _timeouts(open_timeout: float, read_timeout: float) -> list[int]:
    return [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(open_timeout * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(read_timeout * 1000),
    ]


def _probe_tcp(url: str, timeout: float) -> None:
    """Fail fast with a precise reason when the camera's host:port does not answer."""
    parts = urlsplit(url)
    default_port = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}.get(parts.scheme, 0)
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError as exc:
        raise SourceError(f"{redact_url(url)}: bad URL: {exc}", permanent=True) from None
    if not host or not port:
        raise SourceError(f"{redact_url(url)}: URL has no host", permanent=True)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as exc:
        raise SourceError(f"cannot reach {redact_url(url)}: host not found ({exc})") from None
    except TimeoutError:
        raise SourceError(
            f"cannot reach {redact_url(url)}: no answer from {host}:{port} within {timeout:g}s"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SourceError(f"cannot reach {redact_url(url)}: {reason} ({host}:{port})") from None


class _Pacer:
    """Releases frames at their presentation times, for sources that deliver in bursts.

    FFmpeg's HLS reader decodes a whole segment (seconds of video) at once;
    without pacing, "newest wins" would keep one frame per segment.
    """

    #: A timestamp jump larger than this (or backwards) re-anchors the clock.
    MAX_JUMP_MS = 5000.0

    def __init__(self) -> None:
        self._anchor: tuple[float, float] | None = None  # (monotonic s, pts ms)
        self._last_pts = 0.0

    def wait(self, pts_ms: float, stop: threading.Event) -> None:
        jump = pts_ms - self._last_pts
        self._last_pts = pts_ms
        if self._anchor is None or not 0 <= jump <= self.MAX_JUMP_MS:
            self._anchor = (time.monotonic(), pts_ms)
            return
        due = self._anchor[0] + (pts_ms - self._anchor[1]) / 1000
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(min(delay, self.MAX_JUMP_MS / 1000))
        elif delay < -self.MAX_JUMP_MS / 1000:  # far behind (a stall): start over from now
            self._anchor = (time.monotonic(), pts_ms)


def is_hls(url: str) -> bool:
    """True for HLS playlists (``.m3u8`` / ``.m3u``)."""
    return urlsplit(url).path.lower().endswith((".m3u8", ".m3u"))


class LiveCaptureSource:
    """An RTSP / HTTP(S) camera or a local webcam, drained by its own capture thread.

    HLS playlists are paced to their timestamps in the capture thread, so a
    live HLS stream (or a recorded one) plays at its own speed.
    """

    live = True

    def __init__(
        self,
        target: str | int,
        *,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
    ) -> None:
        self._target = target
        self._paced = isinstance(target, str) and is_hls(target)
        self.name = f"webcam:{target}" if isinstance(target, int) else redact_url(target)
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._slot: LatestSlot[Captured] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stale_frames(self) -> int:
        return self._slot.dropped

    def open(self) -> None:
        capture = self._open_capture()
        if not capture.isOpened():
            capture.release()
            raise SourceError(self._open_failure())
        self._thread = threading.Thread(
            target=self._drain, args=(capture,), name=f"capture-{self.name}", daemon=True
        )
        self._thread.start()

    def _open_capture(self) -> cv2.VideoCapture:
        params = _timeouts(self._open_timeout, self._read_timeout)
        if isinstance(self._target, int):
            return cv2.VideoCapture(self._target, cv2.CAP_V4L2, params)
        _probe_tcp(self._target, self._open_timeout)
        os.environ.setdefault(_FFMPEG_OPTIONS_ENV, _DEFAULT_FFMPEG_OPTIONS)
        return cv2.VideoCapture(self._target, cv2.CAP_FFMPEG, params)

    def _open_failure(self) -> str:
        if isinstance(self._target, int):
            return (
                f"cannot open webcam:{self._target} (/dev/video{self._target} missing, "
                "busy, or not a capture device)"
            )
        return (
            f"cannot open {self.name}: the server answers but no video stream could be "
            f"opened within {self._open_timeout:g}s (wrong path, or not RTSP/MJPEG/HLS?)"
        )

    def _drain(self, capture: cv2.VideoCapture) -> None:
        pacer = _Pacer() if self._paced else None
        try:
            while not self._stop.is_set():
                ok, image = capture.read()
                if not ok or image is None:
                    self._slot.fail(
                        SourceError(f"{self.name}: stream stopped (no frame could be read)")
                    )
                    return
                if pacer is not None:
                    pacer.wait(capture.get(cv2.CAP_PROP_POS_MSEC), self._stop)
                self._slot.put(Captured(image, time.time_ns()))
        except cv2.error as exc:  # a decoder error must not kill the thread silently
            self._slot.fail(SourceError(f"{self.name}: OpenCV error: {exc}"))
        finally:
            capture.release()

    def read(self, timeout: float) -> Captured | None:
        return self._slot.take(timeout)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(_CLOSE_WAIT)
            if thread.is_alive():  # blocked in a read: it releases the camera when that returns
                logger.debug("%s: capture thread still blocked in a read", self.name)


class FileSource:
    """A video file (anything FFmpeg reads), one frame per ``read``; loops or ends."""

    live = False
    stale_frames = 0

    def __init__(self, path: str, *, loop: bool = False) -> None:
        self.name = path
        self._path = Path(path)
        self._loop = loop
        self._capture: cv2.VideoCapture | None = None
        self._first: Image | None = None

    def open(self) -> None:
        if not self._path.exists():
            raise SourceError(f"video file not found: {self._path}", permanent=True)
        if self._path.is_dir():
            raise SourceError(f"{self._path} is a directory, not a video file", permanent=True)
        if not os.access(self._path, os.R_OK):
            raise SourceError(f"video file {self._path} is not readable", permanent=True)
        capture = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
        ok, image = capture.read() if capture.isOpened() else (False, None)
        if not ok or image is None:
            capture.release()
            raise SourceError(
                f"cannot decode {self._path}: not a video file FFmpeg can read "
                "(garbage, truncated or empty?)",
                permanent=True,
            )
        self._capture, self._first = capture, image

    def read(self, timeout: float) -> Captured | None:
        if self._capture is None:
            raise SourceError(f"{self.name}: read before open")
        if self._first is not None:
            image, self._first = self._first, None
            return Captured(image, time.time_ns())
        ok, image = self._capture.read()
        if not ok and self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read()
            if not ok:  # some containers cannot seek: reopen
                self.close()
                self.open()
                return self.read(timeout)
        if not ok or image is None:
            raise SourceEnded(f"{self.name}: end of file")
        return Captured(image, time.time_ns())

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
