"""The thin Kafka wrapper: the only module in kva that imports ``confluent_kafka``.

It builds producers and consumers from :class:`~kva.settings.KafkaSettings`,
creates topics with frame-friendly defaults, and implements the
**latest-frame seek**: a consumer that starts at the newest message of each
partition and, whenever it falls more than ``max_lag`` messages behind the
high watermark, jumps to the newest message and counts what it skipped.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from kva.frame import (
    DEFAULT_MAX_FRAME_BYTES,
    Frame,
    FrameDecodeError,
    decode_frame,
    encode_frame,
)
from kva.logs import RateLimitedLog
from kva.settings import KafkaSettings

logger = logging.getLogger(__name__)


class _OncePerInterval(logging.Filter):
    """Lets the same librdkafka complaint through once per interval, not on every retry."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = str(
            record.args[1]
            if isinstance(record.args, tuple) and len(record.args) > 1
            else record.msg
        )
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) < self._interval:
            return False
        self._last[key] = now
        return True


#: librdkafka's own log lines go through Python logging, rate-limited.
_librdkafka_logger = logging.getLogger("kva.kafka.librdkafka")
_librdkafka_logger.addFilter(_OncePerInterval())

#: Streams remembered per partition for the latest-frame jump.
_MAX_TRACKED_STREAMS = 1024
#: librdkafka's logical offset "N messages before the end" is TAIL_BASE - N.
_OFFSET_TAIL_BASE = -2000
#: Room for headers and batch framing on top of the largest frame.
_MESSAGE_OVERHEAD = 1024 * 1024
MAX_MESSAGE_BYTES = DEFAULT_MAX_FRAME_BYTES + _MESSAGE_OVERHEAD

Headers = Sequence[tuple[str, bytes]]
DeliveryCallback = Callable[[str | None, "Record | None"], None]


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached in time."""


class ProduceDropped(RuntimeError):
    """A message could not be queued (local queue full after bounded retries)."""


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed (or delivered) Kafka message, detached from librdkafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_ms: int = 0
    #: Why the headers could not be read (e.g. a header name that is not UTF-8), else None.
    header_error: str | None = None

    def frame(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Frame:
        """Decode as a :class:`Frame`; raises :class:`~kva.frame.FrameDecodeError`."""
        if self.header_error is not None:
            raise FrameDecodeError("bad_header", self.header_error)
        return decode_frame(self.key, self.value, self.headers, max_frame_bytes)

    @classmethod
    def from_message(cls, msg: Message) -> Record:
        _kind, timestamp = msg.timestamp()
        pairs = _header_pairs(msg)
        return cls(
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            key=msg.key(),
            value=msg.value(),
            headers=[] if pairs is None else pairs,
            timestamp_ms=timestamp,
            header_error=None if pairs is not None else "a header name is not UTF-8",
        )


def _header_pairs(msg: Message) -> list[tuple[str, bytes | None]] | None:
    """The headers as (name, value) pairs, or None when they cannot be read safely.

    confluent-kafka turns a header name that is not UTF-8 into a NULL inside the
    (name, value) tuple: ``Message.headers()`` then raises SystemError, or returns
    (and caches) a list whose tuple crashes the interpreter when unpacked, leaving the
    decoding error pending (the next checked call raises SystemError). Such a tuple is
    recognised without touching the NULL: the garbage collector's traversal skips NULL
    members, so it reports fewer than two referents.
    """
    try:
        headers = msg.headers()
        if not headers:
            return []
        items = list(headers.items()) if isinstance(headers, dict) else list(headers)
        pairs: list[tuple[str, bytes | None]] = []
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2 or len(gc.get_referents(item)) != 2:
                return None
            name, value = item
            pairs.append((name, value if isinstance(value, bytes | None) else value.encode()))
    except SystemError:  # the decoding error confluent-kafka left pending surfaces here
        return None
    return pairs


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create. ``config`` overrides the frame-topic defaults."""

    name: str
    partitions: int = 4
    replication_factor: int = -1
    config: Mapping[str, str] = field(default_factory=dict)


