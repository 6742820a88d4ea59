"""The Kafka reader of a viewer process: frames and predictions into the store.

It runs on its own thread with a consumer group unique to this process, so
every viewer sees every partition (viewers do not share the work, they each
show everything). A bad message is counted by reason and logged at most once
per interval; it never stops the reader. :class:`TopicReader` is that thread
around one consumer; the events feed has its own (:mod:`kva.video.event_reader`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Protocol, Self

from kva.frame import FrameDecodeError
from kva.images import IMAGE_SIGNATURES
from kva.kafka import LatestFrameConsumer, Record
from kva.logs import RateLimitedLog
from kva.video.config import VideoSettings
from kva.video.metrics import ViewerMetrics
from kva.video.predictions import PredictionsError, header_predictions, parse_metadata
from kva.video.store import FrameStore

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
#: A capture time further ahead of this host's clock than this is refused (``future``):
#: it would show a negative age and never look stale.
MAX_FUTURE_SECONDS = 10.0


def image_problem(content_type: str, data: bytes) -> tuple[str, str] | None:
    """(reason, message) when a frame is not a servable image, else None (not decoded)."""
    signature = IMAGE_SIGNATURES.get(content_type.lower())
    if signature is None:
        return "bad_content_type", f"content-type {content_type[:60]!r} is not JPEG or PNG"
    if not data.startswith(signature):
        return "bad_image", f"payload is not {content_type} (wrong signature)"
    return None


def unique_group_id() -> str:
    """A consumer group of this process alone (``kva-video-<host>-<pid>-<random>``)."""
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname())[:40]
    return f"kva-video-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class CountingHandler:
    """What every record handler shares: skipped records are counted by reason and logged
    at most once per interval per (topic, reason)."""

    def __init__(self, metrics: ViewerMetrics) -> None:
        self._metrics = metrics
        self._log = RateLimitedLog(logger, interval=10.0)

    def failed(self, record: Record, exc: Exception) -> None:
        """The reader's safety net: handling ``record`` raised ``exc`` (a bug); count, go on."""
        kind = type(exc).__name__
        self._metrics.record_errors.labels(kind).inc()
        self._metrics.messages_rejected.labels(record.topic, "internal_error").inc()
        self._log.failure(("internal_error", kind), record.where, exc)

    def _reject(self, record: Record, reason: str, message: str) -> None:
        self._metrics.messages_rejected.labels(record.topic, reason).inc()
        self._log.log(
            (record.topic, reason),
            logging.WARNING,
            "skipping a message on %s (partition %d, offset %d): %s",
            record.topic,
            record.partition,
            record.offset,
            message,
        )


class RecordHandler(CountingHandler):
    """Turns consumed records into store updates; no Kafka here, so it is easy to test."""

    def __init__(self, settings: VideoSettings, store: FrameStore, metrics: ViewerMetrics) -> None:
        super().__init__(metrics)
        self._settings = settings
        self._store = store

    def handle(self, record: Record) -> None:
        """Put one consumed record into the store (or count why not)."""
        if record.topic == self._settings.video_metadata_topic:
            self._metadata(record)
        else:
            self._frame(record)

    def _frame(self, record: Record) -> None:
        try:
            frame = record.frame(self._settings.video_max_frame_bytes)
        except FrameDecodeError as exc:
            self._reject(record, exc.reason, str(exc))
            return
        ahead = -frame.age_seconds()
        if ahead > MAX_FUTURE_SECONDS:
            self._reject(
                record, "future", f"future: stream {frame.stream_id!r} captured {ahead:.0f}s ahead"
            )
            return
        if self._store.is_older(frame):
            self._reject(
                record,
                "older",
                f"older: stream {frame.stream_id!r} #{frame.sequence} is older than the newest",
            )
            return
        problem = image_problem(frame.content_type, frame.data)
        if problem is not None:
            reason, message = problem
            self._reject(record, reason, f"{reason}: stream {frame.stream_id!r}: {message}")
            return
        if self._store.put_frame(frame, record.partition) is None:
            self._reject(record, "too_many_streams", f"no room for stream {frame.stream_id!r}")
            return
        self._metrics.frames_received.labels(frame.stream_id).inc()
        try:
            predictions = header_predictions(frame, self._settings.video_max_metadata_bytes)
        except PredictionsError as exc:  # the frame is shown, its predictions are not
            self._reject(record, "bad_predictions_header", f"bad_predictions_header: {exc}")
            return
        if predictions is not None:
            self._store.put_predictions(frame.stream_id, predictions)

    def _metadata(self, record: Record) -> None:
        try:
            stream_id, predictions = parse_metadata(
                record.value, self._settings.video_max_metadata_bytes
            )
        except PredictionsError as exc:
            self._reject(record, exc.reason, str(exc))
            return
        if not self._store.put_predictions(stream_id, predictions):
            logger.debug("older predictions for %s ignored", stream_id)


class Handler(Protocol):
    """What a :class:`TopicReader` hands each record to."""

    def handle(self, record: Record) -> None: ...

    def failed(self, record: Record, exc: Exception) -> None: ...


class TopicReader:
    """Consumes ``topics`` on a background thread, handing every record to ``handler``."""

    def __init__(
        self,
        settings: VideoSettings,
        topics: list[str],
        handler: Handler,
        group_id: str | None = None,
        *,
        name: str = "kva-video-reader",
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._handler = handler
        self.group_id = group_id or unique_group_id()
        self.topics = topics
        self._consumer_options = dict(consumer_options or {})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._consumer: LatestFrameConsumer | None = None
        self.failed: BaseException | None = None

    def start(self) -> Self:
        """Create the consumer and start reading on the background thread."""
        self._consumer = LatestFrameConsumer(
            self._settings,
            self.topics,
            self.group_id,
            extra={"enable.auto.commit": False},
            **self._consumer_options,
        )
        self._thread.start()
        logger.info("reading %s as group %s", ", ".join(self.topics), self.group_id)
        return self

    def alive(self) -> bool:
        """Whether the reader thread still runs."""
        return self._thread.is_alive()

    def broker_down_for(self) -> float:
        """Seconds the broker has been unreachable (0 when reachable)."""
        return 0.0 if self._consumer is None else self._consumer.health.down_for()

    def _run(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        try:
            while not self._stop.is_set():
                record = consumer.poll(POLL_SECONDS)
                if record is None:
                    continue
                try:
                    self._handler.handle(record)
                except Exception as exc:  # noqa: BLE001 - one record never stops the reader
                    self._handler.failed(record, exc)
        except Exception as exc:  # noqa: BLE001 - reported by /healthz and the CLI
            logger.exception("the Kafka reader stopped")
            self.failed = exc
        finally:
            consumer.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading and close the consumer (waits up to ``timeout``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


class KafkaReader(TopicReader):
    """Consumes the frame topic (and the metadata topic): the newest frames into the store."""

    def __init__(
        self,
        settings: VideoSettings,
        store: FrameStore,
        metrics: ViewerMetrics,
        group_id: str | None = None,
    ) -> None:
        super().__init__(
            settings,
            [t for t in (settings.video_topic, settings.video_metadata_topic) if t],
            RecordHandler(settings, store, metrics),
            group_id,
            consumer_options={"max_lag": settings.video_max_lag},
        )
