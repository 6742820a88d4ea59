"""The latest-frame consumer: start at the newest message, and jump ahead when behind."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from kva.kafka.config import MAX_MESSAGE_BYTES, MESSAGE_OVERHEAD, client_config
from kva.kafka.health import BrokerHealth
from kva.kafka.record import Record
from kva.settings import KafkaSettings

logger = logging.getLogger(__name__)

#: Streams remembered per partition for the latest-frame jump.
_MAX_TRACKED_STREAMS = 1024
#: librdkafka's logical offset "N messages before the end" is TAIL_BASE - N.
_OFFSET_TAIL_BASE = -2000


class LatestFrameConsumer:
    """A consumer that always hands out the newest frame of each stream.

    Where it starts on assignment: ``start_at="newest"`` the newest existing
    message (the newest ``tail`` messages of each partition), ``"end"`` only
    messages produced from now on, ``"beginning"`` everything retained (an
    ordinary consumer).

    Each received message is compared with the partition's high watermark.
    When more than ``max_lag`` messages beyond the newest frame of each stream
    are waiting, it seeks ahead to the last S messages (S = streams seen in
    that partition within ``stream_window`` seconds; 1 for a partition with
    one camera) and counts the skipped messages in :attr:`skipped` (and calls
    ``on_skip(topic, n)``). ``max_lag=None`` turns the seek off.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Sequence[str],
        group_id: str,
        *,
        max_lag: int | None = 0,
        start_at: Literal["newest", "end", "beginning"] = "newest",
        tail: int = 1,
        on_skip: Callable[[str, int], None] | None = None,
        stream_window: float = 10.0,
        session_timeout_ms: int = 10000,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.health = BrokerHealth(f"consumer[{group_id}]")
        self.max_lag = max_lag
        self.stream_window = stream_window
        self.skipped = 0
        self._on_skip = on_skip
        self._start_offset = {
            "newest": _OFFSET_TAIL_BASE - max(1, tail),
            "end": OFFSET_END,
            "beginning": OFFSET_BEGINNING,
        }[start_at]
        config = client_config(settings) | {
            "group.id": group_id,
            "enable.auto.commit": True,
            "auto.offset.reset": "latest",
            "fetch.max.bytes": 4 * MAX_MESSAGE_BYTES,
            "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
            "receive.message.max.bytes": 4 * MAX_MESSAGE_BYTES + MESSAGE_OVERHEAD,
            "queued.max.messages.kbytes": 65536,
            "fetch.wait.max.ms": 50,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(500, session_timeout_ms // 4),
            "topic.metadata.refresh.interval.ms": 10000,
            "error_cb": self.health.on_error,
        }
        config.update(extra or {})
        self._consumer = Consumer(config)
        self._assigned: set[tuple[str, int]] = set()
        self._recent_keys: dict[tuple[str, int], dict[bytes | None, float]] = {}
        self._consumer.subscribe(list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke)

    @property
    def assignment(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this consumer owns now."""
        return set(self._assigned)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            tp.offset = self._start_offset
        self._assigned = {(tp.topic, tp.partition) for tp in partitions}
        logger.info("assigned %s", sorted(self._assigned))
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("revoked %s", sorted((tp.topic, tp.partition) for tp in partitions))
        self._assigned = set()
        consumer.unassign()

    def poll(self, timeout: float = 1.0) -> Record | None:
        """The next newest message, or None when nothing arrives within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            msg = self._consumer.poll(remaining)
            if msg is None:
                return None
            error = msg.error()
            if error is not None:
                self._handle_error(error)
            elif not self._skip_if_behind(msg):
                self.health.mark_up()
                return Record.from_message(msg)
            if time.monotonic() >= deadline:
                return None

    def _handle_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            # a subscribed topic nobody created yet: it is picked up once it exists
            logger.info("waiting for a topic to exist: %s", error.str())
            return
        if error.fatal():
            raise KafkaException(error)
        logger.warning("consumer error: %s", error.str())

    def _skip_if_behind(self, msg: Message) -> bool:
        """Seek ahead when too far behind; True when ``msg`` was skipped.

        Several streams may share a partition, so the jump does not land on
        the single newest message (which would starve every other stream) but
        on the last S messages, S being the number of streams seen in that
        partition lately: each of them then gets its newest frame.
        """
        if self.max_lag is None:
            return False
        topic, partition, offset = msg.topic() or "", msg.partition() or 0, msg.offset() or 0
        streams = self._note_stream(topic, partition, msg.key())
        _low, high = self._consumer.get_watermark_offsets(
            TopicPartition(topic, partition), cached=True
        )
        target = high - streams
        if high < 0 or target - offset <= self.max_lag:
            return False
        try:
            self._consumer.seek(TopicPartition(topic, partition, target))
        except KafkaException as exc:
            logger.debug("seek to newest failed (%s); delivering in order", exc)
            return False
        skipped = target - offset
        self.skipped += skipped
        if self._on_skip is not None:
            self._on_skip(topic, skipped)
        return True

    def _note_stream(self, topic: str, partition: int, key: bytes | None) -> int:
        """Record ``key`` as active in the partition; return how many streams are active there."""
        now = time.monotonic()
        seen = self._recent_keys.setdefault((topic, partition), {})
        if len(seen) >= _MAX_TRACKED_STREAMS and key not in seen:
            seen.pop(min(seen, key=seen.__getitem__))
        seen[key] = now
        for stale in [k for k, t in seen.items() if now - t > self.stream_window]:
            del seen[stale]
        return max(1, len(seen))

    def pause(self) -> None:
        """Stop fetching (the assignment is kept)."""
        self._consumer.pause([TopicPartition(t, p) for t, p in self._assigned])

    def resume(self) -> None:
        """Fetch again after :meth:`pause`."""
        self._consumer.resume([TopicPartition(t, p) for t, p in self._assigned])

    def close(self) -> None:
        """Leave the group and release resources."""
        try:
            self._consumer.close()
        except RuntimeError:
            logger.debug("consumer already closed")
