"""Exactly-once read-process-write: a consumer of fixed offset ranges and a transactional producer.

The pair of Kafka's transactions: :class:`TransactionalProducer` writes a batch of
outputs and, in the *same* transaction, the consumer group's offsets after the inputs
that made them (``send_offsets_to_transaction``). Either both become visible or
neither does, so a process killed mid-batch leaves no output of that batch behind,
and its successor starts after the last committed batch.

Terms:

- **transactional id**: one per logical writer, stable across restarts. A new producer
  with the same id *fences* the old one (``init_transactions``): the old producer's
  open transaction is aborted and any further write of it fails as fatal.
- **read_committed**: consumers of the outputs (and :class:`RangeConsumer` itself) see
  only messages of committed transactions.

:class:`RangeConsumer` reads assigned partitions from given offsets without joining the
group (``assign``, not ``subscribe``): the group is only where the transactions store
their offsets, so nothing rebalances and nobody else's offsets move.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from kva.kafka.config import MAX_MESSAGE_BYTES, MESSAGE_OVERHEAD, client_config
from kva.kafka.health import BrokerHealth
from kva.kafka.producer import Headers, produce
from kva.kafka.record import Record
from kva.settings import KafkaSettings

logger = logging.getLogger(__name__)

#: The transaction timeout (ms): a transaction open this long is aborted by the broker (whose
#: ``transaction.max.timeout.ms`` is 15 minutes by default).
TRANSACTION_TIMEOUT_MS = 300_000


#: The errors that mean another producer registered the same transactional id since.
_FENCED = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


class TransactionError(RuntimeError):
    """A transaction failed. ``fenced``: another producer took over the transactional id."""

    def __init__(self, message: str, *, fenced: bool = False) -> None:
        super().__init__(message)
        self.fenced = fenced


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    """A group's committed offset of one partition (the next offset to read) and its metadata."""

    offset: int
    metadata: str = ""


class RangeConsumer:
    """Reads partitions of one topic from given offsets, committed messages only.

    Never commits by itself and never joins the group: offsets are stored only through
    :meth:`TransactionalProducer.commit`. ``enable.partition.eof`` is on, so
    :meth:`poll` reports the end of a partition (see :attr:`at_end`).
    """

    def __init__(self, settings: KafkaSettings, topic: str, group_id: str) -> None:
        self.topic = topic
        self.group_id = group_id
        self.health = BrokerHealth(f"range-consumer[{group_id}]")
        #: partitions whose last poll reached the end of what is there (cleared by new data)
        self.at_end: set[int] = set()
        config = client_config(settings) | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "fetch.max.bytes": 4 * MAX_MESSAGE_BYTES,
            "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
            "receive.message.max.bytes": 4 * MAX_MESSAGE_BYTES + MESSAGE_OVERHEAD,
            # bounded prefetch: the caller applies back-pressure by polling less
            "queued.max.messages.kbytes": 65536,
            "fetch.wait.max.ms": 50,
            "error_cb": self.health.on_error,
        }
        self._consumer = Consumer(config)

    def committed(self, partitions: list[int], timeout: float = 10.0) -> dict[int, CommittedOffset]:
        """The group's committed offsets of ``partitions`` (those without one are left out).

        Under ``read_committed`` the broker answers only once no transaction of the group
        is pending, so what is returned is final.
        """
        asked = [TopicPartition(self.topic, p) for p in partitions]
        try:
            answer = self._consumer.committed(asked, timeout=timeout)
        except KafkaException as exc:
            raise TransactionError(
                f"cannot read the offsets of group {self.group_id}: {exc}"
            ) from None
        return {
            tp.partition: CommittedOffset(tp.offset, tp.metadata or "")
            for tp in answer
            if tp.offset not in (OFFSET_INVALID, None) and tp.offset >= 0
        }

    def assign(self, starts: Mapping[int, int]) -> None:
        """Read each partition from its offset in ``starts``."""
        self.at_end.clear()
        self._consumer.assign([TopicPartition(self.topic, p, o) for p, o in starts.items()])

    def pause(self, partition: int) -> None:
        """Fetch nothing more from ``partition``."""
        self._consumer.pause([TopicPartition(self.topic, partition)])

    def poll(self, timeout: float) -> Record | None:
        """The next committed message, or None (nothing within ``timeout``, or an end)."""
        msg = self._consumer.poll(timeout)
        if msg is None:
            return None
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self.at_end.add(msg.partition() or 0)
                return None
            if error.fatal():
                raise KafkaException(error)
            logger.warning("consumer error: %s", error.str())
            return None
        self.health.mark_up()
        record = Record.from_message(msg)
        self.at_end.discard(record.partition)
        return record

    def group_metadata(self) -> object:
        """The group metadata a transaction's offsets are sent with."""
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        """Release resources (no offsets are committed: the transactions did that)."""
        try:
            self._consumer.close()
        except RuntimeError:
            logger.debug("consumer already closed")


