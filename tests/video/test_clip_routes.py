"""The clip routes' refusals through Flask's test client (no Kafka is reached for any of them):
bad queries, unknown streams, expired ranges, the token; and what /api/streams says of clips."""

from __future__ import annotations

import time

import pytest

from kva.kafka.peek import PartitionSpan
from kva.video.app import create_app
from kva.video.clips import ClipError, parse_clip_request
from kva.video.retention import RetentionWatcher
from kva.video.state import viewer_state
from tests.video.events import LineCounter

NOW_MS = 1_765_108_800_000
#: What the annotated topic holds in these tests: partition 0 from an hour ago, 1 from 30 min.
SPANS = [
    PartitionSpan(0, 100, 900, NOW_MS - 3_600_000, NOW_MS),
    PartitionSpan(1, 50, 60, NOW_MS - 1_800_000, NOW_MS - 1000),
]


@pytest.fixture
def clip_app(make_settings, cat_frames):
    app = create_app(make_settings(video_token="t0ken"))  # noqa: S106 - a test token
    state = viewer_state(app)
    state.store.put_frame(cat_frames[0], partition=0)  # cam0: live, in partition 0
    state.events.put(LineCounter("cam1", "door").cross("in", 3))  # cam1: only events
    state.retention = RetentionWatcher(
        state.settings,
        look=lambda _s, topic: SPANS if topic == "annotated" else [],
        streams=lambda _s, _topic: {"cam2": NOW_MS},  # cam2: only in the topic
    )
    state.retention.refresh()
    return app


@pytest.fixture
def client(clip_app):
    return clip_app.test_client()


def _get(client, path: str):
    return client.get(path + ("&" if "?" in path else "?") + "token=t0ken")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "which clip? give at_ms=T (an event's time) or from_ms=T[&to_ms=T2], in ms"),
        ("at_ms=5&from_ms=3", "give at_ms (an event's time) or from_ms/to_ms, not both"),
        ("from_ms=abc", "from_ms 'abc' is not a time in milliseconds since 1970 (digits only)"),
        ("from_ms=-5", "from_ms '-5' is not a time in milliseconds since 1970 (digits only)"),
        ("from_ms=1e9", "from_ms '1e9' is not a time in milliseconds since 1970 (digits only)"),
        ("from_ms=%C2%B2", "from_ms '²' is not a time in milliseconds since 1970 (digits only)"),
        ("from_ms=" + "9" * 40, "from_ms '999999999999999999999999' is not a time in millis"),
        ("at_ms=", "at_ms '' is not a time in milliseconds since 1970 (digits only)"),
        ("from_ms=2000&to_ms=1000", "to_ms 1000 is not after from_ms 2000: the range is empty"),
        ("from_ms=2000&to_ms=2000", "to_ms 2000 is not after from_ms 2000: the range is empty"),
        (
            "from_ms=0&to_ms=61000",
            "the clip is 61 s long; the longest is 60 s (--max-clip-seconds)",
        ),
        ("at_ms=5000&source=raw", "source 'raw' is not one of annotated, frames"),
    ],
)
@pytest.mark.parametrize("kind", ["mjpg", "avi"])
def test_bad_queries_are_400_with_the_reason(client, query: str, message: str, kind: str) -> None:
    response = _get(client, f"/clips/cam0.{kind}?{query}")
    assert response.status_code == 400
    assert response.is_json
    assert response.get_json()["error"].startswith(message)


def test_a_bad_stream_id_is_400(client) -> None:
    response = _get(client, "/clips/a%20b.mjpg?at_ms=1000")
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid stream id 'a b'"}


def test_an_unknown_stream_is_404_listing_the_known_ones(client) -> None:
    response = _get(client, "/clips/nobody.mjpg?at_ms=1000")
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "unknown stream 'nobody'; the streams are: cam0, cam1, cam2"
    assert body["streams"] == ["cam0", "cam1", "cam2"]


