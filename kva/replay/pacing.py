"""Pacing: hand out frames at their original speed (by capture-time gaps) or at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kva.replay.config import Pace


class Pacer:
    """Waits before each frame so frames leave as far apart as they were captured.

    ``fast`` never waits. ``original`` keeps the replay's clock on the first frame's
    capture time; a gap longer than ``max_gap_s`` (the camera was off) is not waited
    out: the clock restarts at the next frame.
    """

    def __init__(
        self,
        pace: Pace,
        max_gap_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pace = pace
        self._max_gap_ns = int(max_gap_s * 1e9)
        self._clock = clock
        self._anchor: tuple[float, int] | None = None
        self._last_ns = 0
        #: Gaps longer than ``max_gap_s`` that were not waited out.
        self.gaps_cut = 0

    def delay(self, capture_ns: int) -> float:
        """Seconds to wait before the frame captured at ``capture_ns`` (0: send now)."""
        if self.pace == "fast":
            return 0.0
        now = self._clock()
        if self._anchor is None or capture_ns - self._last_ns > self._max_gap_ns:
            if self._anchor is not None:
                self.gaps_cut += 1
            self._anchor = (now, capture_ns)
        self._last_ns = max(self._last_ns, capture_ns)
        started, first_ns = self._anchor
        return max(0.0, started + (capture_ns - first_ns) / 1e9 - now)

    def wait(self, capture_ns: int, stop: threading.Event) -> bool:
        """Wait for the frame's turn; False when ``stop`` was set meanwhile."""
        delay = self.delay(capture_ns)
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()
