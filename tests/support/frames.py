"""Test frames: a synthetic JPEG with a bit of structure, a frame captured now."""

from __future__ import annotations

import time

import cv2
import numpy as np

from kva.frame import Frame


def jpeg(width: int = 640, height: int = 360, grey: int = 100, text: str = "") -> bytes:
    """A real JPEG of a flat image with a bit of structure."""
    image = np.full((height, width, 3), grey, np.uint8)
    cv2.circle(image, (width // 2, height // 2), height // 4, (grey // 2, 200, 255 - grey), -1)
    if text:
        cv2.putText(image, text, (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 0, 0), 2)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def make_frame(
    stream: str,
    seq: int,
    data: bytes,
    width: int = 640,
    height: int = 360,
    attributes: dict[str, str] | None = None,
) -> Frame:
    """A frame of ``data`` captured now."""
    return Frame(stream, seq, time.time_ns(), width, height, data, attributes=attributes or {})
