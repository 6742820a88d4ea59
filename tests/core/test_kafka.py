"""The Kafka wrapper against a real broker: round trips, ordering, latest-frame seek, limits."""

from __future__ import annotations

import time

import pytest

from kva.frame import Frame
from kva.kafka import (
    KafkaUnavailable,
    LatestFrameConsumer,
    Record,
    client_config,
    redacted,
    wait_for_broker,
)
from kva.settings import KafkaSettings
from testbed.kafka import wait_assigned
from tests.support.kafka import send_frames

pytestmark = pytest.mark.integration


def _frame(stream: str, seq: int, size: int = 100) -> Frame:
    return Frame(
        stream_id=stream,
        sequence=seq,
        capture_ns=time.time_ns(),
        width=4,
        height=3,
        data=bytes([seq % 256]) * size,
    )


def _warm_up(settings: KafkaSettings, topic: str, consumer: LatestFrameConsumer) -> None:
    """Assignment, then one frame through: the consumer's start offset is resolved."""
    wait_assigned(consumer)
    send_frames(settings, topic, _frame("cam0", 0))
    assert [r.frame().stream_id for r in _collect(consumer, 1)] == ["cam0"]


def _collect(consumer: LatestFrameConsumer, count: int, timeout: float = 30) -> list[Record]:
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        record = consumer.poll(0.5)
        if record is not None:
            records.append(record)
    return records


def test_frames_round_trip_with_headers(kafka_settings, make_topic, unique_name) -> None:
    topic = make_topic(partitions=1)
    consumer = LatestFrameConsumer(
        kafka_settings, [topic], unique_name, max_lag=None, start_at="beginning"
    )
    try:
        wait_assigned(consumer)
        sent = [_frame("cam0", i) for i in range(5)]
        send_frames(kafka_settings, topic, *sent)
        received = [r.frame() for r in _collect(consumer, 5)]
    finally:
        consumer.close()
    assert received == sent


def test_each_stream_stays_ordered_across_partitions(
    kafka_settings, make_topic, unique_name
) -> None:
    topic = make_topic(partitions=4)
    consumer = LatestFrameConsumer(
        kafka_settings, [topic], unique_name, max_lag=None, start_at="beginning"
    )
    streams = [f"cam{i}" for i in range(6)]
    try:
        wait_assigned(consumer)
        frames = [_frame(s, seq) for seq in range(20) for s in streams]
        send_frames(kafka_settings, topic, *frames)
        records = _collect(consumer, len(frames))
    finally:
        consumer.close()
    assert len(records) == len(frames)
    partitions: dict[str, set[int]] = {}
    sequences: dict[str, list[int]] = {}
    for record in records:
        frame = record.frame()
        partitions.setdefault(frame.stream_id, set()).add(record.partition)
        sequences.setdefault(frame.stream_id, []).append(frame.sequence)
    assert all(len(p) == 1 for p in partitions.values()), "a stream was split over partitions"
    assert len({p for ps in partitions.values() for p in ps}) > 1, "all streams in one partition"
    assert all(seqs == list(range(20)) for seqs in sequences.values())


def test_latest_frame_seek_skips_what_piled_up(kafka_settings, make_topic, unique_name) -> None:
    topic = make_topic(partitions=1)
    skipped_reports: list[int] = []
    consumer = LatestFrameConsumer(
        kafka_settings,
        [topic],
        unique_name,
        max_lag=0,
        on_skip=lambda _t, n: skipped_reports.append(n),
    )
    try:
        _warm_up(kafka_settings, topic, consumer)
        consumer.pause()
        send_frames(kafka_settings, topic, *(_frame("cam0", i) for i in range(200)))
        consumer.resume()
        first = _collect(consumer, 1)
    finally:
        consumer.close()
    assert [r.frame().sequence for r in first] == [199]
    assert consumer.skipped >= 190
    assert sum(skipped_reports) == consumer.skipped


