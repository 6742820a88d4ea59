"""Each frame's objects in DL Streamer Pipeline Server's MQTT metadata format."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from kva.predictions import Classification, Detections, FramePredictions, ModelResult
from kva.settings import KafkaSettings
from kva.sink.config import EventsSettings
from kva.sink.dlstreamer import dlstreamer_document
from testbed.mqtt import Mosquitto, MqttCollector
from tests.sink.conftest import EventFeed, metric, running_sink, sink_settings
from tests.support.wait import wait_for


def _frame(stream: str = "cam0", seq: int = 1) -> FramePredictions:
    return FramePredictions(
        stream=stream,
        seq=seq,
        capture_ns=1_700_000_000_123_456_789,
        published_ns=1_700_000_000_200_000_000,
        width=768,
        height=576,
        models=(
            ModelResult("mobilenet_v2", "ok", Classification((285,), ("Egyptian cat",), (0.7,))),
            ModelResult(
                "person",
                "ok",
                Detections(((0.25, 0.5, 0.375, 1.0), (0.0, 0.0, 0.1, 0.2)), (0.93, 0.61), "person"),
            ),  # fmt: skip
            ModelResult("blazeface", "unavailable", None, error="no replica in rotation"),
        ),
    )


def test_the_document_has_dlstreamers_fields() -> None:
    document = dlstreamer_document(_frame())
    assert document["resolution"] == {"width": 768, "height": 576}
    assert document["source"] == "cam0"
    assert document["timestamp"] == 1_700_000_000_123_456_789
    first, second = document["objects"]
    assert first == {
        "detection": {
            "bounding_box": {"x_min": 0.25, "y_min": 0.5, "x_max": 0.375, "y_max": 1.0},
            "confidence": 0.93,
            "label": "person",
            "label_id": 1,
        },
        "x": 192,
        "y": 288,
        "w": 96,
        "h": 288,
        "roi_type": "person",
    }
    assert second["x"] == 0 and second["w"] == 77 and second["h"] == 115


def test_a_frame_without_detections_has_no_objects() -> None:
    frame = _frame()
    empty = FramePredictions(frame.stream, 2, frame.capture_ns, 0, 640, 480, frame.models[:1])
    assert dlstreamer_document(empty)["objects"] == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"events_dlstreamer_topic": "dl/{stream}"}, "give --mqtt URL too"),
        (
            {"events_mqtt": "mqtt://h", "events_dlstreamer_topic": "dl/{type}"},
            "{type} is not one of {stream}",
        ),
    ],
)
def test_bad_dlstreamer_settings(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        EventsSettings(events_webhook="http://h/x", **values)


def test_frames_objects_are_published_over_mqtt(
    kafka_settings: KafkaSettings, make_topic: Callable[..., str], mosquitto: Mosquitto
) -> None:
    events, predictions = make_topic(), make_topic()
    collector = MqttCollector(mosquitto.port, "dl/#")
    settings = sink_settings(
        kafka_settings,
        events,
        events_mqtt=mosquitto.url,
        events_dlstreamer_topic="dl/{stream}",
        events_predictions_topic=predictions,
    )
    feed = EventFeed(kafka_settings, predictions)
    try:
        with running_sink(settings) as sink:
            # the relay starts at the end of the topic: send until one arrives
            def published() -> bool:
                feed.send_raw(
                    _frame("door", time.monotonic_ns() % 1000).to_json().encode(), b"door"
                )
                return bool(collector.snapshot())

            wait_for(published, 30, "a frame's objects over MQTT", step=0.2)
            feed.send_raw(b"{not json", b"door")
            wait_for(
                lambda: (
                    metric(
                        sink, "kva_events_dlstreamer_frames_dropped_total", reason="bad_document"
                    )
                    == 1
                ),
                30,
                "the bad document counted",
            )
            assert metric(sink, "kva_events_dlstreamer_frames_published_total") >= 1
    finally:
        collector.close()
    message = collector.snapshot()[0]
    assert message.topic == "dl/door"
    document = json.loads(message.payload)
    assert document == dlstreamer_document(_frame("door", 1))
