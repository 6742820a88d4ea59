"""``/api/events``, the counts in ``/api/streams`` and the page's escaping, through Flask's
test client."""

from __future__ import annotations

import pytest

from kva.video.app import create_app
from kva.video.routes.api import FEED_EVENTS, MAX_EVENTS
from kva.video.state import viewer_state
from tests.video.events import HOSTILE_LABEL, LineCounter, zone_event


@pytest.fixture
def client(make_settings, cat_frames):
    app = create_app(make_settings(video_max_events=200))
    state = viewer_state(app)
    state.store.put_frame(cat_frames[0])  # cam0 has frames; cam1 only events
    line = LineCounter("cam0", "walkway")
    for i in range(12):
        state.events.put(line.cross("in" if i % 3 else "out", i))
    state.events.put(zone_event("cam0", "bench", "zone_enter", 20, {"inside": 1, "entered": 1}))
    state.events.put(zone_event("cam1", "gate", "loiter", 21, {"inside": 1}, dwell_s=31.5))
    return app.test_client()


def test_api_events_lists_all_streams_newest_first(client) -> None:
    body = client.get("/api/events").get_json()
    assert body["topic"] == "events"
    events = body["events"]
    assert len(events) == 14
    assert [e["track"] for e in events[:3]] == [21, 20, 11]
    times = [e["capture_ns"] for e in events]
    assert times == sorted(times, reverse=True)
    first = events[0]
    assert first["type"] == "loiter" and first["dwell_s"] == 31.5 and first["stream"] == "cam1"
    assert len(first["id"]) == 24 and first["received_s"] > 0


def test_api_events_filters_by_stream_and_limits(client) -> None:
    only = client.get("/api/events?stream=cam1").get_json()["events"]
    assert [e["zone"] for e in only] == ["gate"]
    assert client.get("/api/events?stream=nobody").get_json()["events"] == []
    limited = client.get("/api/events?stream=cam0&limit=3").get_json()
    assert limited["limit"] == 3
    assert [e["track"] for e in limited["events"]] == [20, 11, 10]
    assert client.get(f"/api/events?limit={MAX_EVENTS * 10}").get_json()["limit"] == MAX_EVENTS


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "limit '0' is not a whole number from 1"),
        ("limit=-5", "limit '-5' is not a whole number from 1"),
        ("limit=ten", "limit 'ten' is not a whole number from 1"),
        ("limit=", "limit '' is not a whole number from 1"),
        ("stream=a/b", "invalid stream id 'a/b'"),
    ],
)
def test_api_events_refuses_bad_queries(client, query, message) -> None:
    response = client.get(f"/api/events?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_api_streams_has_the_counts_and_the_newest_events(client) -> None:
    (stream,) = client.get("/api/streams").get_json()["streams"]
    events = stream["events"]
    (line,) = events["lines"]
    assert line["name"] == "walkway"
    assert line["counts"] == {"in": 8, "out": 4}
    (zone,) = events["zones"]
    assert (zone["name"], zone["counts"]) == ("bench", {"inside": 1, "entered": 1})
    assert len(events["recent"]) == FEED_EVENTS
    assert events["recent"][0]["zone"] == "bench"


def test_a_stream_without_events_has_none(make_settings, cat_frames) -> None:
    app = create_app(make_settings())
    viewer_state(app).store.put_frame(cat_frames[0])
    (stream,) = app.test_client().get("/api/streams").get_json()["streams"]
    assert stream["events"] is None


def test_a_hostile_label_never_reaches_the_page_as_html(make_settings, cat_frames) -> None:
    app = create_app(make_settings())
    state = viewer_state(app)
    state.store.put_frame(cat_frames[0])
    state.events.put(LineCounter("cam0", "<b>line</b>").cross("in", 1, label=HOSTILE_LABEL))
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    assert "<img src=x" not in page and "<b>line" not in page
    assert "\\u003cimg src=x onerror" in page  # the initial state, escaped for <script>
    api = client.get("/api/events")
    assert api.mimetype == "application/json"
    assert api.get_json()["events"][0]["label"] == HOSTILE_LABEL  # data, kept as it was
    script = client.get("/static/viewer.js").get_data(as_text=True)
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
