"""Events end to end: a face moving up and down across a counting line and through a zone →
Kafka → kva consume (tracking, the camera file's line and zone) → a real ``kva serve``
(blazeface) → ``line_cross`` and zone events on the events topic."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from kva.events import Event
from kva.launcher.layout import write_model_config
from tests.consumer.conftest import consumer_settings, metadata_docs, metric, running_consumer
from tests.models.expectations import ASTRONAUT_FACE_PX, photo
from tests.support.kafka import Feeder
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The face's bottom edge sweeps from SWEEP[0] to SWEEP[1] (pixels of 512) and back.
SWEEP = (110, 360)
PERIOD = 24  # frames per sweep down and up
LINE_Y = 0.5
CAMERA_FILE = f"""
cameras:
  - id: cam0
    source: demo
    lines:
      - name: middle
        points: [[0.0, {LINE_Y}], [1.0, {LINE_Y}]]
    zones:
      - name: lower
        points: [[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]]
        loiter_s: 600
"""


@pytest.fixture(scope="module")
@starts_processes
def replica(built_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("events-serve")
    config = write_model_config(built_models, folder / "models.config")
    started = ServeProcess(["--model_config_file", str(config)], folder / "serve.log").start()
    yield started
    started.close()


def moving_face(seq: int) -> bytes:
    """The astronaut photo shifted vertically on a grey canvas: frame ``seq`` of the sweep."""
    phase = seq % PERIOD
    half = PERIOD // 2
    t = phase / half if phase < half else (PERIOD - phase) / half
    bottom = round(SWEEP[0] + t * (SWEEP[1] - SWEEP[0]))
    dy = bottom - round(ASTRONAUT_FACE_PX[3])
    image = cv2.cvtColor(photo("astronaut"), cv2.COLOR_RGB2BGR)
    canvas = np.full_like(image, 120)
    if dy >= 0:
        canvas[dy:] = image[: image.shape[0] - dy]
    else:
        canvas[:dy] = image[-dy:]
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def test_a_face_crossing_a_line_raises_events_on_the_events_topic(
    replica, kafka_settings, topics, make_topic, unique_name, reader, tmp_path, caplog
) -> None:
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(CAMERA_FILE)
    events_topic = make_topic(suffix="events")
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[f"blazeface={replica.model_url('blazeface', 'v1')}"],
        consume_camera_file=cameras,
        consume_events_topic=events_topic,
        consume_camera_file_poll=0.2,
    )
    events_reader, meta = reader(events_topic), reader(topics.metadata)

    def crossings() -> list[Event]:
        docs = [Event.from_json(r.value) for r in events_reader.snapshot()]
        return [e for e in docs if e.type == "line_cross"]

    with running_consumer(settings) as service:
        feeder = Feeder(kafka_settings, topics.input, fps=10, make_data=moving_face).start()
        try:
            wait_for(
                lambda: {e.direction for e in crossings()} == {"in", "out"},
                60,
                "line crossings in both directions",
            )
            # a malformed zone in an edit: refused, naming the camera; the line keeps counting
            with caplog.at_level(logging.ERROR):
                cameras.write_text(CAMERA_FILE.replace("[1.0, 0.6], [1.0, 1.0]", "[1.0, 1.6]"))
                refusal = "camera 'cam0', zone 0 'lower': point 1 [1.0, 1.6] is outside 0..1"
                wait_for(lambda: refusal in caplog.text, 10, "the refusal")
            assert "keeping the current zones and lines" in caplog.text
            counted = len(crossings())
            wait_for(lambda: len(crossings()) >= counted + 2, 30, "more crossings after it")
        finally:
            feeder.stop()
        in_metric = metric(
            service,
            "kva_consume_line_crossings_total",
            {"stream": "cam0", "line": "middle", "direction": "in"},
        )
    records = events_reader.snapshot()
    assert all(r.key == b"cam0" for r in records)
    events = [Event.from_json(r.value) for r in records]
    assert len({e.id for e in events}) == len(events)
    downs = [e for e in events if e.type == "line_cross" and e.direction == "in"]
    assert downs and in_metric >= 1
    first = downs[0]
    assert first.stream == "cam0" and first.line == "middle"
    assert first.label in {"face", "blazeface"}  # the class name, else the model's
    assert dict(first.counts) == {"in": 1, "out": 0}
    # the event names the frame's record in the input topic, and that frame's document
    # carries the same track on a box whose bottom edge is below the line
    assert first.frame is not None and first.frame.topic == topics.input
    docs = {d["seq"]: d for d in metadata_docs(meta.snapshot())}
    faces = docs[first.seq]["models"][0]["detections"]
    assert any(f.get("track") == first.track and f["box"][3] > LINE_Y for f in faces), faces
    kinds = {e.type for e in events}
    assert {"zone_enter", "zone_exit"} <= kinds, kinds
    exits = [e for e in events if e.type == "zone_exit"]
    assert all(e.zone == "lower" and e.dwell_s is not None and e.dwell_s > 0 for e in exits)
    tracked = [f for d in docs.values() for f in d["models"][0]["detections"] if "track" in f]
    assert tracked, "no track ids in the predictions documents"
    assert json.loads(records[0].value)["v"] == 1