class TransactionalProducer:
    """A producer whose messages become visible only with :meth:`commit`.

    Every method raises :class:`TransactionError` when the transaction cannot go on;
    the caller then stops (its successor resumes from the last committed offsets).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        transactional_id: str,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.transactional_id = transactional_id
        self.health = BrokerHealth(f"producer[{transactional_id}]")
        config = client_config(settings) | {
            "transactional.id": transactional_id,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.max.bytes": MAX_MESSAGE_BYTES,
            "queue.buffering.max.kbytes": 256 * 1024,
            "compression.type": "none",
            "error_cb": self.health.on_error,
        }
        config.update(extra or {})
        self._producer = Producer(config)
        self._open = False

    def start(self, timeout: float = 30.0) -> None:
        """Register the transactional id (fencing any older producer of it) and begin."""
        self._call("init_transactions", self._producer.init_transactions, timeout)
        self._begin()

    def _begin(self) -> None:
        self._call("begin_transaction", self._producer.begin_transaction)
        self._open = True

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        *,
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue one message in the open transaction (``timestamp_ms`` None: now).

        Raises:
            ProduceDropped: the local queue stayed full.
            TransactionError: the transaction failed.
        """
        try:
            produce(self._producer, topic, key, value, headers, timestamp_ms=timestamp_ms)
        except KafkaException as exc:
            raise self._error("produce", exc) from None

    def commit(
        self,
        consumer: RangeConsumer,
        offsets: Mapping[int, CommittedOffset],
        timeout: float = 30.0,
    ) -> None:
        """Commit the open transaction with ``offsets`` (partition -> next offset to read,
        with its metadata) of ``consumer``'s group and topic, then begin the next one."""
        positions = [
            TopicPartition(consumer.topic, p, c.offset, c.metadata)
            for p, c in sorted(offsets.items())
        ]
        self._call(
            "send_offsets_to_transaction",
            self._producer.send_offsets_to_transaction,
            positions,
            consumer.group_metadata(),
            timeout,
        )
        self._call("commit_transaction", self._producer.commit_transaction, timeout)
        self.health.mark_up()
        self._open = False
        self._begin()

    def abort(self, timeout: float = 10.0) -> None:
        """Abort the open transaction (its messages are never seen by read_committed readers)."""
        if not self._open:
            return
        self._open = False
        try:
            self._producer.abort_transaction(timeout)
        except KafkaException as exc:
            logger.warning("abort of the transaction failed: %s", exc)

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports and errors."""
        self._producer.poll(timeout)

    def _call(self, what: str, method: Any, *args: Any) -> None:
        try:
            method(*args)
        except KafkaException as exc:
            raise self._error(what, exc) from None

    def _error(self, what: str, exc: KafkaException) -> TransactionError:
        error = exc.args[0] if exc.args else None
        fenced = isinstance(error, KafkaError) and error.code() in _FENCED
        detail = error.str() if isinstance(error, KafkaError) else str(exc)
        if fenced:
            detail += (
                f" (another producer with transactional id {self.transactional_id!r} took over)"
            )
        return TransactionError(f"{what} failed: {detail}", fenced=fenced)
