"""kva.events: the event document round-trips, its id is stable, and bad input is refused."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kva.events import MAX_EVENT_BYTES, Event, EventError, FrameRef


def crossing(**changes: object) -> Event:
    fields: dict[str, object] = {
        "type": "line_cross",
        "stream": "cam0",
        "seq": 42,
        "capture_ns": 1_700_000_000_000_000_000,
        "track": 7,
        "label": "person",
        "box": (0.1, 0.2, 0.3, 0.6),
        "line": "walkway",
        "direction": "in",
        "counts": {"in": 3, "out": 1},
        "frame": FrameRef("frames", 0, 1234),
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


def test_round_trip() -> None:
    event = crossing()
    assert Event.from_json(event.to_json()) == event
    assert Event.from_json(event.to_json().encode()).frame == FrameRef("frames", 0, 1234)


def test_id_is_stable_and_ignores_the_counts() -> None:
    assert crossing().id == crossing().id
    assert crossing(counts={"in": 99}).id == crossing().id
    assert crossing(track=8).id != crossing().id
    assert crossing(direction="out").id != crossing().id


def test_the_frame_may_come_from_any_kafka_topic_name() -> None:
    longest = FrameRef("t" * 249, 3, 99)  # Kafka's limit
    assert Event.from_json(crossing(frame=longest).to_json()).frame == longest
    with pytest.raises(EventError, match="frame topic"):
        Event.from_json(crossing(frame=FrameRef("t" * 250, 3, 99)).to_json())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(type="explode"), "bad_schema"),
        (lambda d: d.update(stream="../etc"), "bad_schema"),
        (lambda d: d.update(track=-1), "bad_schema"),
        (lambda d: d.update(box=[0, 0, 1]), "bad_schema"),
        (lambda d: d.update(direction="up"), "bad_schema"),
        (lambda d: d.update(counts={str(i): i for i in range(100)}), "bad_schema"),
        (lambda d: d.update(id="forged"), "bad_schema"),
        (lambda d: d.update(v=2), "bad_schema"),
        (
            lambda d: d.update(frame={"topic": "frames", "partition": "x", "offset": 1}),
            "bad_schema",
        ),
    ],
)
def test_bad_fields_are_refused(change, reason: str) -> None:  # type: ignore[no-untyped-def]
    document = json.loads(crossing().to_json())
    change(document)
    with pytest.raises(EventError) as raised:
        Event.from_json(json.dumps(document))
    assert raised.value.reason == reason


def test_empty_oversized_and_deep_documents() -> None:
    for raw, reason in [
        (b"", "empty"),
        (b"x" * (MAX_EVENT_BYTES + 1), "oversized"),
        (b"[" * 10_000, "bad_json"),
        (b"[1]", "bad_json"),
    ]:
        with pytest.raises(EventError) as raised:
            Event.from_json(raw)
        assert raised.value.reason == reason


@given(st.binary(max_size=400) | st.text(max_size=400))
def test_anything_raises_only_event_error(raw: bytes | str) -> None:
    with contextlib.suppress(EventError):
        Event.from_json(raw)
