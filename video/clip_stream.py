"""A clip as MJPEG at its original timing: frame i goes out (capture_i - capture_0) after frame 0.

Unlike the live stream (:mod:`kva.video.mjpeg`), a clip sends every frame of its
range, paced by the frames' own capture times. Each part carries its frame's
``Content-Length``, ``X-Kva-Capture-Ns`` and ``X-Kva-Seq``, so a page reading the
stream with ``fetch`` knows the capture time of the frame it shows (the scrubber).
Chromium shows an ``<img>`` part only once the next part begins, so each JPEG is
sent together with the next part's head: the reader is one frame ahead, which
also means the next frame is read from Kafka while this one waits its turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from kva.frame import Frame
from kva.video.store import BOUNDARY

logger = logging.getLogger(__name__)

#: How often a waiting clip checks whether its client went away or the server stops.
IDLE_CHECK_SECONDS = 0.5
#: The multipart body's end.
END = f"--{BOUNDARY}--\r\n".encode()


def part_head(frame: Frame) -> bytes:
    """The boundary and headers before one frame's JPEG."""
    return (
        f"--{BOUNDARY}\r\nContent-Type: {frame.content_type}\r\n"
        f"Content-Length: {len(frame.data)}\r\n"
        f"X-Kva-Capture-Ns: {frame.capture_ns}\r\nX-Kva-Seq: {frame.sequence}\r\n\r\n"
    ).encode()


def clip_parts(
    frames: Iterator[Frame],
    stop: threading.Event,
    *,
    max_bytes: int,
    disconnected: Callable[[], bool] = lambda: False,
    on_sent: Callable[[Frame, int], None] = lambda _f, _n: None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The body of one clip's ``multipart/x-mixed-replace`` response, one chunk per frame.

    Ends after the last frame, after ``max_bytes`` of JPEG (the next frame would pass
    it), when ``stop`` is set or when the client is gone.
    """
    current = next(frames, None)
    if current is None:
        yield END
        return
    first_ns = current.capture_ns
    started = clock()
    sent_bytes = 0
    pending = part_head(current)
    while current is not None:
        sent_bytes += len(current.data)
        following = next(frames, None)
        if following is not None and sent_bytes + len(following.data) > max_bytes:
            logger.info(
                "a clip of %s ends at %d bytes (--max-clip-bytes)", current.stream_id, sent_bytes
            )
            following = None
        due = started + max(0, current.capture_ns - first_ns) / 1e9
        if not _wait_until(due, stop, disconnected, clock):
            return
        tail = END if following is None else part_head(following)
        chunk = b"".join((pending, current.data, b"\r\n", tail))
        yield chunk
        on_sent(current, len(chunk))
        pending = b""
        current = following


def _wait_until(
    due: float, stop: threading.Event, disconnected: Callable[[], bool], clock: Callable[[], float]
) -> bool:
    """Wait until ``due`` (the clock's time); False when stopped or the client left first."""
    while (delay := due - clock()) > 0:
        if stop.wait(min(delay, IDLE_CHECK_SECONDS)):
            return False
        if disconnected():
            return False
    return not stop.is_set()
