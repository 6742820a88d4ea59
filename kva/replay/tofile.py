"""The file output: an MP4/AVI video via OpenCV, with the frames' original timing.

The frame rate is ``--fps`` or, by default, the stream's own (estimated from the
first :data:`~kva.replay.timeline.ESTIMATE_FRAMES` capture times, which are held
back until then: a bounded buffer). Frames are placed on the file's clock by
:class:`~kva.replay.timeline.SlotClock`. Each JPEG passes :func:`kva.images.check_image`
before it is decoded; one that does not decode is skipped and counted. A frame of
another size than the first is resized to it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kva.frame import Frame
from kva.images import ImageError, check_image
from kva.kafka import Record
from kva.replay.config import FILE_CODECS
from kva.replay.errors import FrameSkipped, ReplayError
from kva.replay.timeline import ESTIMATE_FRAMES, SlotClock, estimate_fps

logger = logging.getLogger(__name__)


class VideoFileOutput:
    """Writes frames to ``path`` (``.mp4``: mp4v, ``.avi``: MJPG)."""

    def __init__(self, path: Path, fps: float | None, max_gap_s: float) -> None:
        self.path = path
        self.name = str(path)
        self._fps = fps
        self._max_gap_ns = int(max_gap_s * 1e9)
        self._held: list[tuple[int, Any]] = []  # (capture_ns, image) until the rate is known
        self._clock: SlotClock | None = None
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self._pending: Any = None
        self.written = 0
        self.resized = 0

    def write(self, frame: Frame, record: Record) -> None:
        image = _decode(frame)
        if self._clock is None:
            self._held.append((frame.capture_ns, image))
            if self._fps is not None or len(self._held) >= ESTIMATE_FRAMES:
                self._start()
            return
        self._place(self._clock, frame.capture_ns, image)

    def _start(self) -> None:
        """Open the file at the rate now known, and place the frames held until then."""
        fps = self._fps or estimate_fps([t for t, _ in self._held])
        self._clock = clock = SlotClock(fps, self._max_gap_ns)
        height, width = self._held[0][1].shape[:2]
        self._size = (width, height)
        fourcc = cv2.VideoWriter.fourcc(*FILE_CODECS[self.path.suffix.lower()])
        self._writer = cv2.VideoWriter(str(self.path), fourcc, fps, self._size)
        if not self._writer.isOpened():
            raise ReplayError(f"cannot write {self.path}: OpenCV has no {self.path.suffix} encoder")
        logger.info("writing %s: %dx%d at %g fps", self.path, width, height, fps)
        held, self._held = self._held, []
        for capture_ns, image in held:
            self._place(clock, capture_ns, image)

    def _place(self, clock: SlotClock, capture_ns: int, image: Any) -> None:
        self._emit(clock.add(capture_ns))
        self._pending = self._fit(image)

    def _fit(self, image: Any) -> Any:
        if self._size is not None and (image.shape[1], image.shape[0]) != self._size:
            self.resized += 1
            return cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        return image

    def _emit(self, copies: int) -> None:
        for _ in range(copies):
            self._writer.write(self._pending)
            self.written += 1

    def close(self) -> str:
        if self._clock is None and self._held:
            self._start()
        if self._clock is not None:
            self._emit(self._clock.finish())
            self._pending = None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        clock = self._clock
        if clock is None:
            return f"{self.path}: no frame, no file"
        return (
            f"{self.path}: {self.written} frames at {clock.fps:g} fps "
            f"({clock.repeated} repeated, {clock.dropped} dropped to keep real time, "
            f"{clock.gaps_cut} gaps over the --max-gap cut, {self.resized} resized)"
        )


def _decode(frame: Frame) -> Any:
    """The frame's image (BGR); FrameSkipped when it is not a safe, decodable image."""
    try:
        check_image(frame.data)
    except ImageError as exc:
        raise FrameSkipped("bad_image", f"frame {frame.sequence}: {exc}") from None
    image = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameSkipped("bad_image", f"frame {frame.sequence} does not decode")
    return image
