"""The Kafka sink's bounded failure paths, with librdkafka pointed at a port where nobody listens."""

from __future__ import annotations

import time

from kva.frame import Frame
from kva.kafka import FrameProducer
from kva.ports import free_port
from kva.producer.metrics import ProducerMetrics
from kva.producer.sink import KafkaFrameSink
from kva.settings import KafkaSettings


def _frame(seq: int, size: int) -> Frame:
    return Frame("cam0", seq, time.time_ns(), 64, 48, b"\xff" * size)


def _dead_broker() -> KafkaSettings:
    return KafkaSettings(bootstrap_server=f"127.0.0.1:{free_port()}")


def test_full_local_queue_drops_and_counts_instead_of_growing():
    metrics = ProducerMetrics(process=False)
    producer = FrameProducer(_dead_broker(), queue_max_kbytes=64, buffer_retries=2)
    sink = KafkaFrameSink(producer, "frames", metrics)
    results = [sink.send(_frame(i, 20_000)) for i in range(10)]
    accepted = results.count(True)
    assert 2 <= accepted <= 4  # ~64 kB of 20 kB frames fit in the queue, the rest cannot
    assert results == [True] * accepted + [False] * (10 - accepted)
    dropped = metrics.value(
        "kva_producer_frames_dropped_total", stream="cam0", reason="buffer_full"
    )
    assert dropped == 10 - accepted
    assert producer.pending() == accepted
    assert sink.flush(0.2) == accepted  # flush is bounded: it returns what is still undelivered


def test_undeliverable_frames_are_counted():
    metrics = ProducerMetrics(process=False)
    producer = FrameProducer(_dead_broker(), message_timeout_ms=300)
    sink = KafkaFrameSink(producer, "frames", metrics)
    for i in range(3):
        assert sink.send(_frame(i, 1000))
    deadline = time.monotonic() + 10
    while producer.pending() and time.monotonic() < deadline:
        sink.poll(0.1)
    assert (
        metrics.value("kva_producer_frames_dropped_total", stream="cam0", reason="delivery_failed")
        == 3
    )
    assert metrics.value("kva_producer_frames_sent_total", stream="cam0") == 0
    assert sink.down_for() > 0


def test_oversized_frame_is_dropped_before_kafka():
    metrics = ProducerMetrics(process=False)
    sink = KafkaFrameSink(FrameProducer(_dead_broker()), "frames", metrics, max_frame_bytes=1000)
    assert not sink.send(_frame(0, 1001))
    assert (
        metrics.value("kva_producer_frames_dropped_total", stream="cam0", reason="oversized") == 1
    )
