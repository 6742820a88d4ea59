"""What the viewer's blueprints share: the :class:`ViewerState` of an app and its accessor.

Its own module so the routes and the application factory both import it and
not each other (the factory registers the routes; the routes only need the state).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app

from kva.video.clip_source import ClipReaders
from kva.video.config import VideoSettings
from kva.video.events import EventStore
from kva.video.fanout import MjpegFanout
from kva.video.metrics import ViewerMetrics
from kva.video.retention import RetentionWatcher
from kva.video.store import FrameStore

#: The key of the state in ``app.extensions``.
EXTENSION = "kva_video"
#: Worker threads never given to MJPEG clients, so the page and the API always answer.
RESERVED_THREADS = 4


@dataclass
class ViewerState:
    """What the blueprints share, kept in ``app.extensions["kva_video"]``."""

    settings: VideoSettings
    store: FrameStore
    metrics: ViewerMetrics
    healthy: Callable[[], bool]
    events: EventStore = field(default_factory=EventStore)
    stop: threading.Event = field(default_factory=threading.Event)
    mjpeg_slots: threading.BoundedSemaphore = field(init=False)
    #: How far back each stream can be replayed (started by the service, or refreshed by a test).
    retention: RetentionWatcher = field(init=False)
    #: Where clips are read from Kafka, at most ``--clip-readers`` at once.
    clips: ClipReaders = field(init=False)
    #: Sends the live streams of the connections the server hands over (None: the live
    #: streams go out on the WSGI server's worker threads, e.g. under a test client).
    fanout: MjpegFanout | None = None

    def __post_init__(self) -> None:
        self.mjpeg_slots = threading.BoundedSemaphore(
            self.settings.video_threads - RESERVED_THREADS
        )
        self.retention = RetentionWatcher(self.settings)
        rejected = self.metrics.messages_rejected
        self.clips = ClipReaders(
            self.settings, lambda topic, reason: rejected.labels(topic, reason).inc()
        )

    def known_streams(self) -> list[str]:
        """Every stream this viewer knows of: live, with events, or in the frame topic."""
        names = {slot.stream_id for slot in self.store.slots()}
        names.update(self.events.stream_ids())
        names.update(self.retention.streams())
        return sorted(names)


def viewer_state(app: Flask | None = None) -> ViewerState:
    """The :class:`ViewerState` of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    state: ViewerState = target.extensions[EXTENSION]
    return state
