"""Peeking at a topic: what each partition still holds, and which streams wrote last.

:class:`TopicPeek` answers both with a few records per partition, read by one
consumer that never joins a group nor commits (the live consumers' positions are
never touched) and that fetches one record batch at a time. Keep one for repeated
looks (the viewer looks every half minute): a new librdkafka client per look
starts and ends its threads each time, and glibc's per-thread memory arenas then
grew the viewer's RSS by about 0.8 MB a look (measured in the soak; with one
long-lived peek it stays flat). :func:`retained` and :func:`recent_streams` are
the one-shot forms.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from kva.kafka.config import MAX_MESSAGE_BYTES, MESSAGE_OVERHEAD, client_config
from kva.kafka.errors import KafkaUnavailable
from kva.settings import KafkaSettings
from kva.timerange import TimeRange, format_ms

logger = logging.getLogger(__name__)

#: librdkafka's prefetch queue per reader (KiB): the bound on a reader's memory.
_QUEUE_KBYTES = 32 * 1024
#: Records read back per partition by :func:`recent_streams`.
RECENT_PER_PARTITION = 64
#: Records read back from the end of a partition for its newest timestamp: a few, not one,
#: because transaction markers take offsets and are never handed out.
_NEWEST_TAIL = 4

#: Fetch sizes of a peek: a broker returns at least the first record batch whatever the
#: limit, so the smallest limits fetch one batch, not the 16 MiB a partition may send
#: (measured: 0.9 MB instead of 35 MB per look at a partition of 100 kB frames).
_PEEK = {"max.partition.fetch.bytes": 1, "fetch.max.bytes": 1024, "message.max.bytes": 1024}


class RangeError(ValueError):
    """A time range a topic cannot serve; the message says what it holds instead."""


@dataclass(frozen=True, slots=True)
class PartitionSpan:
    """What one partition still holds: offsets ``low <= o < high`` and their timestamps."""

    partition: int
    low: int
    high: int
    #: Timestamps (ms) of the oldest and newest record; None when the partition is empty.
    first_ms: int | None
    last_ms: int | None

    @property
    def empty(self) -> bool:
        """Whether the partition holds no record."""
        return self.first_ms is None


def held(spans: list[PartitionSpan]) -> TimeRange | None:
    """The times the spans hold together (oldest first record .. newest last record)."""
    firsts = [s.first_ms for s in spans if s.first_ms is not None]
    lasts = [s.last_ms for s in spans if s.last_ms is not None]
    if not firsts or not lasts:
        return None
    return TimeRange(min(firsts), max(max(lasts), min(firsts)) + 1)


def describe_held(topic: str, spans: list[PartitionSpan]) -> str:
    """``topic holds A .. B`` or ``topic holds no records``, for messages."""
    times = held(spans)
    return f"topic {topic} holds no records" if times is None else f"topic {topic} holds {times}"


def describe_streams(streams: dict[str, int]) -> str:
    """``a (newest 12:00:01Z), b (...)`` for messages, newest first, at most 20."""
    if not streams:
        return "none"
    names = sorted(streams, key=lambda s: -streams[s])[:20]
    more = len(streams) - len(names)
    text = ", ".join(f"{n} (newest {format_ms(streams[n])})" for n in names)
    return text + (f" and {more} more" if more > 0 else "")


def reader_consumer(settings: KafkaSettings, **extra: Any) -> Consumer:
    """A consumer that never joins a group's assignment nor commits: positions are its own."""
    config = client_config(settings) | {
        "group.id": f"kva-history-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "fetch.max.bytes": 2 * MAX_MESSAGE_BYTES,
        "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
        "receive.message.max.bytes": 2 * MAX_MESSAGE_BYTES + MESSAGE_OVERHEAD,
        "queued.max.messages.kbytes": _QUEUE_KBYTES,
        "fetch.wait.max.ms": 50,
    }
    return Consumer(config | extra)


def topic_partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    """The partitions of ``topic``.

    Raises:
        RangeError: the topic does not exist.
        KafkaUnavailable: the broker does not answer.
    """
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read the metadata of topic {topic}: {exc}") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise RangeError(f"topic {topic} does not exist")
    return sorted(found.partitions)


