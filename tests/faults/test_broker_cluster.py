"""Three KRaft brokers on one machine: kill the partition leader mid-stream, frames go on."""

from __future__ import annotations

import threading
import time

import pytest

from kva.frame import Frame
from kva.kafka import (
    FrameProducer,
    LatestFrameConsumer,
    TopicSpec,
    ensure_topics,
    partition_leaders,
)
from kva.settings import KafkaSettings
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster
from tests.support.wait import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


class Stream:
    """Produces a frame every 50 ms with acks=all and records when each was acknowledged."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.acked: list[float] = []
        self.failed = 0
        self.stop = threading.Event()
        self._producer = FrameProducer(settings, acks="all", message_timeout_ms=60000)
        self._topic = topic
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, error: str | None, _record: object) -> None:
        if error is None:
            self.acked.append(time.monotonic())
        else:
            self.failed += 1

    def _run(self) -> None:
        sequence = 0
        while not self.stop.wait(0.05):
            frame = Frame("cam0", sequence, time.time_ns(), 2, 2, b"frame-%d" % sequence)
            self._producer.send_frame(self._topic, frame, self._on_delivery)
            sequence += 1
        self._producer.flush(30)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self._thread.join(60)


def test_leader_killed_frames_continue_after_election() -> None:
    spec = ClusterSpec(mode="kraft", brokers=3, port=0, heap="384m", min_insync_replicas=2)
    with KafkaCluster(spec) as cluster:
        settings = KafkaSettings(bootstrap_server=cluster.bootstrap_server)
        topic = "frames-rf3"
        rf3 = TopicSpec(
            topic, partitions=1, replication_factor=3, config={"min.insync.replicas": "2"}
        )
        ensure_topics(settings, [rf3])
        consumer = LatestFrameConsumer(settings, [topic], "rf3-reader", max_lag=None)
        received: list[int] = []
        try:
            with Stream(settings, topic) as stream:
                wait_for(lambda: len(stream.acked) >= 20, 30, "frames before the kill")
                leader = partition_leaders(settings, topic)[0]
                killed_at = time.monotonic()
                cluster.kill_broker(leader - 1)
                wait_for(
                    lambda: any(t > killed_at + 0.2 for t in stream.acked),
                    60,
                    "frames after the kill",
                )
                after = [t for t in stream.acked if t > killed_at]
                gap = after[0] - killed_at
                wait_for(
                    lambda: len([t for t in stream.acked if t > killed_at]) >= 20,
                    30,
                    "a steady stream",
                )
                new_leader = partition_leaders(settings, topic)[0]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (not received or received[-1] < 60):
                record = consumer.poll(0.5)
                if record is not None:
                    received.append(record.frame().sequence)
        finally:
            consumer.close()
    print(
        f"leader {leader} killed: first acknowledged frame {gap:.2f}s later; new leader {new_leader}"
    )
    assert new_leader not in (leader, -1)
    assert received == sorted(received) and received[-1] >= 60
