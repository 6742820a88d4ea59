"""The camera runner's never-give-up logic, through the source and sink interfaces."""

from __future__ import annotations

import threading
import time

from kva.frame import Frame
from kva.producer.camera import CameraRunner, CameraState, RunnerTiming
from kva.producer.config import CameraConfig
from kva.producer.metrics import ProducerMetrics
from kva.producer.sources import SourceError, TestPatternSource
from tests.support.wait import wait_for


class CollectingSink:
    """A FrameSink that keeps the frames in memory (the runner's other side)."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self._lock = threading.Lock()

    def send(self, frame: Frame, on_delivered=None) -> bool:  # noqa: ANN001
        with self._lock:
            self.frames.append(frame)
        return True


class FlakySource(TestPatternSource):
    """A test pattern whose first opens fail: a bug-like error, then a camera error."""

    failures = [RuntimeError("driver bug"), SourceError("camera busy")]

    def open(self) -> None:
        if FlakySource.failures:
            raise FlakySource.failures.pop(0)
        super().open()


def test_runner_survives_unexpected_errors_and_recovers():
    metrics = ProducerMetrics(process=False)
    sink = CollectingSink()
    camera = CameraConfig(id="flaky", source="testsrc", fps=50, width=64, height=48)
    timing = RunnerTiming(reconnect_min=0.05, reconnect_max=0.1)
    runner = CameraRunner(
        camera, sink, metrics, timing, source_factory=lambda _c, _t: FlakySource(64, 48)
    ).start()
    try:
        wait_for(lambda: len(sink.frames) >= 5, 10, "frames after the failed opens")
        assert runner.state is CameraState.UP
        assert metrics.value("kva_producer_reconnects_total", stream="flaky") == 2
        assert metrics.value("kva_producer_source_errors_total", stream="flaky") == 2
        assert len(runner.recoveries) == 1 and runner.recoveries[0] < 5
        assert [f.sequence for f in sink.frames[:5]] == [0, 1, 2, 3, 4]
    finally:
        runner.stop()
        assert runner.join(5)
    assert runner.state is CameraState.STOPPED
    assert metrics.value("kva_producer_camera_up", stream="flaky") == 0


def test_stop_interrupts_a_backoff_wait_at_once():
    metrics = ProducerMetrics(process=False)
    camera = CameraConfig(id="gone", source="http://127.0.0.1:9/x", fps=5)
    timing = RunnerTiming(reconnect_min=30, reconnect_max=30, open_timeout=1)
    runner = CameraRunner(camera, CollectingSink(), metrics, timing).start()
    wait_for(lambda: runner.state is CameraState.DOWN, 10, "the first failure")
    started = time.monotonic()
    runner.stop()
    assert runner.join(5)
    assert time.monotonic() - started < 2