#: Frames are about now: keep a minute, bound the size, let a 16 MB frame through.
FRAME_TOPIC_CONFIG: Mapping[str, str] = {
    "retention.ms": "60000",
    "retention.bytes": str(256 * 1024 * 1024),
    "segment.bytes": str(64 * 1024 * 1024),
    "segment.ms": "60000",
    "max.message.bytes": str(MAX_MESSAGE_BYTES),
    "cleanup.policy": "delete",
}


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """librdkafka settings shared by producers, consumers and admin clients.

    Contains secrets: never log it (use :func:`redacted`).
    """
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_server,
        "security.protocol": settings.security_protocol.lower(),
        "socket.connection.setup.timeout.ms": 10000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 2000,
        "logger": _librdkafka_logger,
    }
    optional = {
        "sasl.mechanism": settings.sasl_mechanism,
        "sasl.username": settings.sasl_username,
        "sasl.password": settings.sasl_password and settings.sasl_password.get_secret_value(),
        "ssl.ca.location": settings.ssl_ca_location,
        "ssl.certificate.location": settings.ssl_certificate_location,
        "ssl.key.location": settings.ssl_key_location,
        "ssl.key.password": settings.ssl_key_password
        and settings.ssl_key_password.get_secret_value(),
    }
    config.update({k: v for k, v in optional.items() if v})
    return config


def redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a librdkafka config that is safe to log."""
    return {k: ("***" if "password" in k or "secret" in k else v) for k, v in config.items()}


class _BrokerHealth:
    """Tracks whether all brokers are down, from librdkafka's error callback."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._log = RateLimitedLog(logger, interval=10.0)
        self._down_since: float | None = None
        self._lock = threading.Lock()

    def on_error(self, error: KafkaError) -> None:
        code = error.code()
        if code in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            with self._lock:
                if self._down_since is None:
                    self._down_since = time.monotonic()
            self._log.log(
                "down", logging.WARNING, "%s: Kafka unreachable: %s", self._name, error.str()
            )
        elif code == KafkaError._AUTHENTICATION or code == KafkaError.SASL_AUTHENTICATION_FAILED:
            logger.error("%s: Kafka authentication failed: %s", self._name, error.str())
        elif error.fatal():
            logger.error("%s: fatal Kafka error: %s", self._name, error.str())
        else:
            self._log.log(code, logging.WARNING, "%s: Kafka error: %s", self._name, error.str())

    def mark_up(self) -> None:
        with self._lock:
            if self._down_since is not None:
                logger.info("%s: Kafka reachable again", self._name)
            self._down_since = None

    def down_for(self) -> float:
        """Seconds since all brokers went down (0 when reachable)."""
        with self._lock:
            return 0.0 if self._down_since is None else time.monotonic() - self._down_since


def wait_for_broker(settings: KafkaSettings, timeout: float | None = None) -> int:
    """Block until the cluster answers a metadata request; return the broker count.

    Raises:
        KafkaUnavailable: no answer within ``timeout`` (default ``settings.broker_timeout``).
    """
    limit = settings.broker_timeout if timeout is None else timeout
    errors: list[str] = []
    config = client_config(settings) | {
        "error_cb": lambda e: errors.append(e.str()),
        "log_level": 0,
    }
    admin = AdminClient(config)
    try:
        metadata = admin.list_topics(timeout=limit)
    except KafkaException as exc:
        admin.poll(0.5)  # serve the error callbacks: they say why (refused, auth failed, ...)
        auth = [e for e in errors if "authentication" in e.lower()]
        detail = (auth or errors or [str(exc.args[0].str() if exc.args else exc)])[-1]
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.bootstrap_server} within {limit:g}s: {detail}"
        ) from None
    return len(metadata.brokers)


