"""End to end with the real models: photos → Kafka → kva consume → real ``kva serve`` replicas
(mobilenet_v2, blazeface and person built by the model builder) → annotated frames and
predictions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from kva.frame import Frame, decode_frame
from tests.consumer.conftest import consumer_settings, metadata_docs, metric, running_consumer
from tests.models.expectations import (
    ASTRONAUT_FACE_PX,
    ASTRONAUT_PERSON_PX,
    CLASSIFICATION_CASES,
    PERSON_MIN_IOU,
    PERSON_SCORE,
    iou,
    photo,
)
from tests.support.kafka import Feeder, send_frames
from tests.support.process import starts_processes
from tests.support.serve import ServeProcess, serve_built_models
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PHOTOS = ("chelsea", "coffee", "astronaut")


@pytest.fixture(scope="module")
@starts_processes
def replicas(
    built_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServeProcess]]:
    started = serve_built_models(built_models, tmp_path_factory.mktemp("consumer-serve"))
    yield started
    for replica in started:
        replica.close()


def _photo_jpeg(name: str) -> tuple[bytes, int, int]:
    image = cv2.cvtColor(photo(name), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return data.tobytes(), image.shape[1], image.shape[0]


def _models(
    replicas: list[ServeProcess],
    protocol: str,
    models: tuple[str, ...] = ("mobilenet_v2", "blazeface"),
) -> list[str]:
    return [f"{m}={','.join(r.model_url(m, protocol) for r in replicas)}" for m in models]


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_photos_are_recognised_and_annotated(
    protocol, replicas, kafka_settings, topics, unique_name, reader
) -> None:
    settings = consumer_settings(
        kafka_settings, topics, unique_name, consume_models=_models(replicas, protocol)
    )
    out, meta = reader(topics.output), reader(topics.metadata)
    sources: dict[str, Frame] = {}
    with running_consumer(settings):
        for seq, name in enumerate(PHOTOS):
            data, width, height = _photo_jpeg(name)
            sources[name] = Frame(name, seq, time.time_ns(), width, height, data)
            send_frames(kafka_settings, topics.input, sources[name])
        wait_for(lambda: meta.count() >= 3 and out.count() >= 3, 30, "the photos processed")
    docs = {d["stream"]: d for d in metadata_docs(meta.snapshot())}
    for name in ("chelsea", "coffee"):
        classifier = docs[name]["models"][0]
        assert classifier["model"] == "mobilenet_v2" and classifier["status"] == "ok"
        assert classifier["classes"][0]["label"] in CLASSIFICATION_CASES[name], classifier
        assert docs[name]["models"][1]["detections"] == [], "no face on the cat or the coffee"
    faces = docs["astronaut"]["models"][1]["detections"]
    assert len(faces) == 1 and faces[0]["score"] > 0.5
    assert faces[0]["label"] == "face", "the detector's one label, from its labels.json"
    expected = [v / 512 for v in ASTRONAUT_FACE_PX]
    assert iou(faces[0]["box"], expected) > 0.5, faces
    for record in out.snapshot():
        frame = decode_frame(record.key, record.value, record.headers)
        source = sources[frame.stream_id]
        assert frame.capture_ns == source.capture_ns
        before = cv2.imdecode(np.frombuffer(source.data, np.uint8), cv2.IMREAD_COLOR)
        after = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)
        changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 60
        # the label panel (top left) is drawn; the lower right quarter is untouched
        assert changed[:60, :150].mean() > 0.1, frame.stream_id
        h, w = changed.shape
        assert changed[h // 2 : h * 4 // 5, w * 3 // 5 :].mean() < 0.01, frame.stream_id
        if frame.stream_id == "astronaut":
            x0, y0, x1, y1 = (round(v) for v in ASTRONAUT_FACE_PX)
            assert changed[y0 + 20 : y1 - 20, x0 - 6 : x0 + 6].any(axis=1).mean() > 0.8


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_people_are_detected_labelled_and_drawn(
    protocol, replicas, kafka_settings, topics, unique_name, reader
) -> None:
    """The person model through the consumer's detector path, unchanged: label ``person`` from
    the model's labels, boxes normalised to the frame, drawn; nobody on the cat or the coffee."""
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=_models(replicas, protocol, ("person",)),
    )
    out, meta = reader(topics.output), reader(topics.metadata)
    sources: dict[str, Frame] = {}
    with running_consumer(settings):
        for seq, name in enumerate(PHOTOS):
            data, width, height = _photo_jpeg(name)
            sources[name] = Frame(name, seq, time.time_ns(), width, height, data)
            send_frames(kafka_settings, topics.input, sources[name])
        wait_for(lambda: meta.count() >= 3 and out.count() >= 3, 30, "the photos processed")
    docs = {d["stream"]: d for d in metadata_docs(meta.snapshot())}
    for name in ("chelsea", "coffee"):
        (result,) = docs[name]["models"]
        assert result["model"] == "person" and result["status"] == "ok", result
        assert result["kind"] == "detector" and result["detections"] == [], result
    (result,) = docs["astronaut"]["models"]
    (person,) = result["detections"]
    assert person["label"] == "person" and person["score"] >= PERSON_SCORE, person
    assert iou(person["box"], [v / 512 for v in ASTRONAUT_PERSON_PX]) >= PERSON_MIN_IOU, person
    frame = next(
        decode_frame(r.key, r.value, r.headers)
        for r in out.snapshot()
        if decode_frame(r.key, r.value, r.headers).stream_id == "astronaut"
    )
    before = cv2.imdecode(np.frombuffer(sources["astronaut"].data, np.uint8), cv2.IMREAD_COLOR)
    after = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 60
    x1 = round(person["box"][2] * 512)  # the box's right edge is drawn down her side
    y0, y1 = round(person["box"][1] * 512), round(person["box"][3] * 512)
    assert changed[y0 + 40 : y1 - 20, x1 - 6 : x1 + 6].any(axis=1).mean() > 0.8


