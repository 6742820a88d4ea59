"""The events feed's own Kafka reader: events topic -> :class:`~kva.video.events.EventStore`.

A consumer group of its own (unique to this process, like the frame reader's),
separate from the frames so a burst of events never delays a frame and the
latest-frame jump never skips an event. On start it reads back the newest
``video_max_events`` events of each partition, so the feed and the counts are
not empty until the next event. A topic that does not exist yet is no error:
there is no feed until it does. A record that is not an event is counted by
reason (``kva_video_messages_rejected_total{topic, reason}``, reasons from
:class:`kva.events.EventError`) and skipped.
"""

from __future__ import annotations

from kva.events import Event, EventError
from kva.kafka import Record
from kva.video.config import VideoSettings
from kva.video.events import EventStore
from kva.video.metrics import ViewerMetrics
from kva.video.reader import CountingHandler, TopicReader


class EventHandler(CountingHandler):
    """Turns consumed event records into store updates; no Kafka here, so it is easy to test."""

    def __init__(self, store: EventStore, metrics: ViewerMetrics) -> None:
        super().__init__(metrics)
        self._store = store

    def handle(self, record: Record) -> None:
        """Put one consumed record into the store (or count why not)."""
        try:
            event = Event.from_json(record.value)
        except EventError as exc:
            self._reject(record, exc.reason, str(exc))
            return
        result = self._store.put(event)
        if result == "kept":
            self._metrics.events_received.labels(event.stream, event.type).inc()
        else:  # a duplicate (a replay, an at-least-once retry) or older than every kept event
            self._metrics.messages_rejected.labels(record.topic, result).inc()


class EventReader(TopicReader):
    """Reads the events topic on a background thread (see the module docstring)."""

    def __init__(
        self,
        settings: VideoSettings,
        store: EventStore,
        metrics: ViewerMetrics,
        group_id: str | None = None,
    ) -> None:
        super().__init__(
            settings,
            [settings.video_events_topic],
            EventHandler(store, metrics),
            group_id,
            name="kva-video-events",
            consumer_options={"max_lag": None, "tail": settings.video_max_events},
        )
