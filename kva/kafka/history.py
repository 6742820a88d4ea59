"""Reading the past: what a topic still holds, and the records of a time range.

Every record kva writes carries its frame's capture time as its Kafka timestamp
(:meth:`~kva.kafka.producer.FrameProducer.send`), so ``offsets_for_times`` maps a
:class:`~kva.timerange.TimeRange` of capture times to offsets. A stream lives in
one partition (the key is the stream id), but the reader does not assume which:
it reads every partition of the range and keeps the records whose key is the
stream, so a topic whose partition count changed is still read whole.

Nothing here joins a consumer group or commits an offset: the live consumers'
positions are never touched. Memory is bounded by librdkafka's fetch queue
whatever the range's length: records are handed out one at a time.
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
from kva.kafka.record import Record
from kva.settings import KafkaSettings
from kva.timerange import TimeRange, format_ms

logger = logging.getLogger(__name__)

#: librdkafka's prefetch queue per reader (KiB): the bound on a reader's memory.
_QUEUE_KBYTES = 32 * 1024
#: Records read back per partition by :func:`recent_streams`.
RECENT_PER_PARTITION = 64


#: Fetch sizes of a consumer that reads one record per partition (:func:`retained`, which the
#: viewer calls every half minute): a broker returns at least the first record batch whatever
#: the limit, so the smallest limits fetch one batch, not the 16 MiB a partition may send
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


def _reader_consumer(settings: KafkaSettings, **extra: Any) -> Consumer:
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


def _partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read the metadata of topic {topic}: {exc}") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise RangeError(f"topic {topic} does not exist")
    return sorted(found.partitions)


def _watermarks(consumer: Consumer, topic: str, partition: int, timeout: float) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout
        )
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read the offsets of {topic}[{partition}]: {exc}") from None
    return int(low), int(high)


def _first_timestamps(
    consumer: Consumer, topic: str, offsets: dict[int, int], deadline: float
) -> dict[int, int]:
    """Timestamp of the first record at or after ``offsets[p]`` in each partition."""
    consumer.assign([TopicPartition(topic, p, o) for p, o in offsets.items()])
    found: dict[int, int] = {}
    pending = set(offsets)
    while pending and time.monotonic() < deadline:
        msg = consumer.poll(max(0.0, min(0.5, deadline - time.monotonic())))
        if msg is None:
            continue
        partition = msg.partition() or 0
        if partition not in pending:
            continue
        error = msg.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            logger.debug("reading %s[%s]: %s", topic, partition, error.str())
            continue
        if error is None:
            found[partition] = msg.timestamp()[1]
        pending.discard(partition)
        consumer.incremental_unassign([TopicPartition(topic, partition)])
    consumer.unassign()
    return found


def retained(settings: KafkaSettings, topic: str, timeout: float = 10.0) -> list[PartitionSpan]:
    """What each partition of ``topic`` still holds, by offset and by timestamp.

    Raises:
        RangeError: the topic does not exist.
        KafkaUnavailable: the broker does not answer.
    """
    consumer = _reader_consumer(settings, **_PEEK)
    try:
        deadline = time.monotonic() + timeout
        marks = {
            p: _watermarks(consumer, topic, p, timeout)
            for p in _partitions(consumer, topic, timeout)
        }
        full = {p: (low, high) for p, (low, high) in marks.items() if high > low}
        firsts = _first_timestamps(
            consumer, topic, {p: lo for p, (lo, _) in full.items()}, deadline
        )
        lasts = {p: _newest(consumer, topic, p, full[p], deadline) for p in full}
    finally:
        consumer.close()
    return [
        PartitionSpan(
            p, low, high, firsts.get(p), lasts.get(p) if firsts.get(p) is not None else None
        )
        for p, (low, high) in sorted(marks.items())
    ]


def _newest(
    consumer: Consumer, topic: str, partition: int, marks: tuple[int, int], deadline: float
) -> int:
    """The largest timestamp among the last few records of one partition (0 if none read).

    A few, not one: transaction markers take offsets and are never handed out.
    """
    low, high = marks
    consumer.assign([TopicPartition(topic, partition, max(low, high - 4))])
    newest = 0
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(max(0.0, min(0.5, deadline - time.monotonic())))
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                continue
            newest = max(newest, msg.timestamp()[1])
            if (msg.offset() or 0) >= high - 1:
                break
    finally:
        consumer.unassign()
    return newest


def resolve_offsets(
    settings: KafkaSettings, topic: str, time_range: TimeRange, timeout: float = 10.0
) -> dict[int, tuple[int, int]]:
    """``partition -> (start, end)`` offsets of the records of ``time_range`` (end exclusive).

    Partitions with nothing in the range are left out.

    Raises:
        RangeError: the topic does not exist.
        KafkaUnavailable: the broker does not answer.
    """
    consumer = _reader_consumer(settings)
    try:
        return _resolve(consumer, topic, time_range, timeout)
    finally:
        consumer.close()


def _resolve(
    consumer: Consumer, topic: str, time_range: TimeRange, timeout: float
) -> dict[int, tuple[int, int]]:
    partitions = _partitions(consumer, topic, timeout)
    marks = {p: _watermarks(consumer, topic, p, timeout) for p in partitions}
    starts = _offsets_for(consumer, topic, partitions, time_range.start_ms, marks, timeout)
    ends = _offsets_for(consumer, topic, partitions, time_range.end_ms, marks, timeout)
    return {p: (starts[p], ends[p]) for p in partitions if starts[p] < ends[p]}


def _offsets_for(
    consumer: Consumer,
    topic: str,
    partitions: list[int],
    epoch_ms: int,
    marks: dict[int, tuple[int, int]],
    timeout: float,
) -> dict[int, int]:
    """The first offset with a timestamp >= ``epoch_ms`` per partition (high watermark if none)."""
    wanted = [TopicPartition(topic, p, epoch_ms) for p in partitions]
    try:
        found = consumer.offsets_for_times(wanted, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot look up times in topic {topic}: {exc}") from None
    # -1: no record that late, so the range runs to the end of what the partition holds
    return {tp.partition: (tp.offset if tp.offset >= 0 else marks[tp.partition][1]) for tp in found}


class RangeReader:
    """The records of one time range of a topic, optionally of one stream, oldest first.

    Iterate it once; it reads every partition from the range's first offset to its
    end offset (resolved on construction) and hands out each record whose timestamp
    lies in the range (and whose key is ``stream_id``, when given). Use as a context
    manager or call :meth:`close`.

    Raises (on construction):
        RangeError: the topic does not exist, or holds nothing in the range (the
            message says what it does hold).
        KafkaUnavailable: the broker does not answer.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        time_range: TimeRange,
        *,
        stream_id: str | None = None,
        timeout: float = 10.0,
        idle_timeout: float = 30.0,
    ) -> None:
        self.topic = topic
        self.time_range = time_range
        self.stream_id = stream_id
        self.idle_timeout = idle_timeout
        #: Records of the offset range that were not handed out (another stream, out of time).
        self.passed_over = 0
        self._key = None if stream_id is None else stream_id.encode()
        self._consumer = _reader_consumer(settings)
        try:
            self.offsets = _resolve(self._consumer, topic, time_range, timeout)
        except BaseException:
            self._consumer.close()
            raise
        if not self.offsets:
            spans = retained(settings, topic, timeout)
            self._consumer.close()
            raise RangeError(f"nothing in {time_range}: {describe_held(topic, spans)}")
        self._position = {p: start for p, (start, _end) in self.offsets.items()}

    @property
    def total_offsets(self) -> int:
        """Offsets in the range over all partitions (every stream: an upper bound on records)."""
        return sum(end - start for start, end in self.offsets.values())

    @property
    def done_offsets(self) -> int:
        """Offsets read so far (for a progress bar against :attr:`total_offsets`)."""
        return sum(self._position[p] - start for p, (start, _end) in self.offsets.items())

    def __iter__(self) -> Iterator[Record]:
        pending = set(self.offsets)
        self._consumer.assign(
            [TopicPartition(self.topic, p, start) for p, (start, _e) in self.offsets.items()]
        )
        idle_since = time.monotonic()
        while pending:
            msg = self._consumer.poll(0.5)
            if msg is None:
                self._finish_by_position(pending)
                if pending and time.monotonic() - idle_since > self.idle_timeout:
                    raise KafkaUnavailable(
                        f"no record of {self.topic} arrived for {self.idle_timeout:g}s "
                        f"({len(pending)} partition(s) unfinished)"
                    )
                continue
            idle_since = time.monotonic()
            record = self._accept(msg, pending)
            if record is not None:
                yield record

    def _accept(self, msg: Message, pending: set[int]) -> Record | None:
        partition = msg.partition() or 0
        if partition not in pending:
            return None
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._finish_by_position(pending)
            elif error.fatal():
                raise KafkaUnavailable(f"reading {self.topic}: {error.str()}")
            else:
                logger.warning("reading %s: %s", self.topic, error.str())
            return None
        offset = msg.offset() or 0
        end = self.offsets[partition][1]
        if offset >= end:
            self._done(partition, pending, end)
            return None
        self._position[partition] = offset + 1
        if offset + 1 >= end:
            self._done(partition, pending, end)
        if (self._key is not None and msg.key() != self._key) or not self.time_range.contains(
            msg.timestamp()[1]
        ):
            self.passed_over += 1
            return None
        return Record.from_message(msg)

    def _finish_by_position(self, pending: set[int]) -> None:
        """Partitions whose position passed their end (the last offsets may be markers)."""
        if not pending:
            return
        tps = [TopicPartition(self.topic, p) for p in pending]
        for tp in self._consumer.position(tps):
            end = self.offsets[tp.partition][1]
            if tp.offset >= end:
                self._done(tp.partition, pending, end)

    def _done(self, partition: int, pending: set[int], end: int) -> None:
        self._position[partition] = end
        if partition in pending:
            pending.discard(partition)
            self._consumer.incremental_unassign([TopicPartition(self.topic, partition)])

    def close(self) -> None:
        """Release the consumer."""
        try:
            self._consumer.close()
        except RuntimeError:
            logger.debug("range reader already closed")

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recent_streams(
    settings: KafkaSettings,
    topic: str,
    per_partition: int = RECENT_PER_PARTITION,
    timeout: float = 10.0,
) -> dict[str, int]:
    """``stream id -> newest timestamp (ms)`` among the newest records of each partition.

    For messages that name the streams a topic holds; bounded (``per_partition``
    records of each partition), so a stream silent for long may be missing.
    """
    consumer = _reader_consumer(settings)
    streams: dict[str, int] = {}
    try:
        marks = {
            p: _watermarks(consumer, topic, p, timeout)
            for p in _partitions(consumer, topic, timeout)
        }
        starts = {p: max(lo, hi - per_partition) for p, (lo, hi) in marks.items() if hi > lo}
        deadline = time.monotonic() + timeout
        consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
        pending = set(starts)
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition() or 0)
                continue
            key = msg.key()
            if key:
                name = key.decode("utf-8", "replace")[:128]
                streams[name] = max(streams.get(name, 0), msg.timestamp()[1])
            if (msg.offset() or 0) >= marks[msg.partition() or 0][1] - 1:
                pending.discard(msg.partition() or 0)
    finally:
        consumer.close()
    return streams


def describe_streams(streams: dict[str, int]) -> str:
    """``a (newest 12:00:01Z), b (...)`` for messages, newest first, at most 20."""
    if not streams:
        return "none"
    names = sorted(streams, key=lambda s: -streams[s])[:20]
    more = len(streams) - len(names)
    text = ", ".join(f"{n} (newest {format_ms(streams[n])})" for n in names)
    return text + (f" and {more} more" if more > 0 else "")