def partition_leaders(settings: KafkaSettings, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """``partition -> leader broker id`` of ``topic`` (-1 while a partition has no leader)."""
    admin = AdminClient(client_config(settings))
    try:
        metadata = admin.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read metadata of {topic}: {exc}") from None
    partitions = metadata.topics[topic].partitions
    return {p.id: p.leader for p in partitions.values()}


def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec], timeout: float = 30.0
) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are).

    Transient errors (a broker handle replaced while the client learns the
    cluster, a controller moving) are retried until ``timeout``.
    """
    admin = AdminClient(client_config(settings))
    pending = {spec.name: spec for spec in specs}
    deadline = time.monotonic() + timeout
    while True:
        try:
            _create_missing(admin, pending, max(1.0, deadline - time.monotonic()))
            return
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _TRANSIENT
            )
            if not retriable or time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"cannot create topics at {settings.bootstrap_server}: {exc}"
                ) from None
            logger.debug("retrying topic creation after %s", exc)
            time.sleep(0.5)


_TRANSIENT = frozenset(
    {
        KafkaError._DESTROY_BROKER,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError.NOT_CONTROLLER,
    }
)


def _create_missing(admin: AdminClient, pending: dict[str, TopicSpec], timeout: float) -> None:
    existing = set(admin.list_topics(timeout=timeout).topics)
    for name in existing & set(pending):
        del pending[name]
    if not pending:
        return
    wanted = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            config=dict(FRAME_TOPIC_CONFIG) | dict(spec.config),
        )
        for spec in pending.values()
    ]
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            logger.info("created topic %s", name)
        except KafkaException as exc:
            if not (exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise
        del pending[name]


class FrameProducer:
    """A producer of frames (and other messages) with bounded local buffering.

    ``BufferError`` (local queue full) is retried ``buffer_retries`` times,
    serving delivery reports in between; then the message is dropped and
    counted, so a dead broker never grows memory without bound.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        acks: str = "1",
        linger_ms: int = 2,
        queue_max_kbytes: int = 256 * 1024,
        message_timeout_ms: int = 30000,
        buffer_retries: int = 3,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.health = _BrokerHealth("producer")
        config = client_config(settings) | {
            "acks": acks,
            "linger.ms": linger_ms,
            "message.max.bytes": MAX_MESSAGE_BYTES,
            "queue.buffering.max.kbytes": queue_max_kbytes,
            "queue.buffering.max.messages": 10000,
            "message.timeout.ms": message_timeout_ms,
            "compression.type": "none",
            "error_cb": self.health.on_error,
        }
        config.update(extra or {})
        self._producer = Producer(config)
        self._buffer_retries = buffer_retries
        self.dropped_buffer_full = 0

    def send_frame(
        self, topic: str, frame: Frame, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Queue ``frame`` for ``topic``. Raises :class:`ProduceDropped` if it cannot be queued."""
        key, value, headers = encode_frame(frame)
        self.send(topic, key, value, headers, on_delivery)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Queue one message. Raises :class:`ProduceDropped` if it cannot be queued."""
        callback = self._wrap(on_delivery)
        for attempt in range(self._buffer_retries + 1):
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=list(headers), on_delivery=callback
                )
                break
            except BufferError:
                if attempt == self._buffer_retries:
                    self.dropped_buffer_full += 1
                    raise ProduceDropped(f"local queue full, message to {topic} dropped") from None
                self._producer.poll(0.05 * (attempt + 1))
        self._producer.poll(0)

    def _wrap(
        self, on_delivery: DeliveryCallback | None
    ) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, msg: Message) -> None:
            if error is None:
                self.health.mark_up()
            if on_delivery is not None:
                on_delivery(
                    None if error is None else error.str(),
                    Record.from_message(msg) if error is None else None,
                )

        return report

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks; returns how many were served."""
        return int(self._producer.poll(timeout))

    def pending(self) -> int:
        """Messages queued or in flight."""
        return len(self._producer)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` for delivery; returns how many messages are still pending."""
        return int(self._producer.flush(timeout))


class LatestFrameConsumer:
    """A consumer that always hands out the newest frame of each stream.

    Where it starts on assignment: ``start_at="newest"`` the newest existing
    message, ``"end"`` only messages produced from now on, ``"beginning"``
    everything retained (an ordinary consumer).

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
        on_skip: Callable[[str, int], None] | None = None,
        stream_window: float = 10.0,
        session_timeout_ms: int = 10000,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.health = _BrokerHealth(f"consumer[{group_id}]")
        self.max_lag = max_lag
        self.stream_window = stream_window
        self.skipped = 0
        self._on_skip = on_skip
        self._start_offset = {
            "newest": _OFFSET_TAIL_BASE - 1,
            "end": OFFSET_END,
            "beginning": OFFSET_BEGINNING,
        }[start_at]
        config = client_config(settings) | {
            "group.id": group_id,
            "enable.auto.commit": True,
            "auto.offset.reset": "latest",
            "fetch.max.bytes": 4 * MAX_MESSAGE_BYTES,
            "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
            "receive.message.max.bytes": 4 * MAX_MESSAGE_BYTES + _MESSAGE_OVERHEAD,
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
