"""The viewer on the real broker: frames and predictions produced to Kafka show up
in /api/streams, on the page and over MJPEG; bad messages are counted; `kva video` runs."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from kva.kafka import FrameProducer
from kva.predictions import Classification, Detections, FramePredictions, ModelResult
from kva.video.app import create_app
from kva.video.config import VideoSettings
from kva.video.reader import KafkaReader
from kva.video.state import viewer_state
from tests.video.frames import LABELS, photo_frames
from tests.video.mjpeg_client import MjpegClient
from tests.video.procs import free_port, kva_video

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _metadata(stream: str, seq: int, capture_ns: int, label: str, score: float) -> bytes:
    classes = Classification((1, 2), (label, "other"), (score, 0.01))
    result = ModelResult("mobilenet_v2", "ok", classes, latency_s=0.009)
    return FramePredictions(stream, seq, capture_ns, capture_ns, 0, 0, (result,)).to_json().encode()


class Publisher:
    """Produces annotated frames (and their metadata) at ``fps`` until stopped."""

    def __init__(self, settings, frame_topic: str, meta_topic: str, fps: float = 10) -> None:
        self._producer = FrameProducer(settings)
        self._frames = {
            "cat": photo_frames("chelsea", "cat", 4),
            "astro": photo_frames("astronaut", "astro", 4, 320, 320),
        }
        self._topics = (frame_topic, meta_topic)
        self._fps = fps
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def __enter__(self) -> Publisher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._producer.flush(10)

    def _run(self) -> None:
        frame_topic, meta_topic = self._topics
        faces = Detections(((0.2, 0.2, 0.4, 0.4),), (0.97,), "face")
        face = FramePredictions("astro", 0, 0, 0, 0, 0, (ModelResult("blazeface", "ok", faces),))
        while not self._stop.wait(1 / self._fps):
            seq = self.sent
            now = time.time_ns()
            cat = self._frames["cat"][seq % 4].replace(sequence=seq, capture_ns=now)
            self._producer.send_frame(frame_topic, cat)
            self._producer.send(
                meta_topic, b"cat", _metadata("cat", seq, now, LABELS["chelsea"], 0.83)
            )
            astro = self._frames["astro"][seq % 4].replace(
                sequence=seq, capture_ns=now, attributes={"kva-predictions": face.to_json()}
            )
            self._producer.send_frame(frame_topic, astro)
            self._producer.poll(0)
            self.sent += 1


def _streams(get) -> dict:
    return {s["id"]: s for s in get("/api/streams").json()["streams"]}


def test_frames_and_predictions_from_kafka_reach_api_page_and_mjpeg(
    kafka_settings, make_topic, serve
) -> None:
    frames, meta = make_topic(partitions=2, suffix="annotated"), make_topic(suffix="predictions")
    settings = VideoSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=frames,
        video_metadata_topic=meta,
        video_port=0,
        video_threads=16,
    )
    app = create_app(settings)
    state = viewer_state(app)
    reader = KafkaReader(settings, state.store, state.metrics).start()
    server = serve(app)

    def get(path: str) -> requests.Response:
        return requests.get(server.url + path, timeout=5)

    try:
        with Publisher(kafka_settings, frames, meta):

            def ready():
                s = _streams(get)
                return (
                    s
                    if {"cat", "astro"} <= set(s)
                    and s["cat"]["predictions"]
                    and s["astro"]["predictions"]
                    else None
                )

            streams = _wait_for(ready, 60, "both streams with predictions")
            cat, astro = streams["cat"], streams["astro"]
            assert (cat["width"], cat["height"]) == (320, 240)
            assert (astro["width"], astro["height"]) == (320, 320)
            assert cat["predictions"]["source"] == "metadata"
            assert cat["predictions"]["models"][0]["labels"][0] == {
                "label": "tabby cat",
                "score": 0.83,
            }
            assert astro["predictions"]["source"] == "header"
            assert astro["predictions"]["models"][0]["kind"] == "detection"
            assert 0 <= cat["age_seconds"] < 5
            _wait_for(lambda: _streams(get)["cat"]["fps"] > 5, 10, "a live fps")
            assert "tabby cat" in get("/").text  # the page starts with the current state
            client = MjpegClient(server.host, server.port, "/streams/cat.mjpg").connect()
            try:
                bodies = {client.read_part().body for _ in range(5)}
            finally:
                client.close()
            assert len(bodies) >= 2  # it is live: the frames change
            metrics = get("/metrics").text
            assert 'kva_video_frames_received_total{stream="cat"}' in metrics
    finally:
        reader.stop()
    assert reader.failed is None


def test_two_viewers_each_see_every_partition(kafka_settings, make_topic) -> None:
    frames = make_topic(partitions=4, suffix="annotated")
    settings = VideoSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=frames,
        video_metadata_topic="",
    )
    stores, readers = [], []
    for _ in range(2):
        state = viewer_state(create_app(settings))
        stores.append(state.store)
        readers.append(KafkaReader(settings, state.store, state.metrics).start())
    producer = FrameProducer(kafka_settings)
    streams = {f"cam{i}" for i in range(8)}  # spread over the 4 partitions
    cat = photo_frames("chelsea", "cam0", 1)[0]
    try:

        def all_seen() -> bool:
            for name in streams:
                producer.send_frame(frames, cat.replace(stream_id=name, capture_ns=time.time_ns()))
            producer.flush(10)
            return all({s.stream_id for s in store.slots()} == streams for store in stores)

        _wait_for(all_seen, 60, "every stream in both viewers")
    finally:
        for reader in readers:
            reader.stop()


def test_bad_messages_are_counted_and_the_reader_goes_on(kafka_settings, make_topic) -> None:
    frames, meta = make_topic(suffix="annotated"), make_topic(suffix="predictions")
    settings = VideoSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        video_topic=frames,
        video_metadata_topic=meta,
    )
    state = viewer_state(create_app(settings))
    reader = KafkaReader(settings, state.store, state.metrics).start()
    producer = FrameProducer(kafka_settings)
    good = photo_frames("coffee", "cup", 1)[0]
    registry = state.metrics.registry

    def rejected(topic: str, reason: str) -> float:
        labels = {"topic": topic, "reason": reason}
        return registry.get_sample_value("kva_video_messages_rejected_total", labels) or 0.0

    try:

        def settled() -> bool:
            producer.send(frames, b"cup", b"not a frame", [])
            producer.send(frames, None, b"\xff\xd8 no key", [])
            producer.send(meta, b"cup", b"{not json")
            producer.send_frame(frames, good.replace(capture_ns=time.time_ns()))
            producer.flush(10)
            return (
                state.store.get("cup") is not None
                and rejected(frames, "missing_header") > 0
                and rejected(frames, "missing_key") > 0
                and rejected(meta, "bad_json") > 0
            )

        _wait_for(settled, 60, "bad messages counted and the good frame shown")
        assert reader.alive()
    finally:
        reader.stop()


def test_kva_video_command_serves_kafka_frames_with_a_token(kafka_settings, make_topic) -> None:
    frames, meta = make_topic(suffix="annotated"), make_topic(suffix="predictions")
    port = free_port()
    proc = kva_video(
        "--bootstrap-server",
        kafka_settings.bootstrap_server,
        "--topic",
        frames,
        "--metadata-topic",
        meta,
        "--port",
        str(port),
        "--max-fps",
        "15",
        env={"KVA_VIDEO_TOKEN": "tok-123"},
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer tok-123"}
    try:

        def up() -> bool:
            try:
                return requests.get(base + "/healthz", headers=auth, timeout=2).status_code == 200
            except requests.ConnectionError:
                assert proc.poll() is None, proc.communicate()[0]
                return False

        _wait_for(up, 60, "kva video to answer")
        assert requests.get(base + "/api/streams", timeout=5).status_code == 401
        with Publisher(kafka_settings, frames, meta):
            streams = _wait_for(
                lambda: _streams(lambda p: requests.get(base + p, headers=auth, timeout=5)),
                60,
                "streams from Kafka",
            )
        assert {"cat", "astro"} <= set(streams)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    assert "stopping the viewer" in output
    assert "tok-123" not in output  # the token is never logged
