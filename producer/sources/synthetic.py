"""Generated sources: ``testsrc`` (a test pattern) and ``demo`` (a moving scene of real photos).

Both make a frame when asked, so they are read at exactly the requested rate
and never drop anything.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from kva.producer.sources.base import Captured, Image

DEFAULT_SIZE = (640, 480)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BARS = [  # BGR: white, yellow, cyan, green, magenta, red, blue
    (235, 235, 235),
    (16, 235, 235),
    (235, 235, 16),
    (16, 235, 16),
    (235, 16, 235),
    (16, 16, 235),
    (235, 16, 16),
]


def _clock(now_ns: int) -> str:
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) + f".{nanos // 1_000_000:03d}Z"


def _put_text(image: Image, text: str, origin: tuple[int, int], scale: float) -> None:
    thickness = max(1, round(scale * 2))
    cv2.putText(image, text, origin, _FONT, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


class TestPatternSource:
    """Colour bars, a grey ramp, a sweeping bar, and a burnt-in UTC clock and frame counter."""

    __test__ = False  # not a pytest class, despite the name
    live = False
    stale_frames = 0

    def __init__(self, width: int | None = None, height: int | None = None) -> None:
        self.width, self.height = width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1]
        self.name = f"testsrc {self.width}x{self.height}"
        self.count = 0
        self._background = self._make_background()

    def _make_background(self) -> Image:
        w, h = self.width, self.height
        image = np.empty((h, w, 3), np.uint8)
        bars_h = h * 2 // 3
        for index, colour in enumerate(_BARS):
            x0, x1 = index * w // len(_BARS), (index + 1) * w // len(_BARS)
            image[:bars_h, x0:x1] = colour
        ramp = np.linspace(0, 255, w, dtype=np.float32).astype(np.uint8)
        image[bars_h:] = ramp[None, :, None]
        return image

    def open(self) -> None:
        self.count = 0

    def read(self, timeout: float) -> Captured:
        now = time.time_ns()
        image = self._background.copy()
        w, h = self.width, self.height
        bar_w = max(4, w // 40)
        x = (self.count * max(1, w // 100)) % (w - bar_w)
        image[:, x : x + bar_w] = 255 - image[:, x : x + bar_w]
        scale = h / 480
        _put_text(image, _clock(now), (w // 20, h // 6), 1.4 * scale)
        _put_text(image, f"#{self.count:08d}", (w // 20, h // 6 + int(60 * scale)), 1.4 * scale)
        self.count += 1
        return Captured(image, now)

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class _Photo:
    name: str
    focus: tuple[float, float]  # where the subject is, as fractions of width and height
    zoom: float = 1.0  # how close the camera stays to the subject


#: scikit-image's bundled photos, framed so the default models recognise them (checked
#: with mobilenet_v2 and blazeface: Egyptian/tiger cat, espresso, a face, missile).
DEMO_PHOTOS = (
    _Photo("chelsea", (0.5, 0.45)),  # a tabby cat
    _Photo("coffee", (0.5, 0.4)),  # an espresso cup
    _Photo("astronaut", (0.45, 0.28)),  # a face
    _Photo("rocket", (0.5, 0.4), zoom=3.0),  # a rocket on the launch pad
)


class DemoSource:
    """Pans and zooms over real photos, switching photo every ``switch_seconds``."""

    live = False
    stale_frames = 0

    def __init__(
        self,
        width: int | None = None,
        height: int | None = None,
        switch_seconds: float = 4.0,
    ) -> None:
        self.width, self.height = width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1]
        self.name = f"demo {self.width}x{self.height}"
        self.switch_seconds = switch_seconds
        self._photos: list[tuple[Image, _Photo]] = []
        self._start = time.monotonic()

    def open(self) -> None:
        from skimage import data  # only the demo needs scikit-image

        if not self._photos:
            for photo in DEMO_PHOTOS:
                rgb = getattr(data, photo.name)()
                self._photos.append((np.ascontiguousarray(rgb[:, :, ::-1]), photo))
        self._start = time.monotonic()

    def photo_index(self, elapsed: float) -> int:
        """Which photo is shown ``elapsed`` seconds after open."""
        return int(elapsed // self.switch_seconds) % len(DEMO_PHOTOS)

    def read(self, timeout: float) -> Captured:
        now = time.time_ns()
        elapsed = time.monotonic() - self._start
        image, photo = self._photos[self.photo_index(elapsed)]
        phase = (elapsed % self.switch_seconds) / self.switch_seconds
        view = self.view(image, photo, phase)
        _put_text(view, "kva demo " + _clock(now), (8, self.height - 10), self.height / 960)
        return Captured(view, now)

    def view(self, image: Image, photo: _Photo, phase: float) -> Image:
        """The camera's view of ``image`` at ``phase`` (0..1) of its time on screen."""
        ph, pw = image.shape[:2]
        aspect = self.width / self.height
        base_w, base_h = (pw, pw / aspect) if pw / ph < aspect else (ph * aspect, ph)
        zoom = photo.zoom * (1.0 + 0.3 * math.sin(math.pi * phase))  # in, then out again
        crop_w, crop_h = base_w / zoom, base_h / zoom
        cx = photo.focus[0] * pw + 0.08 * crop_w * math.sin(2 * math.pi * phase)
        cy = photo.focus[1] * ph + 0.04 * crop_h * math.cos(2 * math.pi * phase)
        x0 = min(max(cx - crop_w / 2, 0.0), pw - crop_w)
        y0 = min(max(cy - crop_h / 2, 0.0), ph - crop_h)
        # An affine warp does crop and scale in one pass, with sub-pixel smooth motion.
        sx, sy = self.width / crop_w, self.height / crop_h
        matrix = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]], dtype=np.float64)
        return cv2.warpAffine(
            image,
            matrix,
            (self.width, self.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def close(self) -> None:
        """Nothing to release (the photos stay cached for a reopen)."""
