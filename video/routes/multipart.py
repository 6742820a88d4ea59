"""What the live and the clip MJPEG routes share: the response that holds an MJPEG slot."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from flask import Response

from kva.video.metrics import ViewerMetrics
from kva.video.state import ViewerState
from kva.video.store import BOUNDARY

NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"}


class SlotLease:
    """One MJPEG slot a client took (and one viewer counted), given back exactly once."""

    def __init__(self, state: ViewerState, on_close: Callable[[], None] = lambda: None) -> None:
        self._state = state
        self._on_close = on_close
        self._lock = threading.Lock()
        self._released = False
        #: Set once the client's connection went to a sender that releases the lease itself.
        self.taken = False
        state.metrics.viewers.inc()

    def release(self) -> None:
        """Give the slot back (only the first call counts)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        try:
            self._on_close()
        finally:
            self._state.metrics.viewers.dec()
            self._state.mjpeg_slots.release()

    def release_unless_taken(self) -> None:
        """Give the slot back, unless the connection's new owner will."""
        if not self.taken:
            self.release()


def _multipart(body: Iterable[bytes], headers: dict[str, str] | None) -> Response:
    return Response(
        body,
        mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers=NO_CACHE | {"X-Accel-Buffering": "no"} | (headers or {}),
    )  # not direct_passthrough: werkzeug's closing wrapper runs call_on_close


def mjpeg_response(
    parts: Iterable[bytes],
    state: ViewerState,
    headers: dict[str, str] | None = None,
    on_close: Callable[[], None] = lambda: None,
) -> Response:
    """``parts`` as ``multipart/x-mixed-replace``, for a client that took an MJPEG slot.

    The slot is given back (and ``on_close`` runs) when the server closes the
    response, whether it started streaming or not.
    """
    response = _multipart(parts, headers)
    response.call_on_close(SlotLease(state, on_close).release)
    return response


def handed_over(hand_over: Callable[[SlotLease], None], state: ViewerState) -> Response:
    """A ``multipart/x-mixed-replace`` response whose connection is handed to a sender.

    When the server starts sending the body (the head and every header final),
    ``hand_over(lease)`` takes the connection and sets ``lease.taken``; from then
    on the sender releases the lease. If it never does, closing the response does.
    """
    lease = SlotLease(state)

    def body() -> Iterator[bytes]:
        hand_over(lease)
        yield from ()

    response = _multipart(body(), None)
    response.call_on_close(lease.release_unless_taken)
    return response


def sent_counter(metrics: ViewerMetrics, stream_id: str) -> Callable[[object, int], None]:
    """Counts a frame (of any kind) and its bytes sent to a client of ``stream_id``."""
    frames = metrics.frames_sent.labels(stream_id)
    sent_bytes = metrics.bytes_sent.labels(stream_id)

    def count(_frame: object, size: int) -> None:
        frames.inc()
        sent_bytes.inc(size)

    return count
