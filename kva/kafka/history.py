"""Reading the past: what a topic still holds, and the records of a time range.

Every record kva writes carries its frame's capture time as its Kafka timestamp
(:meth:`~kva.kafka.producer.FrameProducer.send`), so ``offsets_for_times`` maps a
:class:`~kva.timerange.TimeRange` of capture times to offsets. A stream lives in
one partition (the key is the stream id), but the reader does not assume which:
it reads every partition of the range and keeps the records whose key is the
stream, so a topic whose partition count changed is still read whole.

Nothing here joins a consumer group or commits an offset: the live consumers'
positions are never touched (what a topic holds, and its streams, are looked at
by :mod:`kva.kafka.peek`). Memory is bounded by librdkafka's fetch queue
whatever the range's length: records are handed out one at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from kva.kafka.errors import KafkaUnavailable
from kva.kafka.peek import RangeError, describe_held, reader_consumer, retained, watermarks
from kva.kafka.record import Record
from kva.settings import KafkaSettings
from kva.timerange import TimeRange

logger = logging.getLogger(__name__)


def resolve_offsets(
    settings: KafkaSettings, topic: str, time_range: TimeRange, timeout: float = 10.0
) -> dict[int, tuple[int, int]]:
    """``partition -> (start, end)`` offsets of the records of ``time_range`` (end exclusive).

    Partitions with nothing in the range are left out.

    Raises:
        RangeError: the topic does not exist.
        KafkaUnavailable: the broker does not answer.
    """
    consumer = reader_consumer(settings)
    try:
        return _resolve(consumer, topic, time_range, timeout)
    finally:
        consumer.close()


def _resolve(
    consumer: Consumer, topic: str, time_range: TimeRange, timeout: float
) -> dict[int, tuple[int, int]]:
    marks = watermarks(consumer, topic, timeout)
    partitions = sorted(marks)
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
        self._consumer = reader_consumer(settings)
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