def test_lag_tolerance_delivers_up_to_n_behind(kafka_settings, make_topic, unique_name) -> None:
    topic = make_topic(partitions=1)
    consumer = LatestFrameConsumer(kafka_settings, [topic], unique_name, max_lag=5)
    try:
        _warm_up(kafka_settings, topic, consumer)
        consumer.pause()
        send_frames(kafka_settings, topic, *(_frame("cam0", i) for i in range(50)))
        consumer.resume()
        records = _collect(consumer, 1)
    finally:
        consumer.close()
    assert records and records[0].frame().sequence == 49
    assert consumer.skipped == 49


def test_new_consumer_starts_at_the_newest_existing_frame(
    kafka_settings, make_topic, unique_name
) -> None:
    topic = make_topic(partitions=1)
    send_frames(kafka_settings, topic, *(_frame("cam0", i) for i in range(30)))
    consumer = LatestFrameConsumer(kafka_settings, [topic], unique_name, max_lag=0)
    try:
        records = _collect(consumer, 1)
    finally:
        consumer.close()
    assert [r.frame().sequence for r in records] == [29]


def test_a_new_consumer_can_start_at_the_newest_n_of_each_partition(
    kafka_settings, make_topic, unique_name
) -> None:
    topic = make_topic(partitions=1)
    send_frames(kafka_settings, topic, *(_frame("cam0", i) for i in range(30)))
    consumer = LatestFrameConsumer(kafka_settings, [topic], unique_name, max_lag=None, tail=5)
    try:
        records = _collect(consumer, 5)
    finally:
        consumer.close()
    assert [r.frame().sequence for r in records] == [25, 26, 27, 28, 29]


def test_a_10_mb_frame_passes(kafka_settings, make_topic, unique_name) -> None:
    topic = make_topic(partitions=1)
    consumer = LatestFrameConsumer(
        kafka_settings, [topic], unique_name, max_lag=None, start_at="beginning"
    )
    big = _frame("cam0", 1, size=10 * 1024 * 1024)
    try:
        wait_assigned(consumer)
        send_frames(kafka_settings, topic, big)
        records = _collect(consumer, 1)
    finally:
        consumer.close()
    assert records[0].frame() == big


def test_unreachable_broker_fails_clearly_within_timeout() -> None:
    settings = KafkaSettings(bootstrap_server="127.0.0.1:1")
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match=r"cannot reach Kafka at 127\.0\.0\.1:1 within 2s"):
        wait_for_broker(settings, timeout=2)
    assert time.monotonic() - started < 5


def test_secrets_are_redacted_from_loggable_config() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password="hunter2",  # type: ignore[arg-type]  # noqa: S106
    )
    config = client_config(settings)
    assert config["sasl.password"] == "hunter2"
    assert "hunter2" not in repr(redacted(config))
    assert "hunter2" not in repr(settings)


def test_streams_sharing_a_partition_each_keep_their_newest_frame(
    kafka_settings, make_topic, unique_name
) -> None:
    topic = make_topic(partitions=1)
    streams = ["cam0", "cam1", "cam2"]
    consumer = LatestFrameConsumer(kafka_settings, [topic], unique_name, max_lag=0)
    try:
        wait_assigned(consumer)
        for stream in streams:  # a consumer that keeps up sees every stream of its partition
            send_frames(kafka_settings, topic, _frame(stream, 0))
            assert [r.frame().stream_id for r in _collect(consumer, 1)] == [stream]
        consumer.pause()
        send_frames(
            kafka_settings, topic, *(_frame(s, seq) for seq in range(1, 101) for s in streams)
        )
        consumer.resume()
        newest = [r.frame() for r in _collect(consumer, 3)]
    finally:
        consumer.close()
    assert {(f.stream_id, f.sequence) for f in newest} == {(s, 100) for s in streams}
    assert consumer.skipped >= 290
