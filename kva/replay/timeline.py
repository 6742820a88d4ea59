"""The original timing in a fixed-rate file: which recorded frame fills which output slot.

A video file has one frame every ``1/fps`` seconds; a camera's capture times are not
so regular (jitter, dropped frames, a camera that was off). Each frame goes to the
slot nearest its capture time, counted from the first frame: a slot with no frame
of its own repeats the one before (**repeated**), two frames in one slot keep the
later (**dropped**), so the file's clock stays the cameras'. A gap longer than
``max_gap`` (the camera was off) is cut to one slot (**gaps cut**) instead of
filling the file with one frame held for minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Frames whose capture times estimate a stream's rate when no --fps is given.
ESTIMATE_FRAMES = 16
#: The rate when a range has a single frame (nothing to estimate from).
FALLBACK_FPS = 10.0


def estimate_fps(capture_ns: Sequence[int], fallback: float = FALLBACK_FPS) -> float:
    """A stream's frame rate from the median gap between consecutive capture times."""
    gaps = sorted(b - a for a, b in zip(capture_ns, capture_ns[1:], strict=False) if b > a)
    if not gaps:
        return fallback
    median = gaps[len(gaps) // 2]
    return round(min(1000.0, max(0.1, 1e9 / median)), 3)


@dataclass
class SlotClock:
    """Places capture times on the slots of a ``fps`` file; see the module docstring.

    Feed each frame's capture time to :meth:`add`: it answers how many times the
    *previous* frame is to be written now (0: the previous one was dropped for this
    one). :meth:`finish` answers the same for the last frame.
    """

    fps: float
    max_gap_ns: int
    repeated: int = 0
    dropped: int = 0
    gaps_cut: int = 0
    _base_ns: int | None = None
    _slot: int = 0
    _last_ns: int = 0

    def add(self, capture_ns: int) -> int:
        """Place one frame; the number of copies of the previous frame to write now."""
        if self._base_ns is None:
            self._base_ns, self._last_ns = capture_ns, capture_ns
            return 0
        period = 1e9 / self.fps
        if capture_ns - self._last_ns > self.max_gap_ns:
            self.gaps_cut += 1
            self._base_ns = capture_ns - round((self._slot + 1) * period)
        self._last_ns = max(self._last_ns, capture_ns)
        slot = round((capture_ns - self._base_ns) / period)
        if slot <= self._slot:
            self.dropped += 1
            return 0
        copies, self._slot = slot - self._slot, slot
        self.repeated += copies - 1
        return copies

    def finish(self) -> int:
        """Copies of the last frame to write (1, or 0 when no frame came)."""
        return 0 if self._base_ns is None else 1
