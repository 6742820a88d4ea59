"""The Kafka side: queue frames through :class:`kva.kafka.FrameProducer` and count outcomes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from kva.frame import DEFAULT_MAX_FRAME_BYTES, Frame
from kva.kafka import FrameProducer, ProduceDropped, Record
from kva.logs import RateLimitedLog
from kva.producer.metrics import ProducerMetrics

logger = logging.getLogger(__name__)

Delivered = Callable[[Frame], None]


class FrameSink(Protocol):
    """Where a camera runner puts its encoded frames."""

    def send(self, frame: Frame, on_delivered: Delivered | None = None) -> bool:
        """Queue ``frame``; False when it was dropped at once (counted)."""


class KafkaFrameSink:
    """Sends frames to one topic; counts sent, bytes and drops (buffer full, delivery failed).

    Thread-safe: camera threads call :meth:`send`; one service thread calls
    :meth:`poll` to serve delivery reports.
    """

    def __init__(
        self,
        producer: FrameProducer,
        topic: str,
        metrics: ProducerMetrics,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self._producer = producer
        self.topic = topic
        self._metrics = metrics
        self._max_frame_bytes = max_frame_bytes
        self._log = RateLimitedLog(logger, interval=10.0)

    def send(self, frame: Frame, on_delivered: Delivered | None = None) -> bool:
        stream = frame.stream_id
        if len(frame.data) > self._max_frame_bytes:
            self._metrics.dropped(stream, "oversized")
            self._log.log(
                ("oversized", stream),
                logging.WARNING,
                "%s: %d-byte frame exceeds %d bytes: dropped (lower --width or --jpeg-quality)",
                stream,
                len(frame.data),
                self._max_frame_bytes,
            )
            return False

        def report(error: str | None, _record: Record | None) -> None:
            if error is None:
                self._metrics.frames_sent.labels(stream).inc()
                self._metrics.bytes_sent.labels(stream).inc(len(frame.data))
                if on_delivered is not None:
                    on_delivered(frame)
                return
            self._metrics.dropped(stream, "delivery_failed")
            self._log.log(
                ("delivery", stream),
                logging.WARNING,
                "%s: frame %d not delivered to %s: %s",
                stream,
                frame.sequence,
                self.topic,
                error,
            )

        try:
            self._producer.send_frame(self.topic, frame, on_delivery=report)
        except ProduceDropped as exc:
            self._metrics.dropped(stream, "buffer_full")
            self._log.log(("buffer", stream), logging.WARNING, "%s: %s", stream, exc)
            return False
        return True

    def poll(self, timeout: float) -> int:
        """Serve delivery reports for up to ``timeout`` seconds."""
        return self._producer.poll(timeout)

    def down_for(self) -> float:
        """Seconds the broker has been unreachable (0 when it is fine)."""
        return self._producer.health.down_for()

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` for queued frames; returns how many are still undelivered."""
        return self._producer.flush(timeout)
