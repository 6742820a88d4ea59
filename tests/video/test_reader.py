"""The record handler (Kafka records -> store) without a broker: good and bad messages."""

from __future__ import annotations

import logging
import time

import pytest

from kva.frame import encode_frame
from kva.kafka import Record
from kva.predictions import Classification, Detections, FramePredictions, ModelResult
from kva.video.app import create_app
from kva.video.reader import RecordHandler, unique_group_id
from kva.video.state import viewer_state
from tests.support.frames import make_frame
from tests.video.frames import photo_frames


@pytest.fixture
def handler_state(make_settings):
    settings = make_settings(video_topic="frames", video_metadata_topic="meta", video_max_streams=3)
    state = viewer_state(create_app(settings))
    return RecordHandler(settings, state.store, state.metrics), state


def _record(topic, key, value, headers=()) -> Record:
    return Record(topic, 0, 1, key, value, list(headers))


def _frame_record(frame) -> Record:
    key, value, headers = encode_frame(frame)
    return _record("frames", key, value, headers)


def _rejected(state, topic, reason) -> float:
    value = state.metrics.registry.get_sample_value(
        "kva_video_messages_rejected_total", {"topic": topic, "reason": reason}
    )
    return value or 0.0


def test_frames_and_metadata_reach_the_store(handler_state) -> None:
    handler, state = handler_state
    frame = photo_frames("chelsea", "cam0", 1)[0]
    handler.handle(_frame_record(frame))
    classes = Classification((281,), ("tabby",), (0.9,))
    meta = FramePredictions("cam0", 0, 1, 2, 640, 480, (ModelResult("m", "ok", classes),))
    handler.handle(_record("meta", None, meta.to_json().encode()))
    slot = state.store.get("cam0")
    assert slot.current.frame == frame
    assert slot.predictions.document == meta


def test_header_predictions_are_used(handler_state) -> None:
    handler, state = handler_state
    faces = Detections(((0.1, 0.1, 0.2, 0.2),), (0.9,), "face")
    doc = FramePredictions("astro", 5, 2, 3, 2, 2, (ModelResult("blazeface", "ok", faces),))
    frame = make_frame("astro", 5, b"\xff\xd8x", 2, 2, {"kva-predictions": doc.to_json()})
    handler.handle(_frame_record(frame))
    predictions = state.store.get("astro").predictions
    assert predictions.source == "header" and predictions.document == doc


@pytest.mark.parametrize(
    "record,topic,reason",
    [
        (_record("frames", b"cam0", b"jpeg", [("kva-size", b"9")]), "frames", "size_mismatch"),
        (_record("frames", b"cam0", b"", []), "frames", "empty"),
        (_record("frames", None, b"jpeg", []), "frames", "missing_key"),
        (_record("frames", b"bad key", b"jpeg", []), "frames", "bad_key"),
        (_record("frames", b"cam0", b"jpeg", [("kva-size", b"4")]), "frames", "missing_header"),
        (_record("meta", None, b"{broken"), "meta", "bad_json"),
        (_record("meta", None, b'{"stream": "../x"}'), "meta", "bad_stream"),
        (_record("meta", None, b""), "meta", "empty"),
    ],
)
def test_bad_messages_are_counted_by_reason(handler_state, record, topic, reason, caplog) -> None:
    handler, state = handler_state
    with caplog.at_level(logging.WARNING, logger="kva.video.reader"):
        handler.handle(record)
        handler.handle(record)
    assert _rejected(state, topic, reason) == 2
    assert len(state.store) == 0
    # logged once per reason per interval, not once per message
    assert len([r for r in caplog.records if reason in r.getMessage()]) == 1


def test_oversized_frames_are_refused(make_settings) -> None:
    settings = make_settings(video_topic="frames", video_max_frame_bytes=2048)
    state = viewer_state(create_app(settings))
    handler = RecordHandler(settings, state.store, state.metrics)
    handler.handle(_frame_record(make_frame("cam0", 0, b"x" * 4096, 2, 2)))
    assert _rejected(state, "frames", "oversized") == 1


def test_too_many_streams_are_counted(handler_state) -> None:
    handler, state = handler_state
    for i in range(4):
        handler.handle(_frame_record(make_frame(f"cam{i}", 0, b"\xff\xd8", 1, 1)))
    assert len(state.store) == 3
    assert _rejected(state, "frames", "too_many_streams") == 1


def test_group_ids_are_unique_per_viewer() -> None:
    first, second = unique_group_id(), unique_group_id()
    assert first != second and first.startswith("kva-video-")


def test_a_frame_from_the_future_is_refused(handler_state) -> None:
    """Issue 15, defect 11: it showed an age of -999999993 s and never looked stale."""
    handler, state = handler_state
    ahead = make_frame("cam0", 1, b"\xff\xd8x").replace(capture_ns=time.time_ns() + 10**18)
    handler.handle(_frame_record(ahead))
    assert state.store.get("cam0") is None
    assert _rejected(state, "frames", "future") == 1


def test_an_older_frame_is_not_the_newest_but_a_restarted_producer_is(handler_state) -> None:
    """Issue 15, defect 11: the same producer's older seq is refused; seq 0 again, captured
    later (the producer restarted), is shown."""
    handler, state = handler_state
    now = time.time_ns()
    newest = make_frame("cam0", 7, b"\xff\xd8x").replace(capture_ns=now)
    handler.handle(_frame_record(newest))
    for seq, capture in ((6, now - 10**8), (7, now)):
        handler.handle(_frame_record(newest.replace(sequence=seq, capture_ns=capture)))
    assert state.store.get("cam0").current.frame == newest
    assert _rejected(state, "frames", "older") == 2
    restarted = newest.replace(sequence=0, capture_ns=now + 10**6)
    handler.handle(_frame_record(restarted))
    assert state.store.get("cam0").current.frame == restarted


def test_an_exception_while_handling_a_record_is_counted_and_the_reader_goes_on(
    handler_state, monkeypatch, caplog
) -> None:
    handler, state = handler_state

    def boom(_frame):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(state.store, "is_older", boom)
    record = _frame_record(make_frame("cam0", 1, b"\xff\xd8x"))
    for _ in range(3):
        try:
            handler.handle(record)
        except Exception as exc:  # noqa: BLE001 - what KafkaReader._run does
            handler.failed(record, exc)
    value = state.metrics.registry.get_sample_value
    assert value("kva_video_record_errors_total", {"type": "ZeroDivisionError"}) == 3
    assert _rejected(state, "frames", "internal_error") == 3
    logged = [r for r in caplog.records if "ZeroDivisionError" in r.getMessage()]
    assert len(logged) == 1 and "a bug" in logged[0].getMessage()  # rate-limited, traceback
