"""Which streams the consumer tracks: bounded, forgetting, and fair to live cameras.

A stream is *admitted* with its first frame and *forgotten* once it has been
silent for ``forget_after`` seconds (its state and metric series go with it).
At most ``max_streams`` streams are tracked. When that many are tracked, a new
stream takes the place of a *probationary* one (fewer than
:data:`PROBATION_FRAMES` frames, e.g. one id of a flood of new ids) that has
been silent for :data:`PROBATION_SECONDS`; a stream that has sent more frames is
never displaced by a newcomer, so a flood of new ids cannot starve a live
camera. Frames of a stream that finds no room are dropped as
``too_many_streams``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: A stream with fewer frames than this is on probation: a newcomer may take its place.
PROBATION_FRAMES = 3
#: ... once it has been silent this long (a real camera sends several frames per second).
PROBATION_SECONDS = 2.0


@dataclass(slots=True)
class _Seen:
    last: float
    frames: int


class StreamRoster:
    """The bounded set of tracked streams. Thread-safe."""

    def __init__(
        self,
        max_streams: int,
        forget_after: float,
        on_forget: Callable[[str], None] = lambda _s: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_streams = max_streams
        self.forget_after = forget_after
        self._on_forget = on_forget
        self._clock = clock
        self._lock = threading.Lock()
        self._streams: dict[str, _Seen] = {}  # oldest activity first
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, stream: str) -> bool:
        return stream in self._streams

    def admit(self, stream: str) -> bool:
        """Count a frame of ``stream``; False when there is no room for it."""
        now = self._clock()
        with self._lock:
            seen = self._streams.pop(stream, None)
            if seen is not None:
                seen.last, seen.frames = now, seen.frames + 1
                self._streams[stream] = seen  # to the end: most recent
                return True
        if len(self._streams) >= self.max_streams:
            self.expire(now)
        with self._lock:
            if len(self._streams) >= self.max_streams:
                displaced = self._probationary(now)
                if displaced is None:
                    return False
                del self._streams[displaced]
            else:
                displaced = None
            self._streams[stream] = _Seen(now, 1)
        if displaced is not None:
            self._on_forget(displaced)
        return True

    def _probationary(self, now: float) -> str | None:
        """The least recent stream a newcomer may displace, if any (lock held)."""
        for name, seen in self._streams.items():  # oldest activity first
            if now - seen.last < PROBATION_SECONDS:
                return None  # every later one is more recent still
            if seen.frames < PROBATION_FRAMES:
                return name
        return None

    def expire(self, now: float | None = None) -> list[str]:
        """Forget every stream silent for ``forget_after`` seconds; returns their names."""
        now = self._clock() if now is None else now
        gone: list[str] = []
        with self._lock:
            for name, seen in list(self._streams.items()):
                if now - seen.last < self.forget_after:
                    break  # ordered by activity: the rest are more recent
                del self._streams[name]
                gone.append(name)
        for name in gone:
            self._on_forget(name)
        return gone
