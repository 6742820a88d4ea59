"""Realistic test frames (scikit-image's photos with a label drawn) and a feeder of a store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import skimage.data

from kva.frame import Frame
from tests.support.frames import make_frame

PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "astronaut": skimage.data.astronaut,
}
LABELS = {"chelsea": "tabby cat", "coffee": "espresso", "astronaut": "face"}


def photo(name: str, width: int, height: int) -> np.ndarray:
    """The photo as BGR, resized to ``width`` x ``height``."""
    rgb = PHOTOS[name]()
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (width, height))


def annotate(image: np.ndarray, label: str, sequence: int) -> np.ndarray:
    """A label box like the consumer draws, and a marker that moves with the sequence."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.5, w / 900)
    thick = max(1, round(scale * 2))
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(out, (8, 8), (24 + tw, 24 + th + 8), (40, 40, 40), -1)
    cv2.putText(out, label, (16, 16 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (90, 230, 140), thick)
    x = int((sequence * 7) % max(1, w - 40))
    cv2.rectangle(out, (x, h - 14), (x + 40, h - 4), (60, 200, 255), -1)
    cv2.putText(
        out,
        f"#{sequence}",
        (w - 120, h - 20),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale * 0.7,
        (255, 255, 255),
        thick,
    )
    return out


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """``image`` (BGR) as JPEG bytes."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def live_photo(
    name: str, stream: str, width: int = 640, height: int = 360
) -> Callable[[int], Frame]:
    """render(sequence) -> a freshly annotated frame (the marker moves with the sequence)."""
    base = photo(name, width, height)

    def render(sequence: int) -> Frame:
        data = encode_jpeg(annotate(base, LABELS[name], sequence))
        return make_frame(stream, sequence, data, width, height)

    return render


def photo_frames(
    name: str, stream: str, count: int, width: int = 320, height: int = 240
) -> list[Frame]:
    """``count`` distinct annotated frames of one photo (sequence 0..count-1)."""
    base = photo(name, width, height)
    return [
        make_frame(stream, seq, encode_jpeg(annotate(base, LABELS[name], seq)), width, height)
        for seq in range(count)
    ]


@dataclass
class Feeder:
    """Puts frames into a store at ``fps`` on a thread, cycling through ``frames``."""

    put: Callable[[Frame], object]
    frames: list[Frame] | Callable[[int], Frame]  # a list to cycle, or render(sequence)
    fps: float
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Feeder:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = 1.0 / self.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            if callable(self.frames):
                frame = self.frames(self.sent)
            else:
                frame = self.frames[self.sent % len(self.frames)]
            self.put(frame.replace(sequence=self.sent, capture_ns=time.time_ns()))
            self.sent += 1
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
