"""Admission: which frame of which stream goes to the models next.

Each stream has one slot for its newest waiting frame: a newer frame replaces
an older one that has not been sent yet (the older is dropped as ``overload``;
which streams are tracked at all is :mod:`~kva.consumer.roster`'s job). Waiting frames are taken
round robin over streams while the models' replicas have free capacity (plus
``prefetch`` frames prepared meanwhile). A frame older than ``max_frame_age``
when it arrives or when a replica is free for it is ``stale``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from kva.consumer.models import ModelRuntime
from kva.frame import Frame

#: Frames processed at once when no model limits it (all unavailable, or passthrough).
IDLE_CAPACITY = 2


def replica_capacity(models: Sequence[ModelRuntime]) -> int:
    """Frames that may be at the model servers at once: the scarcest model's free slots."""
    limits = [m.pool.capacity() for m in models if m.pool.up_count()]
    return min(limits) if limits else IDLE_CAPACITY


class Scheduler:
    """The newest waiting frame per stream and the count of frames in work. Thread-safe.

    A frame taken by :meth:`next_frame` is *in flight* until :meth:`models_done`
    (the models are finished with it) and *busy* until :meth:`finished` (it is
    published or dropped).
    """

    def __init__(
        self,
        *,
        capacity: Callable[[], int],
        max_frame_age: float,
        prefetch: int = 1,
        on_inflight: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.capacity = capacity
        self.max_frame_age = max_frame_age
        #: frames dispatched beyond the replicas' capacity: decoded and resized while
        #: the replicas are busy, so a replica never waits for the consumer
        self.prefetch = prefetch
        self._on_inflight = on_inflight
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: dict[str, Frame] = {}
        self._order: list[str] = []
        self._inflight = 0  # taken, not yet back from the models
        self._busy = 0  # taken, not yet published or dropped
        self._closed = False

    def stale(self, frame: Frame) -> bool:
        """True when ``frame`` is too old to be worth processing."""
        return frame.age_seconds() > self.max_frame_age

    def admit(self, frame: Frame) -> Frame | None:
        """Make ``frame`` its stream's waiting frame; returns the older one it replaced."""
        with self._lock:
            older = self._pending.pop(frame.stream_id, None)
            self._pending[frame.stream_id] = frame
            if older is None:
                self._order.append(frame.stream_id)
        return older

    def next_frame(self) -> Frame | None:
        """The next waiting frame (round robin over streams), or None when there is no
        waiting frame, no free capacity, or the scheduler is closed."""
        with self._lock:
            limit = self.capacity() + self.prefetch
            # frames past the models (annotating, publishing) are bounded too
            full = self._inflight >= limit or self._busy >= 2 * limit
            if self._closed or not self._order or full:
                return None
            frame = self._pending.pop(self._order.pop(0))
            self._inflight += 1
            self._busy += 1
            self._on_inflight(self._inflight)
            return frame

    def models_done(self) -> None:
        """The models are finished with a frame: its replica slot is free."""
        with self._lock:
            self._inflight -= 1
            self._on_inflight(self._inflight)

    def finished(self) -> None:
        """A frame is published or dropped."""
        with self._lock:
            self._busy -= 1
            self._idle.notify_all()

    def inflight(self) -> int:
        with self._lock:
            return self._inflight

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self, timeout: float) -> None:
        """Take no more frames, forget the waiting ones, wait (bounded) for those in work."""
        with self._lock:
            self._closed = True
            self._pending.clear()
            self._order.clear()
            self._idle.wait_for(lambda: self._busy <= 0, timeout)
