"""Kafka in tests: topics, a reader in the background, a feeder, one-shot producers.

All against the session's real broker (or one a test starts itself); the
stand-ins benchmarks use too (``FrameCollector``, ``wait_assigned``) are in
:mod:`testbed.kafka`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kva.frame import Frame
from kva.kafka import FrameProducer, LatestFrameConsumer, Record, TopicSpec, ensure_topics
from kva.settings import KafkaSettings
from testbed.kafka import wait_assigned
from tests.support.frames import jpeg, make_frame
from tests.support.wait import wait_for


@dataclass
class Topics:
    """The three topics of a consumer: frames in, annotated frames out, prediction documents."""

    input: str
    output: str
    metadata: str


class Reader:
    """Reads every message of a topic in a background thread, remembering when each arrived.

    Args:
        settings: the broker.
        topic: the topic to read.
        group: a consumer group of its own.
        start_at: ``beginning`` (every message) or ``end`` (only what comes after assignment).
        assigned: wait until a partition is assigned before returning.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        group: str,
        start_at: str = "beginning",
        assigned: bool = True,
    ) -> None:
        self.records: list[Record] = []
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = LatestFrameConsumer(
            settings, [topic], group, max_lag=None, start_at=start_at
        )
        if assigned:
            wait_assigned(self._consumer, 30, on_record=self._keep)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _keep(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)
            self.arrivals.append(time.monotonic())

    def _loop(self) -> None:
        while not self._stop.is_set():
            record = self._consumer.poll(0.1)
            if record is not None:
                self._keep(record)

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def count(self) -> int:
        with self._lock:
            return len(self.records)

    def first_frame(
        self, predicate: Callable[[float, Frame], bool], timeout: float, what: str
    ) -> tuple[float, Frame]:
        """The first frame (monotonic arrival time, frame) read so far or within ``timeout``
        for which ``predicate(arrived, frame)`` holds."""
        seen = 0

        def match() -> tuple[float, Frame] | None:
            nonlocal seen
            with self._lock:
                fresh = list(zip(self.arrivals[seen:], self.records[seen:], strict=True))
            seen += len(fresh)
            for arrived, record in fresh:
                frame = record.frame()
                if predicate(arrived, frame):
                    return arrived, frame
            return None

        return wait_for(match, timeout, f"a frame {what}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


@dataclass
class Feeder:
    """Produces frames of one or more streams at a rate in a background thread."""

    settings: KafkaSettings
    topic: str
    fps: float
    streams: tuple[str, ...] = ("cam0",)
    make_data: Callable[[int], bytes] = field(default=lambda seq: jpeg(grey=seq % 200 + 20))
    sent: int = 0

    def __post_init__(self) -> None:
        self._producer = FrameProducer(self.settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def _loop(self) -> None:
        seq = 0
        interval = 1.0 / self.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            data = self.make_data(seq)
            for stream in self.streams:
                self._producer.send_frame(self.topic, make_frame(stream, seq, data))
            self.sent = seq = seq + 1
            self._producer.poll(0)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        self._producer.flush(5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def send(
    settings: KafkaSettings,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """One raw message, delivered when this returns."""
    producer = FrameProducer(settings)
    producer.send(topic, key, value, headers or [])
    assert producer.flush(10) == 0


def send_frames(settings: KafkaSettings, topic: str, *frames: Frame) -> None:
    """``frames`` in order, every one delivered when this returns."""
    producer = FrameProducer(settings)
    failures: list[str] = []
    for frame in frames:
        producer.send_frame(topic, frame, on_delivery=lambda err, _r: err and failures.append(err))
    assert producer.flush(30) == 0
    assert failures == []


def round_trip(settings: KafkaSettings, topic: str, sequence: int) -> int:
    """Create ``topic``, send one frame numbered ``sequence``, read it back; the sequence read."""
    ensure_topics(settings, [TopicSpec(topic, partitions=1)])
    consumer = LatestFrameConsumer(settings, [topic], f"g-{topic}", max_lag=None)
    try:
        wait_assigned(consumer, 30)
        send_frames(settings, topic, Frame("cam0", sequence, time.time_ns(), 2, 2, b"jpeg"))
        record = wait_for(lambda: consumer.poll(0.5), 30, f"the frame back from {topic}", step=0)
    finally:
        consumer.close()
    return record.frame().sequence
