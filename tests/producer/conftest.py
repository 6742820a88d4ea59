"""Helpers for producer tests: run the service in a thread, collect what reaches Kafka."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from kva.frame import Frame
from kva.kafka import LatestFrameConsumer
from kva.producer.config import ProducerSettings
from kva.producer.service import ProducerService
from kva.service import run_service
from kva.settings import KafkaSettings


def producer_settings(kafka_settings: KafkaSettings, topic: str, **values: Any) -> ProducerSettings:
    """Settings for a test producer: the test broker, ``topic``, a free metrics port."""
    base: dict[str, Any] = {
        "bootstrap_server": kafka_settings.bootstrap_server,
        "frames_topic": topic,
        "producer_metrics_port": 0,
        "broker_timeout": 20,
        "flush_timeout": 5,
    }
    return ProducerSettings(**(base | values))


@contextmanager
def running(settings: ProducerSettings, start_timeout: float = 30) -> Iterator[ProducerService]:
    """A :class:`ProducerService` running in a thread until the block ends."""
    service = ProducerService(settings)
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run_service(service, stop)), daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not service.started.wait(0.05):
        assert thread.is_alive(), f"producer exited early with {result}"
        assert time.monotonic() < deadline, "producer did not start"
    try:
        yield service
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "producer did not stop within 30 s"
        assert result == [0]


class FrameCollector:
    """An ordinary (not latest-frame) consumer assigned at the end of ``topic`` before producing."""

    def __init__(self, kafka_settings: KafkaSettings, topic: str, group: str) -> None:
        self.consumer = LatestFrameConsumer(
            kafka_settings, [topic], group, max_lag=None, start_at="end"
        )
        deadline = time.monotonic() + 20
        while not self.consumer.assignment:
            assert time.monotonic() < deadline, "no partition assigned"
            self.consumer.poll(0.1)
        self.frames: list[Frame] = []

    def collect(self, done: Callable[[list[Frame]], bool], timeout: float) -> list[Frame]:
        """Poll until ``done(frames)`` or ``timeout``; returns all frames so far."""
        deadline = time.monotonic() + timeout
        while not done(self.frames) and time.monotonic() < deadline:
            record = self.consumer.poll(0.2)
            if record is not None:
                self.frames.append(record.frame())
        return self.frames

    def of(self, stream: str) -> list[Frame]:
        return [f for f in self.frames if f.stream_id == stream]

    def count(self, stream: str, n: int, timeout: float) -> list[Frame]:
        """Wait for ``n`` frames of ``stream``; returns them."""
        self.collect(lambda _f: len(self.of(stream)) >= n, timeout)
        return self.of(stream)

    def close(self) -> None:
        self.consumer.close()


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


SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = __import__("pathlib").Path(__file__).with_name("rtsp_server.py")


def gst_rtsp_missing() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None when it can."""
    import subprocess

    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot run: {exc}"
    if done.returncode != 0:
        return (
            "GStreamer RTSP server bindings (python3-gi, gir1.2-gst-rtsp-server-1.0) are not "
            f"installed for {SYSTEM_PYTHON}: {done.stderr.strip().splitlines()[-1:]}"
        )
    return None


class RtspCamera:
    """GStreamer's RTSP server as a subprocess on ``port``; stop and start it again at will."""

    def __init__(self, port: int, fps: int = 15, width: int = 640, height: int = 360) -> None:
        self.port, self.fps, self.width, self.height = port, fps, width, height
        self.url = f"rtsp://127.0.0.1:{port}/cam"
        self.process: Any = None

    def start(self, timeout: float = 20) -> RtspCamera:
        import select
        import subprocess

        self.process = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(RTSP_SERVER),
                str(self.port),
                str(self.fps),
                str(self.width),
                str(self.height),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.strip() == "READY":
                    return self
                assert line, f"RTSP server exited: {self.process.poll()}"
        raise AssertionError("RTSP server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:  # noqa: BLE001
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


@pytest.fixture
def rtsp_camera() -> Iterator[RtspCamera]:
    """A started GStreamer RTSP camera (skipped with the reason when GStreamer is missing)."""
    reason = gst_rtsp_missing()
    if reason:
        pytest.skip(reason)
    from kva.zookeeper.cluster import free_port

    camera = RtspCamera(free_port()).start()
    yield camera
    camera.stop()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; returns the seconds it took (fails after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, (
            f"timed out after {timeout}s waiting for {what}"
        )
        time.sleep(0.05)
    return time.monotonic() - started
