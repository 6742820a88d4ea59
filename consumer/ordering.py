"""Ordering: each stream's results are published in sequence order.

Several frames of a stream are at the model servers at once, and their
answers can come back in any order. A frame whose answer comes back while an
older frame of its stream is still in work waits for it, up to
``reorder_wait`` seconds. A frame that is ready after a newer frame of its
stream was published is ``stale``: it is dropped, so a stream never goes
backwards.

A frame is older than another when both its sequence number and its capture
time are smaller (a producer restart resets the sequence, not the clock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from kva.frame import Frame

T = TypeVar("T")


class StreamOrder:
    """The frames of every stream in work, and the last one published. Thread-safe."""

    def __init__(self, reorder_wait: float = 0.1) -> None:
        self.reorder_wait = reorder_wait
        self._cond = threading.Condition()
        self._in_work: dict[str, set[tuple[int, int]]] = {}
        self._last_published: dict[str, tuple[int, int]] = {}

    def register(self, frame: Frame) -> None:
        """``frame`` goes to work: newer frames of its stream will wait for it (bounded)."""
        with self._cond:
            key = (frame.sequence, frame.capture_ns)
            self._in_work.setdefault(frame.stream_id, set()).add(key)

    def resolve(self, frame: Frame) -> None:
        """The frame is published or dropped: frames waiting behind it may go."""
        with self._cond:
            keys = self._in_work.get(frame.stream_id)
            if keys is not None:
                keys.discard((frame.sequence, frame.capture_ns))
                if not keys:
                    del self._in_work[frame.stream_id]
            self._cond.notify_all()

    def publish(self, frame: Frame, send: Callable[[], T]) -> T | None:
        """Call ``send`` in stream order; returns what it returns, or None when ``frame``
        is stale (a newer frame of its stream was published first: ``send`` is not called).

        Publications are serialised. When ``send`` raises, ``frame`` counts as not published.
        """
        stream = frame.stream_id
        with self._cond:
            if self.reorder_wait > 0:
                self._cond.wait_for(lambda: not self._older_in_work(frame), self.reorder_wait)
            last = self._last_published.get(stream)
            if last is not None and frame.sequence <= last[0] and frame.capture_ns <= last[1]:
                return None
            result = send()
            self._last_published[stream] = (frame.sequence, frame.capture_ns)
            return result

    def forget(self, stream: str) -> None:
        """Drop what is remembered of a stream that went quiet (nothing of it in work)."""
        with self._cond:
            if stream not in self._in_work:
                self._last_published.pop(stream, None)

    def _older_in_work(self, frame: Frame) -> bool:
        keys = self._in_work.get(frame.stream_id, ())
        return any(s < frame.sequence and c < frame.capture_ns for s, c in keys)
