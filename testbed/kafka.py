"""A real Kafka for a test session or a benchmark, and a collector of what reached a topic."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

from kva.frame import Frame
from kva.kafka import LatestFrameConsumer, Record
from kva.settings import KafkaSettings


@contextlib.contextmanager
def broker(pids: list[int] | None = None) -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for as long as the block runs.

    ``KVA_BOOTSTRAP_SERVER`` when it is set (an existing broker), else a
    throw-away KRaft broker on free ports, started through the same launcher as
    ``kva broker`` and stopped at the end.

    Args:
        pids: when given, filled with the process ids of the broker JVMs started here
            (for CPU accounting); left empty for an existing broker.
    """
    existing = os.environ.get("KVA_BOOTSTRAP_SERVER")
    if existing:
        yield existing
        return
    from kva.zookeeper.cluster import ClusterSpec, KafkaCluster

    with KafkaCluster(ClusterSpec(mode="kraft", port=0)) as cluster:
        if pids is not None:
            pids[:] = [b.popen.pid for b in cluster.brokers if b is not None]
        yield cluster.bootstrap_server


def wait_assigned(
    consumer: LatestFrameConsumer,
    timeout: float = 20,
    on_record: Callable[[Record], object] = lambda _record: None,
) -> None:
    """Poll ``consumer`` until it has a partition (AssertionError after ``timeout`` seconds).

    Records polled meanwhile go to ``on_record`` (dropped by default).
    """
    deadline = time.monotonic() + timeout
    while not consumer.assignment:
        assert time.monotonic() < deadline, f"no partition assigned within {timeout:g} s"
        record = consumer.poll(0.1)
        if record is not None:
            on_record(record)


class FrameCollector:
    """An ordinary (not latest-frame) consumer assigned at the end of ``topic`` before producing."""

    def __init__(self, kafka_settings: KafkaSettings, topic: str, group: str) -> None:
        self.consumer = LatestFrameConsumer(
            kafka_settings, [topic], group, max_lag=None, start_at="end"
        )
        wait_assigned(self.consumer)
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
