"""The newest frame and predictions of every stream, in memory, shared by all clients.

The Kafka reader calls :meth:`FrameStore.put_frame`; each HTTP client waits on
its stream's :class:`StreamSlot` for a version newer than the one it sent last.
There are no per-client queues: a client that is slow simply finds a newer
version when it comes back, so it skips frames without holding anyone up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from kva.frame import Frame
from kva.predictions import FramePredictions

#: The boundary between MJPEG parts (``multipart/x-mixed-replace; boundary=...``).
BOUNDARY = "kvaframe"
#: What precedes every JPEG: the boundary line and the part's headers.
PART_HEAD = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
#: How long the fps estimate looks back.
FPS_WINDOW_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Predictions:
    """The latest predictions of a stream and the frame they belong to."""

    sequence: int
    capture_ns: int
    document: FramePredictions
    source: str  # "metadata" or "header"


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """A frame plus what serving needs, computed once per frame (not once per client)."""

    frame: Frame
    version: int
    received_mono: float
    #: ``jpeg + CRLF + next PART_HEAD``: Chromium shows a part only once the next begins.
    part: bytes


class FpsMeter:
    """Frames per second over the last few seconds (arrival times, monotonic)."""

    def __init__(self, window: float = FPS_WINDOW_SECONDS) -> None:
        self._window = window
        self._times: deque[float] = deque(maxlen=1024)

    def tick(self, now: float) -> None:
        """Record a frame arriving at ``now``."""
        self._times.append(now)

    def rate(self, now: float) -> float:
        """Frames per second over the window ending at ``now``."""
        times = self._times
        while times and now - times[0] > self._window:
            times.popleft()
        if len(times) < 2:
            return 0.0
        span = max(now - times[0], times[-1] - times[0])
        return (len(times) - 1) / span if span > 0 else 0.0


class StreamSlot:
    """One stream: its newest frame, a version counter and a condition to wait on."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self._cond = threading.Condition()
        self._current: StoredFrame | None = None
        self._version = 0
        self._fps = FpsMeter()
        self._predictions: Predictions | None = None
        self.closed = False
        #: The partition of the frame topic its frames come from (None until known).
        self.partition: int | None = None

    def put(self, frame: Frame, now: float) -> StoredFrame:
        """Make ``frame`` the newest and wake every waiting client."""
        part = b"".join((frame.data, b"\r\n", PART_HEAD))
        with self._cond:
            self._version += 1
            stored = StoredFrame(frame, self._version, now, part)
            self._current = stored
            self._fps.tick(now)
            self._cond.notify_all()
        return stored

    def set_predictions(self, predictions: Predictions) -> bool:
        """Keep ``predictions`` unless newer ones (by sequence) are already there."""
        with self._cond:
            old = self._predictions
            if old is not None and predictions.sequence < old.sequence:
                return False
            self._predictions = predictions
            return True

    @property
    def current(self) -> StoredFrame | None:
        """The newest frame, or None before the first."""
        return self._current

    @property
    def predictions(self) -> Predictions | None:
        """The latest predictions, or None."""
        return self._predictions

    def fps(self, now: float) -> float:
        """Frames per second arriving on this stream."""
        with self._cond:
            return self._fps.rate(now)

    def wait_newer(self, version: int, timeout: float) -> StoredFrame | None:
        """The newest frame if its version is above ``version``, waiting up to ``timeout``."""
        with self._cond:
            self._cond.wait_for(
                lambda: self.closed or (self._current is not None and self._version > version),
                timeout,
            )
            current = self._current
            if self.closed or current is None or current.version <= version:
                return None
            return current

    def wake(self) -> None:
        """Wake every waiting client (e.g. so it notices the server stopping)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiting client; the stream is gone."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class FrameStore:
    """The bounded set of streams the viewer knows.

    When ``max_streams`` streams are held, a new stream takes the place of the
    one that has been silent longest, but only if that one has been silent
    for ``forget_after`` seconds; otherwise the new stream is refused (counted).
    """

    def __init__(
        self,
        max_streams: int = 64,
        forget_after: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_streams = max_streams
        self.forget_after = forget_after
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[str, StreamSlot] = {}
        self.refused = 0
        self.evicted = 0
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every frame put (it must be quick: the reader waits)."""
        self._listeners.append(listener)

    def get(self, stream_id: str) -> StreamSlot | None:
        """The slot of ``stream_id``, or None if unknown."""
        return self._slots.get(stream_id)

    def slots(self) -> list[StreamSlot]:
        """Every stream, sorted by id."""
        with self._lock:
            return sorted(self._slots.values(), key=lambda s: s.stream_id)

    def __len__(self) -> int:
        return len(self._slots)

    def now(self) -> float:
        """The store's clock (monotonic seconds)."""
        return self._clock()

    def put_frame(self, frame: Frame, partition: int | None = None) -> StoredFrame | None:
        """Make ``frame`` the newest of its stream; None if there is no room for a new stream.

        ``partition`` is where it was read (how far back the stream can be replayed).
        """
        slot = self._slot(frame.stream_id)
        if slot is None:
            return None
        if partition is not None:
            slot.partition = partition
        stored = slot.put(frame, self._clock())
        for listener in self._listeners:
            listener()
        return stored

    def is_older(self, frame: Frame) -> bool:
        """Whether ``frame`` is older than (or the same as) its stream's newest frame.

        Older means a lower or equal sequence *and* an earlier or equal capture time: a
        producer that restarts counts from 0 again, with a later capture time, and is
        shown (the same rule as the consumer's publication order).
        """
        slot = self._slots.get(frame.stream_id)
        current = None if slot is None else slot.current
        if current is None:
            return False
        newest = current.frame
        return frame.sequence <= newest.sequence and frame.capture_ns <= newest.capture_ns

    def put_predictions(self, stream_id: str, predictions: Predictions) -> bool:
        """Attach predictions to a stream (a stream seen only in metadata is created too)."""
        slot = self._slot(stream_id)
        return slot is not None and slot.set_predictions(predictions)

    def _slot(self, stream_id: str) -> StreamSlot | None:
        slot = self._slots.get(stream_id)
        if slot is not None:
            return slot
        with self._lock:
            slot = self._slots.get(stream_id)
            if slot is None:
                if len(self._slots) >= self.max_streams and not self._evict_one():
                    self.refused += 1
                    return None
                slot = self._slots[stream_id] = StreamSlot(stream_id)
            return slot

    def _evict_one(self) -> bool:
        now = self._clock()

        def last_seen(slot: StreamSlot) -> float:
            current = slot.current
            return current.received_mono if current is not None else float("-inf")

        oldest = min(self._slots.values(), key=last_seen)
        if now - last_seen(oldest) < self.forget_after:
            return False
        del self._slots[oldest.stream_id]
        oldest.close()
        self.evicted += 1
        return True
