"""``/api/streams``: what the page polls (ids, resolution, fps, age, last predictions, the
counts of each line and zone, the newest events, how far back each stream can be replayed
and its timeline's events); ``/api/events``: the event feed."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from kva.frame import is_valid_stream_id
from kva.video.predictions import summarize
from kva.video.state import ViewerState, viewer_state
from kva.video.store import StreamSlot

bp = Blueprint("api", __name__)

#: Newest events of each stream in ``/api/streams`` (the page's feed).
FEED_EVENTS = 8
#: Events of each stream marked on its timeline in ``/api/streams``.
TIMELINE_EVENTS = 200
#: ``/api/events``: events returned without ``?limit=``, and the most with one.
DEFAULT_EVENTS = 100
MAX_EVENTS = 1000


@bp.get("/api/streams")
def streams() -> Response:
    """Every stream as JSON."""
    return jsonify(streams_payload(viewer_state()))


def streams_payload(state: ViewerState) -> dict[str, Any]:
    """Every stream as JSON: what ``/api/streams`` returns and the page starts with."""
    now, now_ns = state.store.now(), time.time_ns()
    settings = state.settings
    stale_after = settings.video_stale_after
    return {
        "stale_after": stale_after,
        "max_fps": settings.video_max_fps,
        "now_ms": now_ns // 1_000_000,
        "clips": {
            "before_s": settings.video_clip_before,
            "after_s": settings.video_clip_after,
            "max_s": settings.video_max_clip_seconds,
            "raw": bool(settings.video_frames_topic),
        },
        "streams": [
            describe(slot, now, now_ns, stale_after)
            | replayable(state, slot)
            | {
                "events": state.events.summary(slot.stream_id, FEED_EVENTS),
                "timeline": state.events.marks(slot.stream_id, TIMELINE_EVENTS),
            }
            for slot in state.store.slots()
        ],
    }


def replayable(state: ViewerState, slot: StreamSlot) -> dict[str, int | None]:
    """How far back the stream can be replayed (ms), annotated and raw, from the last look at
    Kafka (:mod:`kva.video.retention`); None when not known (yet) or nothing is kept."""
    settings = state.settings
    annotated = state.retention.retention(settings.video_topic)
    raw = state.retention.retention(settings.video_frames_topic)
    return {
        "replay_from_ms": None if annotated is None else annotated.replay_from_ms(slot.partition),
        "raw_replay_from_ms": None if raw is None else raw.replay_from_ms(),
    }


@bp.get("/api/events")
def events() -> Response:
    """The newest events, newest first: ``?stream=ID`` of one stream, ``?limit=N`` at most N."""
    state = viewer_state()
    stream = request.args.get("stream")
    if stream is not None and not is_valid_stream_id(stream):
        abort(400, description=f"invalid stream id {stream[:40]!r}")
    limit = _limit(request.args.get("limit"))
    return jsonify(
        {
            "topic": state.settings.video_events_topic or None,
            "limit": limit,
            "events": state.events.newest(limit, stream),
        }
    )


def _limit(raw: str | None) -> int:
    """``?limit=``: a whole number from 1; above :data:`MAX_EVENTS` means MAX_EVENTS."""
    if raw is None:
        return DEFAULT_EVENTS
    if not raw.isdigit() or int(raw) < 1:
        abort(400, description=f"limit {raw[:20]!r} is not a whole number from 1")
    return min(int(raw), MAX_EVENTS)


def describe(slot: StreamSlot, now: float, now_ns: int, stale_after: float) -> dict[str, Any]:
    """One stream as JSON (times in seconds, rounded for display)."""
    current = slot.current
    item: dict[str, Any] = {"id": slot.stream_id, "fps": round(slot.fps(now), 2)}
    if current is None:
        item.update(
            width=None,
            height=None,
            sequence=None,
            age_seconds=None,
            silent_seconds=None,
            stale=True,
        )
    else:
        frame = current.frame
        silent = now - current.received_mono
        item.update(
            width=frame.width,
            height=frame.height,
            sequence=frame.sequence,
            age_seconds=round(max(0.0, frame.age_seconds(now_ns)), 3),
            silent_seconds=round(silent, 3),
            stale=silent > stale_after,
        )
    predictions = slot.predictions
    if predictions is None:
        item["predictions"] = None
    else:
        item["predictions"] = {
            "sequence": predictions.sequence,
            "source": predictions.source,
            "age_seconds": round(max(0.0, (now_ns - predictions.capture_ns) / 1e9), 3)
            if predictions.capture_ns
            else None,
            "models": summarize(predictions.document),
        }
    return item
