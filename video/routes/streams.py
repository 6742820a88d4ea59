"""``/streams/<id>.mjpg`` (live MJPEG) and ``/streams/<id>.jpg`` (the newest frame)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, abort, request

from kva.frame import is_valid_stream_id
from kva.video.mjpeg import mjpeg_parts
from kva.video.routes.multipart import (
    NO_CACHE,
    SlotLease,
    handed_over,
    mjpeg_response,
    sent_counter,
)
from kva.video.state import viewer_state
from kva.video.store import StreamSlot
from kva.wsgi import DETACH

bp = Blueprint("streams", __name__)


def _slot(stream_id: str) -> StreamSlot:
    if not is_valid_stream_id(stream_id):
        abort(400, description=f"invalid stream id {stream_id[:40]!r}")
    slot = viewer_state().store.get(stream_id)
    if slot is None:
        abort(404, description=f"unknown stream {stream_id!r}")
    return slot


@bp.get("/streams/<stream_id>.mjpg")
def mjpeg(stream_id: str) -> Response:
    """Live MJPEG of one stream (503 when every MJPEG slot is taken)."""
    slot = _slot(stream_id)
    state = viewer_state()
    if not state.mjpeg_slots.acquire(blocking=False):
        abort(503, description="too many viewers: every MJPEG slot is taken, try again later")
    on_sent = sent_counter(state.metrics, stream_id)
    detach = request.environ.get(DETACH)
    fanout = state.fanout
    if fanout is not None and detach is not None and request.method == "GET":
        # The connection goes to the one sender thread; the slot is given back when
        # the fan-out drops the client.
        def hand_over(lease: SlotLease) -> None:
            taken = detach()
            lease.taken = True
            fanout.add(taken.socket, taken.head, slot, on_sent, lease.release)

        return handed_over(hand_over, state)
    disconnected: Callable[[], bool] = request.environ.get(
        "waitress.client_disconnected", lambda: False
    )
    parts = mjpeg_parts(slot, state.settings.video_max_fps, state.stop, disconnected, on_sent)
    return mjpeg_response(parts, state)


@bp.get("/streams/<stream_id>.jpg")
def snapshot(stream_id: str) -> Response:
    """The newest frame of one stream."""
    current = _slot(stream_id).current
    if current is None:
        abort(404, description=f"stream {stream_id!r} has no frame yet")
    frame = current.frame
    sent_counter(viewer_state().metrics, stream_id)(current, len(frame.data))
    return Response(
        frame.data,
        mimetype=frame.content_type,
        headers=NO_CACHE
        | {
            "X-Kva-Seq": str(frame.sequence),
            "X-Kva-Capture-Ns": str(frame.capture_ns),
        },
    )
