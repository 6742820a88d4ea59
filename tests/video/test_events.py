"""The viewer's event store and event handler, without a broker: bounds, order, counts,
duplicates, and corrupt records counted by reason and skipped."""

from __future__ import annotations

import json

import pytest

from kva.events import MAX_EVENT_BYTES
from kva.kafka import Record
from kva.video.event_reader import EventHandler
from kva.video.events import MAX_COUNTERS, EventStore
from kva.video.state import viewer_state
from tests.video.events import LineCounter, zone_event

TOPIC = "events"


def test_a_stream_keeps_its_newest_events_newest_first() -> None:
    store = EventStore(max_events=5)
    line = LineCounter("cam0", "walkway")
    for track in range(12):
        assert store.put(line.cross("in", track)) == "kept"
    newest = store.newest(100, "cam0")
    assert [e["track"] for e in newest] == [11, 10, 9, 8, 7]
    assert store.newest(2) == newest[:2]
    assert newest[0]["counts"] == {"in": 12, "out": 0}


def test_the_same_event_twice_is_kept_once() -> None:
    store = EventStore()
    event = LineCounter("cam0", "walkway").cross("out", 3)
    assert store.put(event) == "kept"
    assert store.put(event) == "duplicate"
    assert len(store.newest(10)) == 1


def test_an_event_older_than_a_full_feed_is_not_kept() -> None:
    store = EventStore(max_events=2)
    for seq, t in enumerate((100, 200)):
        store.put(zone_event("cam0", "door", "zone_enter", seq, {"inside": 1, "entered": 1}, t))
    late = zone_event("cam0", "door", "zone_exit", 9, {"inside": 0, "entered": 1}, 50)
    assert store.put(late) == "too_old"
    assert [e["capture_ns"] for e in store.newest(5)] == [200, 100]


def test_counts_are_those_of_the_latest_event_of_each_line_and_zone() -> None:
    store = EventStore()
    line = LineCounter("cam0", "walkway")
    for direction in ("in", "in", "out"):
        store.put(line.cross(direction, 1))
    store.put(zone_event("cam0", "bench", "zone_enter", 4, {"inside": 2, "entered": 5}, 300))
    store.put(zone_event("cam0", "bench", "zone_exit", 5, {"inside": 1, "entered": 5}, 400))
    # a late event from before the newest one does not wind the count back
    store.put(zone_event("cam0", "bench", "zone_enter", 6, {"inside": 1, "entered": 4}, 200))
    summary = store.summary("cam0", 3)
    assert summary is not None
    assert [(c["name"], c["counts"]) for c in summary["lines"]] == [
        ("walkway", {"in": 2, "out": 1})
    ]
    assert [(c["name"], c["counts"]) for c in summary["zones"]] == [
        ("bench", {"inside": 1, "entered": 5})
    ]
    assert len(summary["recent"]) == 3
    assert store.summary("elsewhere", 3) is None


def test_counters_per_stream_are_bounded() -> None:
    store = EventStore(max_events=1000)
    for i in range(MAX_COUNTERS + 10):
        store.put(LineCounter("cam0", f"line{i:02d}").cross("in", i))
    summary = store.summary("cam0", 1)
    assert summary is not None
    names = [c["name"] for c in summary["lines"]]
    assert len(names) == MAX_COUNTERS
    assert "line00" not in names and f"line{MAX_COUNTERS + 9}" in names  # oldest made room


def test_the_quietest_stream_makes_room_for_a_new_one() -> None:
    now = [1000.0]
    store = EventStore(max_streams=2, clock=lambda: now[0])
    for stream in ("a", "b", "c"):
        now[0] += 1
        store.put(LineCounter(stream, "l").cross("in", 1))
    assert store.stream_ids() == ["b", "c"]
    assert store.evicted == 1


def test_events_of_all_streams_are_merged_newest_first() -> None:
    store = EventStore()
    for t, stream in enumerate(("a", "b", "a", "c", "b")):
        store.put(zone_event(stream, "z", "zone_enter", t, {"inside": 1}, 1000 + t))
    assert [e["stream"] for e in store.newest(10)] == ["b", "c", "a", "b", "a"]
    assert [e["stream"] for e in store.newest(2)] == ["b", "c"]
    assert [e["capture_ns"] for e in store.newest(10, "a")] == [1002, 1000]


# -- the handler: what the reader does with each record --------------------------------------------
def _record(value: bytes | None, offset: int = 0) -> Record:
    return Record(TOPIC, 0, offset, b"cam0", value)


def _good() -> str:
    return LineCounter("cam0", "walkway").cross("in", 7).to_json()


def _tampered(**changes: object) -> bytes:
    document = json.loads(_good())
    document.update(changes)
    return json.dumps(document).encode()


CORRUPT = [
    ("no value", None, "empty"),
    ("empty", b"", "empty"),
    ("oversized", b"{" + b" " * MAX_EVENT_BYTES + b"}", "oversized"),
    ("not JSON", b"{not json", "bad_json"),
    ("not UTF-8", b"\xff\xfe\x00", "bad_json"),
    ("a list", b"[1, 2]", "bad_json"),
    ("another version", _tampered(v=2), "bad_schema"),
    ("unknown type", _tampered(type="teleport"), "bad_schema"),
    ("bad stream id", _tampered(stream="../etc"), "bad_schema"),
    ("id of another event", _tampered(track=8), "bad_schema"),
    ("count not a number", _tampered(counts={"in": "1"}), "bad_schema"),
    ("negative track", _tampered(track=-1), "bad_schema"),
]


@pytest.mark.parametrize(("value", "reason"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_a_corrupt_event_is_counted_by_reason_and_skipped(app, value, reason) -> None:
    state = viewer_state(app)
    handler = EventHandler(state.events, state.metrics)
    handler.handle(_record(value))
    handler.handle(_record(_good().encode(), 1))
    registry = state.metrics.registry
    labels = {"topic": TOPIC, "reason": reason}
    assert registry.get_sample_value("kva_video_messages_rejected_total", labels) == 1.0
    assert [e["track"] for e in state.events.newest(10)] == [7]  # the good one still arrives
    kept = {"stream": "cam0", "type": "line_cross"}
    assert registry.get_sample_value("kva_video_events_received_total", kept) == 1.0


def test_a_duplicate_record_is_counted(app) -> None:
    state = viewer_state(app)
    handler = EventHandler(state.events, state.metrics)
    good = _good().encode()
    handler.handle(_record(good, 0))
    handler.handle(_record(good, 1))
    labels = {"topic": TOPIC, "reason": "duplicate"}
    assert state.metrics.registry.get_sample_value("kva_video_messages_rejected_total", labels) == 1
    assert len(state.events.newest(10)) == 1
