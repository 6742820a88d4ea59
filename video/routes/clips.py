"""``/clips/<id>.mjpg`` (a clip at its original timing) and ``/clips/<id>.avi`` (its download).

Both take the clip's query (:mod:`kva.video.clips`: ``at_ms=`` or ``from_ms=&to_ms=``,
``source=annotated|frames``) and read it from Kafka as it is served. Every refusal
is JSON, ``{"error": "..."}``, with its status: 400 a bad query, 404 an unknown
stream (listing the known ones) or no frames in the range, 410 a range that has
expired (saying from when the stream can be replayed), 413 a download over
``--max-clip-bytes``, 503 every clip reader (or MJPEG slot) taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from itertools import chain

from flask import Blueprint, Response, jsonify, request

from kva.frame import JPEG, Frame
from kva.timerange import format_ms
from kva.video.avi import AviBuilder, ClipTooLarge
from kva.video.clip_source import Clip
from kva.video.clip_stream import clip_parts
from kva.video.clips import ClipError, ClipRequest, parse_clip_request
from kva.video.routes.multipart import NO_CACHE, mjpeg_response, sent_counter
from kva.video.state import ViewerState, viewer_state

logger = logging.getLogger(__name__)

bp = Blueprint("clips", __name__)

#: Most stream names listed in a 404.
MAX_LISTED_STREAMS = 50


@bp.errorhandler(ClipError)
def _clip_error(error: ClipError) -> tuple[Response, int]:
    return jsonify(error.as_json()), error.status


@bp.get("/clips/<stream_id>.mjpg")
def clip_mjpeg(stream_id: str) -> Response:
    """One clip as MJPEG at its original timing (each part with its capture time)."""
    state = viewer_state()
    clip_request = _checked_request(state, stream_id)
    if not state.mjpeg_slots.acquire(blocking=False):
        raise ClipError(503, "too many viewers: every MJPEG slot is taken, try again later")
    try:
        clip, first = _open(state, clip_request)
    except BaseException:
        state.mjpeg_slots.release()
        raise
    disconnected: Callable[[], bool] = request.environ.get(
        "waitress.client_disconnected", lambda: False
    )
    parts = clip_parts(
        chain([first], clip),
        state.stop,
        max_bytes=state.settings.video_max_clip_bytes,
        disconnected=disconnected,
        on_sent=sent_counter(state.metrics, stream_id),
    )
    return mjpeg_response(parts, state, _range_headers(clip_request), on_close=clip.close)


@bp.get("/clips/<stream_id>.avi")
def clip_download(stream_id: str) -> Response:
    """One clip as an AVI file of its JPEGs, as they are (built in memory, bounded)."""
    state = viewer_state()
    clip_request = _checked_request(state, stream_id)
    clip, first = _open(state, clip_request)
    with clip:
        builder = AviBuilder(first.width, first.height, state.settings.video_max_clip_bytes)
        last = first
        try:
            for frame in _jpegs(chain([first], clip), state, clip_request):
                builder.add(frame.data)
                last = frame
        except ClipTooLarge as exc:
            raise ClipError(413, str(exc), max_bytes=builder.max_bytes) from None
    if builder.frames == 0:
        raise ClipError(404, f"the clip of stream {stream_id!r} has no JPEG frame for a file")
    data = builder.finish((last.capture_ns - first.capture_ns) / 1e9)
    headers = (
        NO_CACHE
        | _range_headers(clip_request)
        | {
            "Content-Disposition": f'attachment; filename="{clip_request.filename}"',
            "X-Kva-Frames": str(builder.frames),
        }
    )
    return Response(data, mimetype="video/x-msvideo", headers=headers)


def _jpegs(frames: Iterator[Frame], state: ViewerState, clip: ClipRequest) -> Iterator[Frame]:
    """The JPEG frames (an AVI of MJPEG holds nothing else); others counted and left out."""
    for frame in frames:
        if frame.content_type == JPEG:
            yield frame
        else:
            state.metrics.messages_rejected.labels(clip.topic, "not_jpeg").inc()


def _checked_request(state: ViewerState, stream_id: str) -> ClipRequest:
    """The clip the request names, of a known stream, not expired (all without Kafka)."""
    clip = parse_clip_request(stream_id, request.args, state.settings)
    known = state.known_streams()
    if clip.stream_id not in known:
        listed = known[:MAX_LISTED_STREAMS]
        raise ClipError(
            404,
            f"unknown stream {clip.stream_id!r}; the streams are: "
            f"{', '.join(listed) or 'none yet'}",
            streams=listed,
        )
    replay_from = _replay_from(state, clip)
    if replay_from is not None and clip.end_ms <= replay_from:
        raise ClipError(
            410,
            f"the clip {format_ms(clip.start_ms)} .. {format_ms(clip.end_ms)} has expired: "
            f"stream {clip.stream_id!r} ({clip.source}) can be replayed from "
            f"{format_ms(replay_from)}",
            replay_from_ms=replay_from,
        )
    return clip


def _replay_from(state: ViewerState, clip: ClipRequest) -> int | None:
    retention = state.retention.retention(clip.topic)
    if retention is None:
        return None
    slot = state.store.get(clip.stream_id)
    partition = slot.partition if slot is not None and clip.source == "annotated" else None
    return retention.replay_from_ms(partition)


def _open(state: ViewerState, clip_request: ClipRequest) -> tuple[Clip, Frame]:
    """The open clip and its first frame (read now, so an empty clip is a 404, not a blank)."""
    clip = state.clips.open(clip_request)
    try:
        first = next(iter(clip), None)
    except BaseException:
        clip.close()
        raise
    if first is None:
        clip.close()
        raise ClipError(
            404,
            f"stream {clip_request.stream_id!r} has no frames on {clip_request.topic} between "
            f"{format_ms(clip_request.start_ms)} and {format_ms(clip_request.end_ms)}",
        )
    return clip, first


def _range_headers(clip: ClipRequest) -> dict[str, str]:
    return {"X-Kva-Clip-From-Ms": str(clip.start_ms), "X-Kva-Clip-To-Ms": str(clip.end_ms)}
