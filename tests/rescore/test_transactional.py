"""The transactional pair on the real broker: outputs and offsets commit together, an aborted
batch is never seen, a second producer with the same transactional id fences the first."""

from __future__ import annotations

import pytest

from kva.kafka.transactional import (
    CommittedOffset,
    RangeConsumer,
    TransactionalProducer,
    TransactionError,
)
from kva.settings import KafkaSettings
from tests.rescore.helpers import committed_records
from tests.support.kafka import send
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def _read(consumer: RangeConsumer, count: int) -> list[int]:
    offsets: list[int] = []

    def more() -> bool:
        record = consumer.poll(0.2)
        if record is not None:
            offsets.append(record.offset)
        return len(offsets) >= count

    wait_for(more, 30, f"{count} records", step=0)
    return offsets


def test_outputs_and_offsets_commit_together_and_aborts_vanish(
    kafka_settings: KafkaSettings, make_topic, unique_name: str
) -> None:
    source, sink = make_topic(), make_topic()
    for i in range(6):
        send(kafka_settings, source, b"cam0", f"in-{i}".encode())
    consumer = RangeConsumer(kafka_settings, source, f"{unique_name}-g")
    producer = TransactionalProducer(kafka_settings, f"{unique_name}-tx")
    try:
        producer.start()
        assert consumer.committed([0]) == {}, "a new group has no offsets"
        consumer.assign({0: 0})
        assert _read(consumer, 3) == [0, 1, 2]
        for i in range(3):
            producer.send(sink, b"cam0", f"out-{i}".encode(), timestamp_ms=1_000 + i)
        producer.commit(consumer, {0: CommittedOffset(3, "batch one")})
        assert _read(consumer, 3) == [3, 4, 5]
        producer.send(sink, b"cam0", b"never seen")
        producer.abort()
        assert consumer.committed([0]) == {0: CommittedOffset(3, "batch one")}
    finally:
        consumer.close()
    values = [r.value for r in committed_records(kafka_settings, sink)]
    assert values == [b"out-0", b"out-1", b"out-2"]


def test_a_second_producer_fences_the_first(
    kafka_settings: KafkaSettings, make_topic, unique_name: str
) -> None:
    source, sink = make_topic(), make_topic()
    send(kafka_settings, source, b"cam0", b"in")
    consumer = RangeConsumer(kafka_settings, source, f"{unique_name}-g")
    old = TransactionalProducer(kafka_settings, f"{unique_name}-tx")
    new = TransactionalProducer(kafka_settings, f"{unique_name}-tx")
    try:
        old.start()
        old.send(sink, b"cam0", b"from the old one")
        new.start()  # aborts the old producer's open transaction
        with pytest.raises(TransactionError) as failed:
            old.commit(consumer, {0: CommittedOffset(1)})
        assert failed.value.fenced, failed.value
        assert "took over" in str(failed.value)
        new.send(sink, b"cam0", b"from the new one")
        new.commit(consumer, {0: CommittedOffset(1)})
    finally:
        consumer.close()
    assert [r.value for r in committed_records(kafka_settings, sink)] == [b"from the new one"]
