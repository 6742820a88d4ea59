"""Video sources behind one small interface (:class:`Source`), chosen by one string.

=================  ===============================================
``webcam:N``       local capture device N (V4L2)
``rtsp://…``       RTSP camera (FFmpeg, over TCP)
``http(s)://…``    MJPEG IP camera, or HLS (FFmpeg)
``testsrc``        generated test pattern with clock and counter
``demo``           pan and zoom over scikit-image's photos
anything else      a video file path
=================  ===============================================
"""

from __future__ import annotations

import re

from kva.producer.size import target_size
from kva.producer.sources.base import Captured, Image, Source, SourceEnded, SourceError
from kva.producer.sources.opencv import FileSource, LiveCaptureSource, redact_url
from kva.producer.sources.synthetic import DEFAULT_SIZE, DemoSource, TestPatternSource

__all__ = [
    "Captured",
    "DemoSource",
    "FileSource",
    "Image",
    "LiveCaptureSource",
    "Source",
    "SourceEnded",
    "SourceError",
    "TestPatternSource",
    "make_source",
    "redact_url",
    "source_kind",
]

_WEBCAM = re.compile(r"^webcam:(\d{1,3})$")


def source_kind(spec: str) -> str:
    """``webcam``, ``rtsp``, ``http``, ``testsrc``, ``demo`` or ``file``."""
    lowered = spec.lower()
    if _WEBCAM.match(lowered):
        return "webcam"
    if lowered in ("testsrc", "demo"):
        return lowered
    if lowered.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if lowered.startswith(("http://", "https://")):
        return "http"
    return "file"


def make_source(
    spec: str,
    *,
    width: int | None = None,
    height: int | None = None,
    loop: bool = False,
    open_timeout: float = 5.0,
    read_timeout: float = 5.0,
) -> Source:
    """Build the source a ``--source`` string names (not opened yet)."""
    kind = source_kind(spec)
    if kind in ("testsrc", "demo"):
        size = target_size(*DEFAULT_SIZE, width, height)
        return TestPatternSource(*size) if kind == "testsrc" else DemoSource(*size)
    if kind == "webcam":
        match = _WEBCAM.match(spec.lower())
        assert match is not None  # noqa: S101 - source_kind checked it
        return LiveCaptureSource(
            int(match.group(1)), open_timeout=open_timeout, read_timeout=read_timeout
        )
    if kind in ("rtsp", "http"):
        return LiveCaptureSource(spec, open_timeout=open_timeout, read_timeout=read_timeout)
    return FileSource(spec, loop=loop)
