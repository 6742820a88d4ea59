"""One MJPEG client: the newest frame whenever the client is ready, paced to a maximum fps.

Each client only remembers the version it sent last. When it comes back for
more it gets the newest frame, so a slow client skips frames, and neither the
reader nor any other client ever waits for it. Every JPEG is followed at once
by the next part's boundary and headers, because Chromium shows a part only
when the next one begins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from kva.video.store import PART_HEAD, StoredFrame, StreamSlot

#: How often a waiting client checks whether it was disconnected or the server stops.
IDLE_CHECK_SECONDS = 0.5


class Pacer:
    """Allows at most ``max_fps`` frames per second to one client (a token bucket).

    The schedule follows the frames' *arrival* times, not the moments the
    client's thread got round to sending them, so a thread that runs late on a
    busy machine does not push its schedule back and skip the next frame. A
    frame may go out up to a quarter interval early, and up to ``BURST`` frames
    back to back after a gap (a source catching up after a hiccup loses
    nothing); the long-run rate never exceeds ``max_fps``.
    """

    EARLY = 0.25
    BURST = 3

    def __init__(self, max_fps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / max_fps
        self._clock = clock
        self._next = float("-inf")

    def delay(self) -> float:
        """Seconds until the next send is allowed (0 if now)."""
        return max(0.0, self._next - self.EARLY * self.interval - self._clock())

    def sent(self, arrived: float | None = None) -> None:
        """Record a send of a frame that ``arrived`` at that time (default: now)."""
        at = self._clock() if arrived is None else arrived
        self._next = max(self._next, at - (self.BURST - 1) * self.interval) + self.interval


def mjpeg_parts(
    slot: StreamSlot,
    max_fps: float,
    stop: threading.Event,
    disconnected: Callable[[], bool] = lambda: False,
    on_sent: Callable[[StoredFrame, int], None] = lambda _f, _n: None,
) -> Iterator[bytes]:
    """The body of one ``multipart/x-mixed-replace`` response, one chunk per frame.

    The first chunk starts with the first boundary; every chunk ends with the
    next part's boundary and headers.
    """
    pacer = Pacer(max_fps)
    version = 0
    first = True
    while not stop.is_set() and not slot.closed:
        stored = slot.wait_newer(version, IDLE_CHECK_SECONDS)
        if stop.is_set():
            return
        if stored is None:
            if disconnected():
                return
            continue
        # Wait for a frame first, then for the pacer: when the source is no faster than
        # max_fps, a client thread wakes once per frame, not twice.
        delay = pacer.delay()
        if delay > 0:
            if stop.wait(delay):
                return
            stored = slot.current or stored  # the newest after the wait
        chunk = PART_HEAD + stored.part if first else stored.part
        first = False
        version = stored.version
        pacer.sent(stored.received_mono)
        yield chunk
        on_sent(stored, len(chunk))