def test_replicas_share_load_survive_a_kill_and_come_back(
    replicas, kafka_settings, topics, unique_name, reader
) -> None:
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=_models(replicas, "v2"),
        consume_probe_interval=0.2,
    )
    data, width, height = _photo_jpeg("astronaut")
    meta = reader(topics.metadata)
    a, b = replicas

    def served(service, replica: ServeProcess) -> float:
        labels = {"model": "mobilenet_v2", "replica": replica.model_url("mobilenet_v2", "v2")}
        return metric(service, "kva_consume_inference_seconds_count", labels)

    with running_consumer(settings) as service:
        feeder = Feeder(kafka_settings, topics.input, fps=20, make_data=lambda _s: data)
        feeder.start()
        try:
            wait_for(lambda: meta.count() >= 60, 30, "frames to flow")
            counts = served(service, a), served(service, b)
            assert min(counts) / sum(counts) >= 0.4, counts
            a.kill()
            killed = time.time()
            wait_for(lambda: time.time() > killed + 2, 5, "2 s of frames after the kill")
            stamps = sorted(d["published_ns"] / 1e9 for d in metadata_docs(meta.snapshot()))
            after = [t for t in stamps if t > killed - 1]
            gaps = [y - x for x, y in zip(after, after[1:], strict=False)]
            assert after and after[-1] > killed + 1.5, "frames stopped after the kill"
            assert max(gaps) < 1.0, f"{max(gaps):.2f}s without a frame after the kill"
            a.start()
            before = served(service, a)
            wait_for(
                lambda: served(service, a) > before + 10, 20, "the restarted replica to be used"
            )
        finally:
            feeder.stop()
            if not a.alive():
                a.start()


def test_all_replicas_down_frames_pass_marked_then_recover(
    replicas, kafka_settings, topics, unique_name, reader
) -> None:
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=_models(replicas, "v1"),
        consume_probe_interval=0.2,
    )
    data, _width, _height = _photo_jpeg("coffee")
    meta = reader(topics.metadata)

    def statuses() -> set[str]:
        docs = metadata_docs(meta.snapshot()[-3:])
        return {m["status"] for d in docs for m in d["models"]}

    with running_consumer(settings):
        feeder = Feeder(kafka_settings, topics.input, fps=10, make_data=lambda _s: data).start()
        try:
            wait_for(lambda: statuses() == {"ok"}, 30, "annotated frames")
            for replica in replicas:
                replica.kill()
            wait_for(lambda: statuses() == {"unavailable"}, 15, "'model unavailable' frames")
            for replica in replicas:
                replica.start()
            wait_for(lambda: statuses() == {"ok"}, 30, "the recovery")
        finally:
            feeder.stop()
            for replica in replicas:
                if not replica.alive():
                    replica.start()