def watermarks(consumer: Consumer, topic: str, timeout: float) -> dict[int, tuple[int, int]]:
    """``partition -> (low, high)`` offsets of every partition of ``topic``."""
    marks = {}
    for partition in topic_partitions(consumer, topic, timeout):
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
        except KafkaException as exc:
            raise KafkaUnavailable(
                f"cannot read the offsets of {topic}[{partition}]: {exc}"
            ) from None
        marks[partition] = (int(low), int(high))
    return marks


def _read_until(
    consumer: Consumer, topic: str, spans: dict[int, tuple[int, int]], deadline: float
) -> Iterator[Message]:
    """The records of ``partition -> (start, end)`` offsets, each partition until it reaches
    ``end`` (exclusive) or its end of data, or until ``deadline``; unassigns at the end."""
    consumer.assign([TopicPartition(topic, p, start) for p, (start, _end) in spans.items()])
    pending = set(spans)
    try:
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(max(0.0, min(0.5, deadline - time.monotonic())))
            if msg is None:
                continue
            partition = msg.partition() or 0
            if partition not in pending:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(partition)
                else:
                    logger.debug("reading %s[%s]: %s", topic, partition, error.str())
                continue
            if (msg.offset() or 0) >= spans[partition][1] - 1:
                pending.discard(partition)
            yield msg
    finally:
        consumer.unassign()


class TopicPeek:
    """Repeated looks at topics with one consumer (see the module docstring); close it."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._consumer = reader_consumer(settings, **_PEEK)

    def retained(self, topic: str, timeout: float = 10.0) -> list[PartitionSpan]:
        """What each partition of ``topic`` still holds, by offset and by timestamp.

        Raises:
            RangeError: the topic does not exist.
            KafkaUnavailable: the broker does not answer.
        """
        deadline = time.monotonic() + timeout
        marks = watermarks(self._consumer, topic, timeout)
        full = {p: (low, high) for p, (low, high) in marks.items() if high > low}
        firsts: dict[int, int] = {}
        # the first record at or after the low watermark: end = low + 1 stops at it, even
        # when the offset at ``low`` is a transaction marker and the first record comes later
        for msg in _read_until(
            self._consumer, topic, {p: (lo, lo + 1) for p, (lo, _) in full.items()}, deadline
        ):
            firsts.setdefault(msg.partition() or 0, msg.timestamp()[1])
        lasts: dict[int, int] = {}
        tails = {p: (max(lo, hi - _NEWEST_TAIL), hi) for p, (lo, hi) in full.items()}
        for msg in _read_until(self._consumer, topic, tails, deadline):
            partition = msg.partition() or 0
            lasts[partition] = max(lasts.get(partition, 0), msg.timestamp()[1])
        return [
            PartitionSpan(p, low, high, firsts.get(p), lasts.get(p, 0) if p in firsts else None)
            for p, (low, high) in sorted(marks.items())
        ]

    def recent_streams(
        self, topic: str, per_partition: int = RECENT_PER_PARTITION, timeout: float = 10.0
    ) -> dict[str, int]:
        """``stream id -> newest timestamp (ms)`` among the newest records of each partition.

        For messages that name the streams a topic holds; bounded (``per_partition``
        records of each partition), so a stream silent for long may be missing.
        """
        deadline = time.monotonic() + timeout
        marks = watermarks(self._consumer, topic, timeout)
        tails = {p: (max(lo, hi - per_partition), hi) for p, (lo, hi) in marks.items() if hi > lo}
        streams: dict[str, int] = {}
        for msg in _read_until(self._consumer, topic, tails, deadline):
            key = msg.key()
            if key:
                name = key.decode("utf-8", "replace")[:128]
                streams[name] = max(streams.get(name, 0), msg.timestamp()[1])
        return streams

    def close(self) -> None:
        """Release the consumer."""
        try:
            self._consumer.close()
        except RuntimeError:
            logger.debug("peek already closed")

    def __enter__(self) -> TopicPeek:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def retained(settings: KafkaSettings, topic: str, timeout: float = 10.0) -> list[PartitionSpan]:
    """One look at what each partition of ``topic`` holds (:meth:`TopicPeek.retained`)."""
    with TopicPeek(settings) as peek:
        return peek.retained(topic, timeout)


def recent_streams(
    settings: KafkaSettings,
    topic: str,
    per_partition: int = RECENT_PER_PARTITION,
    timeout: float = 10.0,
) -> dict[str, int]:
    """One look at the streams of ``topic`` (:meth:`TopicPeek.recent_streams`)."""
    with TopicPeek(settings) as peek:
        return peek.recent_streams(topic, per_partition, timeout)
