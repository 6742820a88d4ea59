"""Frames in work, handed back per partition in offset order.

The models answer in any order; what comes out of a re-score must not depend on
it. Each partition's frames leave the window in the order of their offsets (a stream
lives in one partition, so each stream in its own order): a finished frame waits
for the older ones of its partition. The window is bounded, which is the re-score's
back-pressure: when it is full the loop reads no more records.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Generic, TypeVar

T = TypeVar("T")


class OffsetWindow(Generic[T]):
    """At most ``limit`` futures, each of one record; not thread-safe (the loop's own),
    while the futures are completed by worker threads."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the window holds at least one frame")
        self.limit = limit
        self._queues: dict[int, deque[tuple[int, Future[T]]]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def full(self) -> bool:
        return self._count >= self.limit

    def add(self, partition: int, offset: int, future: Future[T]) -> None:
        """The work on record ``offset`` of ``partition`` (offsets of a partition ascending)."""
        queue = self._queues.setdefault(partition, deque())
        if queue and queue[-1][0] >= offset:
            raise ValueError(
                f"offset {offset} of partition {partition} is not after {queue[-1][0]}"
            )
        queue.append((offset, future))
        self._count += 1

    def ready(self) -> list[tuple[int, int, Future[T]]]:
        """``(partition, offset, future)`` of every finished frame whose older frames (of its
        partition) are finished too, oldest first per partition; they leave the window."""
        out = []
        for partition, queue in self._queues.items():
            while queue and queue[0][1].done():
                offset, future = queue.popleft()
                out.append((partition, offset, future))
        self._count -= len(out)
        return out

    def wait(self, timeout: float) -> None:
        """Until the oldest frame of some partition is finished, or ``timeout`` seconds."""
        heads = [queue[0][1] for queue in self._queues.values() if queue]
        if heads:
            wait(heads, timeout, return_when=FIRST_COMPLETED)

    def cancel(self) -> None:
        """Cancel the work not started yet and forget every frame."""
        for queue in self._queues.values():
            for _offset, future in queue:
                future.cancel()
        self._queues.clear()
        self._count = 0
