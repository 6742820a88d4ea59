"""Recording a stream for replay tests and benchmarks through the producer's own path (source, encoder,
camera runner, Kafka sink), with capture times stamped on a regular clock from ``t0``
so a test knows each frame's time exactly; the runner is not paced to the wall clock."""

from __future__ import annotations

import time

import cv2
import numpy as np

from kva.frame import Frame
from kva.kafka import FrameProducer
from kva.producer.camera import CameraRunner, CameraState, RunnerTiming
from kva.producer.config import CameraConfig
from kva.producer.metrics import ProducerMetrics
from kva.producer.sink import KafkaFrameSink
from kva.producer.sources.base import Captured, SourceEnded
from kva.producer.sources.synthetic import TestPatternSource
from kva.settings import KafkaSettings


class StampedTestSource(TestPatternSource):
    """``testsrc`` whose frame ``i`` is captured at ``t0_ns + i / fps``; ends after ``count``."""

    def __init__(self, t0_ns: int, fps: float, count: int, width: int, height: int) -> None:
        super().__init__(width, height)
        self._t0_ns, self._fps, self._count = t0_ns, fps, count

    def read(self, timeout: float) -> Captured:
        if self.count >= self._count:
            raise SourceEnded
        index = self.count
        return Captured(super().read(timeout).image, self._t0_ns + round(index * 1e9 / self._fps))


def record_testsrc(
    settings: KafkaSettings,
    topic: str,
    *,
    stream: str = "cam0",
    t0_ns: int,
    fps: float = 15.0,
    seconds: float = 60.0,
    size: tuple[int, int] = (640, 480),
) -> int:
    """Record ``seconds`` of testsrc at ``fps`` into ``topic``; the number of frames sent."""
    count = round(seconds * fps)
    camera = CameraConfig(id=stream, source="testsrc", fps=1000, quality=80)
    producer = FrameProducer(settings)
    sink = KafkaFrameSink(producer, topic, ProducerMetrics(process=False))
    runner = CameraRunner(
        camera,
        sink,
        ProducerMetrics(process=False),
        RunnerTiming(watchdog_timeout=30),
        source_factory=lambda _c, _t: StampedTestSource(t0_ns, fps, count, *size),
    ).start()
    assert runner.join(300), "the recording did not end"
    assert runner.state is CameraState.ENDED, runner.error
    assert producer.flush(60) == 0
    return count


def whole_seconds_ago(seconds: int) -> int:
    """Epoch ns of a whole second ``seconds`` ago (so ranges in ms are exact)."""
    return (int(time.time()) - seconds) * 1_000_000_000


def image(frame: Frame) -> np.ndarray:
    """The frame's picture (BGR)."""
    decoded = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    return decoded


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two pictures of one size."""
    return float(np.mean(cv2.absdiff(a, b)))


def video_frames(path: str) -> tuple[list[np.ndarray], float]:
    """Every picture of a video file, and its frame rate."""
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, picture = capture.read()
        if not ok:
            break
        frames.append(picture)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps
