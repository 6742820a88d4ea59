"""The topic output: re-publish each record to another topic, for re-processing.

Key, value, headers and Kafka timestamp (the capture time) are kept as they were, so
a consumer of the copy sees the very frames. The producer's local queue is small
and a full queue is waited out (never dropped): memory stays bounded however
fast the range is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from kva.frame import Frame
from kva.kafka import FrameProducer, ProduceDropped, Record
from kva.settings import KafkaSettings

logger = logging.getLogger(__name__)

#: The producer's local queue (KiB): the bound on what waits for the broker.
QUEUE_KBYTES = 16 * 1024
#: Seconds given to the last messages' delivery at the end.
FLUSH_SECONDS = 30.0


class TopicOutput:
    """Publishes frames to ``topic``: ``key`` replaces each record's key when given."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        stop: threading.Event,
        *,
        key: str | None = None,
        extra_headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self.topic = topic
        self.name = f"topic {topic}"
        self._stop = stop
        self._key = None if key is None else key.encode()
        self._extra = list(extra_headers)
        self._producer = FrameProducer(
            settings, acks="all", linger_ms=5, queue_max_kbytes=QUEUE_KBYTES, buffer_retries=0
        )
        self.sent = 0
        self.delivered = 0
        self.failed: list[str] = []

    def write(self, frame: Frame, record: Record) -> None:
        replaced = {name for name, _ in self._extra}
        headers = [(n, v) for n, v in record.headers if v is not None and n not in replaced]
        headers += self._extra
        key = record.key if self._key is None else self._key
        while not self._stop.is_set():
            try:
                self._producer.send(
                    self.topic,
                    key,
                    record.value,
                    headers,
                    self._on_delivery,
                    timestamp_ms=record.timestamp_ms,
                )
                self.sent += 1
                return
            except ProduceDropped:  # the local queue is full: wait for the broker, never drop
                self._producer.poll(0.1)

    def _on_delivery(self, error: str | None, _record: Record | None) -> None:
        if error is None:
            self.delivered += 1
        elif len(self.failed) < 10:
            self.failed.append(error)

    def close(self) -> str:
        pending = self._producer.flush(FLUSH_SECONDS)
        lost = self.sent - self.delivered
        summary = f"{self.name}: {self.delivered} of {self.sent} messages delivered"
        if lost:
            why = "; ".join(self.failed) or f"{pending} still queued after {FLUSH_SECONDS:g}s"
            summary += f", {lost} not ({why})"
        return summary

    @property
    def complete(self) -> bool:
        """Whether every message sent was delivered."""
        return self.delivered == self.sent
