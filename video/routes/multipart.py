"""What the live and the clip MJPEG routes share: the response that holds an MJPEG slot."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Response

from kva.video.metrics import ViewerMetrics
from kva.video.state import ViewerState
from kva.video.store import BOUNDARY

NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"}


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
    response = Response(
        parts,
        mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers=NO_CACHE | {"X-Accel-Buffering": "no"} | (headers or {}),
    )  # not direct_passthrough: werkzeug's closing wrapper runs call_on_close
    state.metrics.viewers.inc()

    def release() -> None:
        try:
            on_close()
        finally:
            state.metrics.viewers.dec()
            state.mjpeg_slots.release()

    response.call_on_close(release)
    return response


def sent_counter(metrics: ViewerMetrics, stream_id: str) -> Callable[[object, int], None]:
    """Counts a frame (of any kind) and its bytes sent to a client of ``stream_id``."""
    frames = metrics.frames_sent.labels(stream_id)
    sent_bytes = metrics.bytes_sent.labels(stream_id)

    def count(_frame: object, size: int) -> None:
        frames.inc()
        sent_bytes.inc(size)

    return count
