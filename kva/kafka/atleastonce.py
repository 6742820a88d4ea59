"""The at-least-once consumer: every message, in order, committed only when the caller says so.

The opposite of :class:`~kva.kafka.consumer.LatestFrameConsumer`: nothing is
skipped. Offsets are never committed automatically; :meth:`AtLeastOnceConsumer.commit`
commits the offset *after* a handled record, so a crash (or a rebalance) before that
hands the record out again: a message may be seen twice, never lost.

While paused (a destination is down) the caller keeps calling :meth:`poll`: it then
fetches nothing but keeps the group membership alive (``max.poll.interval.ms``), and
partitions assigned during the pause are paused too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from kva.kafka.config import client_config
from kva.kafka.health import BrokerHealth
from kva.kafka.record import Record
from kva.logs import RateLimitedLog
from kva.settings import KafkaSettings

logger = logging.getLogger(__name__)

#: Largest message the consumer fetches (events are small; the topic limit is 1 MB).
_MAX_FETCH_BYTES = 4 * 1024 * 1024


class AtLeastOnceConsumer:
    """Reads ``topics`` in order for ``group_id``; offsets committed only by :meth:`commit`.

    A group without committed offsets starts at the oldest retained message.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Sequence[str],
        group_id: str,
        *,
        session_timeout_ms: int = 10000,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.health = BrokerHealth(f"consumer[{group_id}]")
        self._paused = False
        self._assigned: set[tuple[str, int]] = set()
        self._last_commit: dict[tuple[str, int], int] = {}
        self._log = RateLimitedLog(logger, interval=10.0)
        config = client_config(settings) | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": _MAX_FETCH_BYTES,
            "max.partition.fetch.bytes": _MAX_FETCH_BYTES,
            "queued.max.messages.kbytes": 16384,
            "fetch.wait.max.ms": 50,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(500, session_timeout_ms // 4),
            "topic.metadata.refresh.interval.ms": 10000,
            "error_cb": self.health.on_error,
            "on_commit": self._on_commit,
        }
        config.update(extra or {})
        self._consumer = Consumer(config)
        self._consumer.subscribe(list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke)

    @property
    def assignment(self) -> set[tuple[str, int]]:
        """The (topic, partition) pairs this consumer owns now."""
        return set(self._assigned)

    @property
    def paused(self) -> bool:
        return self._paused

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = {(tp.topic, tp.partition) for tp in partitions}
        logger.info("assigned %s", sorted(self._assigned))
        consumer.assign(partitions)
        if self._paused and partitions:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("revoked %s", sorted((tp.topic, tp.partition) for tp in partitions))
        self._commit_now({(tp.topic, tp.partition) for tp in partitions})
        self._assigned = set()
        consumer.unassign()

    def _commit_now(self, partitions: set[tuple[str, int]]) -> None:
        """Commit the last offsets of ``partitions`` synchronously (before they move on)."""
        owned = [TopicPartition(t, p, o) for (t, p), o in self._last_commit.items()
                 if (t, p) in partitions]  # fmt: skip
        for tp in owned:
            del self._last_commit[(tp.topic, tp.partition)]
        if not owned:
            return
        try:
            self._consumer.commit(offsets=owned, asynchronous=False)
        except KafkaException as exc:
            logger.warning(
                "commit of %s failed: %s", [(tp.topic, tp.partition) for tp in owned], exc
            )

    def poll(self, timeout: float = 1.0) -> Record | None:
        """The next message, or None within ``timeout`` (always None while paused)."""
        msg = self._consumer.poll(timeout)
        if msg is None:
            return None
        error = msg.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            if error.code() != KafkaError._PARTITION_EOF:
                logger.warning("consumer error: %s", error.str())
            return None
        self.health.mark_up()
        return Record.from_message(msg)

    def commit(self, done: Mapping[tuple[str, int], int]) -> bool:
        """Commit ``(topic, partition) -> offset of the last handled record``.

        Asynchronous: a later commit covers an earlier one that failed (logged), and
        :meth:`close` commits the last offsets synchronously. A commit that never lands
        (a crash, the partition moved to another member) means those records are handed
        out again: at least once. Returns False when the request could not be made.
        """
        offsets = [TopicPartition(t, p, offset + 1) for (t, p), offset in done.items()]
        if not offsets:
            return True
        self._last_commit.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            logger.warning("commit of %s failed: %s", _where(done), exc)
            return False
        return True

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            self._log.log(
                error.code(), logging.WARNING,
                "commit failed (a later one covers it): %s", error.str(),
            )  # fmt: skip

    def pause(self) -> None:
        """Fetch nothing more (the assignment and the group membership are kept)."""
        self._paused = True
        self._consumer.pause([TopicPartition(t, p) for t, p in self._assigned])

    def resume(self) -> None:
        """Fetch again after :meth:`pause`."""
        self._paused = False
        self._consumer.resume([TopicPartition(t, p) for t, p in self._assigned])

    def lag(self, timeout: float = 1.0) -> dict[tuple[str, int], int]:
        """Messages not yet committed, per assigned partition (asks the broker; bounded).

        A partition whose offsets cannot be read within ``timeout`` is left out.
        """
        partitions = [TopicPartition(t, p) for t, p in sorted(self._assigned)]
        if not partitions:
            return {}
        try:
            committed = self._consumer.committed(partitions, timeout=timeout)
        except KafkaException as exc:
            logger.debug("cannot read committed offsets: %s", exc)
            return {}
        lags: dict[tuple[str, int], int] = {}
        for tp in committed:
            try:
                low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            except KafkaException as exc:
                logger.debug("cannot read the watermarks of %s: %s", tp.topic, exc)
                continue
            start = low if tp.offset in (OFFSET_INVALID, None) or tp.offset < 0 else tp.offset
            lags[(tp.topic, tp.partition)] = max(0, high - max(start, low))
        return lags

    def close(self) -> None:
        """Commit the last offsets (synchronously, bounded by the broker's timeouts), leave
        the group (uncommitted records go to the next member) and release resources."""
        try:
            self._commit_now(self._assigned)
        except RuntimeError:
            logger.debug("consumer already closed")
        try:
            self._consumer.close()
        except RuntimeError:
            logger.debug("consumer already closed")


def _where(done: Mapping[tuple[str, int], int]) -> str:
    return ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(done.items()))
