"""Reading the past on the real broker: capture times as Kafka timestamps, what a topic
holds, the records of a time range (one stream, every partition, bounded), clear errors."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from kva.frame import Frame, encode_frame
from kva.kafka import TopicSpec, client_config, ensure_topics
from kva.kafka.history import RangeReader, resolve_offsets
from kva.kafka.peek import RangeError, describe_streams, held, recent_streams, retained
from kva.settings import KafkaSettings
from kva.timerange import TimeRange
from tests.support.kafka import send_frames

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
#: The first capture time of the recorded streams: a minute and a half ago, in whole seconds.
T0_MS = (int(time.time()) - 90) * 1000


def _topic(settings: KafkaSettings, name: str, partitions: int) -> str:
    config = {"retention.ms": str(HOUR_MS), "segment.ms": str(HOUR_MS)}
    ensure_topics(settings, [TopicSpec(name, partitions=partitions, config=config)])
    return name


def _frame(stream: str, seq: int, at_ms: int) -> Frame:
    return Frame(stream, seq, at_ms * 1_000_000, 2, 2, f"{stream}-{seq}".encode())


def _record(settings: KafkaSettings, topic: str) -> None:
    """60 s of two streams at 2 fps, captured from T0 on; 'b' 250 ms after 'a'."""
    frames = [
        _frame(stream, seq, T0_MS + seq * 500 + offset)
        for seq in range(120)
        for stream, offset in (("a", 0), ("b", 250))
    ]
    send_frames(settings, topic, *frames)


def test_a_frame_is_stamped_with_its_capture_time(kafka_settings, unique_name) -> None:
    topic = _topic(kafka_settings, unique_name, 1)
    send_frames(kafka_settings, topic, _frame("a", 0, T0_MS), _frame("a", 1, T0_MS + 1234))
    spans = retained(kafka_settings, topic)
    assert [(s.low, s.high, s.first_ms, s.last_ms) for s in spans] == [(0, 2, T0_MS, T0_MS + 1234)]


def test_a_range_of_one_stream_is_its_frames_of_those_seconds(kafka_settings, unique_name) -> None:
    topic = _topic(kafka_settings, unique_name, 3)
    _record(kafka_settings, topic)
    seconds_20_to_30 = TimeRange(T0_MS + 20_000, T0_MS + 30_000)
    with RangeReader(kafka_settings, topic, seconds_20_to_30, stream_id="a") as reader:
        frames = [record.frame() for record in reader]
        assert reader.done_offsets == reader.total_offsets
    assert [f.sequence for f in frames] == list(range(40, 60))
    assert {f.stream_id for f in frames} == {"a"}
    assert frames[0].capture_ns // 1_000_000 == T0_MS + 20_000
    assert frames[-1].capture_ns // 1_000_000 == T0_MS + 29_500


def test_without_a_stream_every_stream_of_the_range_comes(kafka_settings, unique_name) -> None:
    topic = _topic(kafka_settings, unique_name, 2)
    _record(kafka_settings, topic)
    with RangeReader(kafka_settings, topic, TimeRange(T0_MS, T0_MS + 1000)) as reader:
        got = sorted((r.frame().stream_id, r.frame().sequence) for r in reader)
    assert got == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]


def test_offsets_and_what_the_topic_holds(kafka_settings, unique_name) -> None:
    topic = _topic(kafka_settings, unique_name, 1)
    _record(kafka_settings, topic)
    offsets = resolve_offsets(kafka_settings, topic, TimeRange(T0_MS + 1000, T0_MS + 2000))
    assert offsets == {0: (4, 8)}  # 2 frames a second of each of 2 streams
    times = held(retained(kafka_settings, topic))
    assert times is not None
    assert (times.start_ms, times.end_ms) == (T0_MS, T0_MS + 59_750 + 1)
    streams = recent_streams(kafka_settings, topic)
    assert streams == {"a": T0_MS + 59_500, "b": T0_MS + 59_750}
    assert describe_streams(streams).startswith("b (newest ")


def test_a_range_the_topic_does_not_hold_says_what_it_holds(kafka_settings, unique_name) -> None:
    topic = _topic(kafka_settings, unique_name, 2)
    _record(kafka_settings, topic)
    expired = TimeRange(T0_MS - 10 * HOUR_MS, T0_MS - 9 * HOUR_MS)
    with pytest.raises(RangeError, match=f"nothing in .*: topic {topic} holds .*Z .. .*Z"):
        RangeReader(kafka_settings, topic, expired)
    with pytest.raises(RangeError, match="does not exist"):
        RangeReader(kafka_settings, f"{topic}-absent", expired)


def test_transaction_markers_do_not_keep_a_range_open(kafka_settings, unique_name) -> None:
    """A transactional writer's commit markers take offsets the reader never receives."""
    topic = _topic(kafka_settings, unique_name, 1)
    producer = Producer(client_config(kafka_settings) | {"transactional.id": unique_name})
    producer.init_transactions(30)
    for seq in range(3):
        producer.begin_transaction()
        key, value, headers = encode_frame(_frame("a", seq, T0_MS + seq * 1000))
        producer.produce(topic, value, key, headers=headers, timestamp=T0_MS + seq * 1000)
        producer.commit_transaction(30)
    with RangeReader(kafka_settings, topic, TimeRange(T0_MS, T0_MS + HOUR_MS), idle_timeout=5) as r:
        assert [rec.frame().sequence for rec in r] == [0, 1, 2]
