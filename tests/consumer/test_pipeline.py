"""The consumer end to end on the real broker against fixed-latency test model servers."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from kva.frame import decode_frame
from tests.consumer.conftest import (
    consumer_settings,
    metadata_docs,
    metric,
    running_consumer,
    scrape,
)
from tests.support.frames import jpeg, make_frame
from tests.support.kafka import Feeder, send_frames
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_frames_are_annotated_and_published(
    protocol, kafka_settings, topics, unique_name, model_servers, reader
) -> None:
    classifier = model_servers("mobilenet_v2", "classifier", latency=0.01, labels=["a"] * 300)
    detector = model_servers("blazeface", "detector", latency=0.01, size=(128, 128))
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[
            f"mobilenet_v2={classifier.url(protocol)}",
            f"blazeface={detector.url(protocol)}",
        ],
    )
    out, meta = reader(topics.output), reader(topics.metadata)
    with running_consumer(settings) as service:
        source = make_frame("cam0", 7, jpeg(grey=90))
        send_frames(kafka_settings, topics.input, source)
        wait_for(lambda: out.count() >= 1 and meta.count() >= 1, 20, "output")
        assert scrape(service).status_code == 200
        assert b"kva_consume_frame_age_seconds" in scrape(service).content
        assert scrape(service, "/healthz").status_code == 200
    record = out.snapshot()[0]
    frame = decode_frame(record.key, record.value, record.headers)
    assert (frame.stream_id, frame.sequence, frame.capture_ns) == ("cam0", 7, source.capture_ns)
    predictions = json.loads(frame.attributes["kva-predictions"])
    document = metadata_docs(meta.snapshot())[0]
    assert document == predictions
    assert document["stream"] == "cam0" and document["seq"] == 7
    by_model = {m["model"]: m for m in document["models"]}
    assert by_model["mobilenet_v2"]["status"] == "ok"
    assert by_model["mobilenet_v2"]["kind"] == "classifier"
    assert by_model["mobilenet_v2"]["replica"] == classifier.url(protocol)
    # the test server answers class id = mean grey of the 224x224 image it received
    top = by_model["mobilenet_v2"]["classes"][0]
    assert top["score"] == pytest.approx(0.6)
    assert top["label"] == "a"
    assert classifier.last_image_shape == (224, 224, 3)
    assert detector.last_image_shape == (128, 128, 3)
    boxes = by_model["blazeface"]["detections"]
    assert [d["box"] for d in boxes] == [[0.25, 0.25, 0.75, 0.75]]
    image_in = cv2.imdecode(np.frombuffer(source.data, np.uint8), cv2.IMREAD_COLOR)
    image_out = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)
    assert image_out.shape == image_in.shape
    diff = np.abs(image_out.astype(int) - image_in.astype(int)).max(axis=2) > 40
    # the box edge at x = 25% of the width is drawn; the untouched middle-right is not
    assert diff[120:240, 158:162].mean() > 0.5
    assert diff[200:260, 500:560].mean() < 0.05


def test_passthrough_republishes_frames_unchanged(
    kafka_settings, topics, unique_name, reader
) -> None:
    settings = consumer_settings(kafka_settings, topics, unique_name, consume_passthrough=True)
    out = reader(topics.output)
    with running_consumer(settings) as service:
        source = make_frame("cam1", 3, b"not even a jpeg")
        send_frames(kafka_settings, topics.input, source)
        wait_for(lambda: out.count() >= 1, 20, "output")
        assert metric(service, "kva_consume_frames_out_total", {"stream": "cam1"}) == 1
    frame = out.snapshot()[0].frame()
    assert frame.data == source.data and frame.sequence == 3
    assert "kva-consumed-ns" in frame.attributes


def test_steady_stream_flows(kafka_settings, topics, unique_name, model_servers, reader) -> None:
    server = model_servers(latency=0.02)
    settings = consumer_settings(
        kafka_settings, topics, unique_name, consume_models=[f"m={server.url()}"]
    )
    out = reader(topics.output)
    with running_consumer(settings) as service:
        feeder = Feeder(kafka_settings, topics.input, fps=30).start()
        try:
            wait_for(lambda: out.count() >= 40, 20, "40 frames out")
        finally:
            feeder.stop()
        assert (
            metric(
                service,
                "kva_consume_frames_dropped_total",
                {"stream": "cam0", "reason": "decode_error"},
            )
            == 0
        )
    seqs = [r.frame().sequence for r in out.snapshot()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
