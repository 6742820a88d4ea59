"""Fixtures and checks of the producer tests (the service in a thread, the cameras and the
frame collector are in ``testbed``: the benchmarks use them too)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from kva.frame import Frame
from kva.ports import free_port
from kva.producer.service import ProducerService
from kva.settings import KafkaSettings
from testbed.cameras import RtspCamera, gst_rtsp_missing
from testbed.kafka import FrameCollector


@pytest.fixture
def collector_factory(
    kafka_settings: KafkaSettings, unique_name: str
) -> Iterator[Callable[[str], FrameCollector]]:
    made: list[FrameCollector] = []

    def make(topic: str) -> FrameCollector:
        made.append(FrameCollector(kafka_settings, topic, f"{unique_name}-{len(made)}"))
        return made[-1]

    yield make
    for collector in made:
        collector.close()


def measured_fps(frames: list[Frame], skip: int = 2) -> float:
    """Frames per second from capture times (the first ``skip`` frames are warm-up)."""
    steady = frames[skip:]
    span = (steady[-1].capture_ns - steady[0].capture_ns) / 1e9
    return (len(steady) - 1) / span


def assert_well_formed(frames: list[Frame], stream: str, width: int, height: int) -> None:
    """Keyed by stream, in order, consecutive sequences, JPEG of the stated size, recent."""
    import cv2
    import numpy as np

    assert frames, "no frames"
    assert {f.stream_id for f in frames} == {stream}
    sequences = [f.sequence for f in frames]
    assert sequences == list(range(sequences[0], sequences[0] + len(frames))), sequences
    captures = [f.capture_ns for f in frames]
    assert captures == sorted(captures)
    assert abs(time.time_ns() - captures[-1]) < 60e9
    for frame in frames[:: max(1, len(frames) // 5)]:
        assert frame.content_type == "image/jpeg"
        assert (frame.width, frame.height) == (width, height)
        image = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (height, width, 3)


def metrics_text(service: ProducerService) -> str:
    """What ``/metrics`` of the running service serves."""
    assert service.http is not None
    url = f"http://127.0.0.1:{service.http.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local test URL
        return str(response.read().decode())


@pytest.fixture
def rtsp_camera() -> Iterator[RtspCamera]:
    """A started GStreamer RTSP camera (skipped with the reason when GStreamer is missing)."""
    reason = gst_rtsp_missing()
    if reason:
        pytest.skip(reason)
    camera = RtspCamera(free_port()).start()
    yield camera
    camera.stop()