def test_an_expired_range_is_410_saying_from_when_it_can_be_replayed(client) -> None:
    start = NOW_MS - 4_000_000
    response = _get(client, f"/clips/cam0.mjpg?from_ms={start}&to_ms={start + 10_000}")
    assert response.status_code == 410
    body = response.get_json()
    assert body["replay_from_ms"] == NOW_MS - 3_600_000  # partition 0's oldest: cam0's own
    assert body["error"] == (
        "the clip 2025-12-07T10:53:20.000Z .. 2025-12-07T10:53:30.000Z has expired: stream "
        "'cam0' (annotated) can be replayed from 2025-12-07T11:00:00.000Z"
    )


def test_a_stream_of_unknown_partition_is_replayable_from_the_newest_oldest(client) -> None:
    """cam2 is not live: every partition holds all from the later of their oldest times."""
    start = NOW_MS - 2_000_000
    response = _get(client, f"/clips/cam2.avi?from_ms={start}&to_ms={start + 5000}")
    assert response.status_code == 410
    assert response.get_json()["replay_from_ms"] == NOW_MS - 1_800_000


def test_raw_clips_need_a_frames_topic(make_settings) -> None:
    settings = make_settings(video_frames_topic="")
    with pytest.raises(ClipError, match="raw clips are off: this viewer has no --frames-topic"):
        parse_clip_request("cam0", {"at_ms": "5000", "source": "frames"}, settings)


def test_an_events_clip_spans_the_settings_before_and_after(make_settings) -> None:
    settings = make_settings(video_clip_before=2.5, video_clip_after=7)
    clip = parse_clip_request("cam0", {"at_ms": "100000", "source": "frames"}, settings)
    assert (clip.start_ms, clip.end_ms, clip.topic, clip.source) == (
        97_500,
        107_000,
        "frames",
        "frames",
    )
    assert parse_clip_request("cam0", {"at_ms": "1000"}, settings).start_ms == 0  # not before 1970
    from_only = parse_clip_request("cam0", {"from_ms": "5000"}, settings)
    assert (from_only.start_ms, from_only.end_ms, from_only.topic) == (5000, 14_500, "annotated")
    assert from_only.filename == "cam0-annotated-5000-14500.avi"


def test_the_clip_window_must_fit_the_longest_clip(make_settings) -> None:
    with pytest.raises(ValueError, match=r"--clip-before \+ --clip-after \(70 s\) is longer than"):
        make_settings(video_clip_before=40, video_clip_after=30)


@pytest.mark.parametrize("path", ["/clips/cam0.mjpg?at_ms=1000", "/clips/cam0.avi?at_ms=1000"])
def test_clips_need_the_token(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["X-Frame-Options"] == "DENY"


def test_refusals_carry_the_security_headers(client) -> None:
    response = _get(client, "/clips/nobody.avi?at_ms=1000")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_api_streams_says_how_far_back_each_stream_can_be_replayed(client) -> None:
    body = _get(client, "/api/streams").get_json()
    assert body["clips"] == {"before_s": 5.0, "after_s": 5.0, "max_s": 60.0, "raw": True}
    assert abs(body["now_ms"] - time.time() * 1000) < 5000  # the server's clock, for the timeline
    (cam0,) = body["streams"]
    assert cam0["replay_from_ms"] == NOW_MS - 3_600_000
    assert cam0["raw_replay_from_ms"] is None  # the frames topic holds nothing
    assert cam0["timeline"] == []


def test_the_timeline_marks_a_streams_events_oldest_first(make_settings, cat_frames) -> None:
    app = create_app(make_settings(video_max_events=300))
    state = viewer_state(app)
    state.store.put_frame(cat_frames[0])
    line = LineCounter("cam0", "door")
    events = [line.cross("in", i) for i in range(250)]
    for event in events:
        state.events.put(event)
    (cam0,) = app.test_client().get("/api/streams").get_json()["streams"]
    marks = cam0["timeline"]
    assert len(marks) == 200  # TIMELINE_EVENTS: the newest 200
    assert [m["id"] for m in marks] == [e.id for e in events[-200:]]
    assert marks[0] == {
        "id": events[50].id,
        "t_ms": events[50].capture_ns // 1_000_000,
        "type": "line_cross",
    }
    assert cam0["replay_from_ms"] is None  # not looked at Kafka yet
