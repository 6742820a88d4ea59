"""The frame producer: bounded local buffering, delivery reports, broker health."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from kva.frame import Frame, encode_frame
from kva.kafka.config import MAX_MESSAGE_BYTES, client_config
from kva.kafka.errors import ProduceDropped
from kva.kafka.health import BrokerHealth
from kva.kafka.record import Record
from kva.settings import KafkaSettings

Headers = Sequence[tuple[str, bytes]]
DeliveryCallback = Callable[[str | None, Record | None], None]


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
        self.health = BrokerHealth("producer")
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
        """Queue ``frame`` for ``topic``, stamped with its capture time.

        Raises :class:`ProduceDropped` if it cannot be queued.
        """
        key, value, headers = encode_frame(frame)
        self.send(
            topic, key, value, headers, on_delivery, timestamp_ms=frame.capture_ns // 1_000_000
        )

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        on_delivery: DeliveryCallback | None = None,
        *,
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue one message. Raises :class:`ProduceDropped` if it cannot be queued.

        ``timestamp_ms`` is the record's Kafka timestamp; kva passes the capture time of
        the frame the message is about, so that a time range of capture times is a range
        of offsets (``offsets_for_times``, :mod:`kva.kafka.history`). Default: now.
        """
        callback = self._wrap(on_delivery)
        stamp = 0 if timestamp_ms is None else max(0, timestamp_ms)  # 0: librdkafka's "now"
        for attempt in range(self._buffer_retries + 1):
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=list(headers),
                    on_delivery=callback,
                    timestamp=stamp,
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
