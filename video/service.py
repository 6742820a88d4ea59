"""``kva video`` as a :class:`kva.service.Service`: the Kafka reader, the web server, the watch.

``start`` reaches Kafka, creates the topics, starts the reader thread and
binds the web server; ``run`` watches the reader until the stop event is set;
``close`` stops the web server (every MJPEG client included), then the reader.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from kva.kafka import TopicSpec, ensure_topics, wait_for_broker
from kva.video.app import create_app
from kva.video.config import VideoSettings
from kva.video.event_reader import EventReader
from kva.video.reader import KafkaReader, TopicReader
from kva.video.server import ViewerServer
from kva.video.state import ViewerState, viewer_state

logger = logging.getLogger(__name__)

#: Seconds between two looks at the reader in :meth:`ViewerService.run`.
WATCH_INTERVAL = 1.0


class ViewerService:
    """One viewer process: build with settings, ``start(stop)``, ``run(stop)``, ``close()``."""

    def __init__(self, settings: VideoSettings) -> None:
        self.settings = settings
        self.app: Flask = create_app(settings, healthy=self.healthy)
        self.state: ViewerState = viewer_state(self.app)
        self.reader: KafkaReader | None = None
        self.event_reader: EventReader | None = None
        self.server: ViewerServer | None = None

    def healthy(self) -> bool:
        """What ``/healthz`` reports: the Kafka readers (once started) still run."""
        return all(r.alive() for r in self._readers())

    def _readers(self) -> list[TopicReader]:
        return [r for r in (self.reader, self.event_reader) if r is not None]

    @property
    def url(self) -> str:
        """``http://host:port`` of the running web server."""
        if self.server is None:
            raise RuntimeError("the viewer is not started")
        return self.server.url

    def start(self, stop: threading.Event) -> None:
        """Reach Kafka, create the topics, start reading and serving.

        Raises:
            KafkaUnavailable: the broker is not reachable within the broker timeout.
            OSError: the web server cannot listen on its address.
        """
        s = self.settings
        wait_for_broker(s)
        ensure_topics(s, [TopicSpec(t) for t in topics(s)])
        self.reader = KafkaReader(s, self.state.store, self.state.metrics).start()
        if s.video_events_topic:  # not created here: the consumer that writes it owns it
            self.event_reader = EventReader(s, self.state.events, self.state.metrics).start()
        self.state.retention.start()
        try:
            self.server = ViewerServer(self.app).start()
        except OSError as exc:
            raise OSError(f"cannot listen on {s.video_host}:{s.video_port}: {exc}") from exc

    def run(self, stop: threading.Event) -> int:
        """Watch the reader until ``stop`` is set; 1 when it died or Kafka stayed away too long."""
        if self.reader is None:
            raise RuntimeError("call start() before run()")
        limit = self.settings.broker_unavailable_exit
        while not stop.wait(WATCH_INTERVAL):
            for reader in self._readers():
                if not reader.alive():
                    logger.error("the Kafka reader of %s stopped: %s", reader.topics, reader.failed)
                    return 1
                if limit and reader.broker_down_for() > limit:
                    logger.error("Kafka unreachable for more than %gs: exiting", limit)
                    return 1
        return 0

    def close(self) -> None:
        """Stop serving (closing every client), then stop reading; safe after a failed start."""
        if self.server is None and self.reader is None:
            return
        logger.info("stopping the viewer")
        if self.server is not None:
            self.server.stop()
        for reader in self._readers():
            reader.stop()
        self.state.retention.stop()


def topics(settings: VideoSettings) -> list[str]:
    """The topics the viewer reads (the metadata topic only when set)."""
    return [t for t in (settings.video_topic, settings.video_metadata_topic) if t]
