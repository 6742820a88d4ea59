"""The Flask application factory of the viewer.

``create_app(settings)`` builds an app with its own frame store, metrics
registry and stop event (no module-level state), so tests and benchmarks can
make as many as they like and feed the store directly. The Kafka reader and
the WSGI server are wired up by :mod:`kva.video.cli`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException

from kva.video.auth import install_token_check
from kva.video.config import VideoSettings
from kva.video.metrics import ViewerMetrics
from kva.video.store import FrameStore

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
    stop: threading.Event = field(default_factory=threading.Event)
    mjpeg_slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.mjpeg_slots = threading.BoundedSemaphore(
            self.settings.video_threads - RESERVED_THREADS
        )


def create_app(
    settings: VideoSettings,
    store: FrameStore | None = None,
    *,
    healthy: Callable[[], bool] = lambda: True,
) -> Flask:
    """A viewer app showing ``store`` (a new, empty one by default).

    Args:
        settings: the viewer settings (token, pacing, limits).
        store: where the frames come from; the Kafka reader (or a test) fills it.
        healthy: what ``/healthz`` reports (e.g. "the Kafka reader is alive").
    """
    from kva.video.routes import api, ops, pages, streams

    app = Flask(__name__)
    app.config["JSON_SORT_KEYS"] = False
    store = store or FrameStore(settings.video_max_streams, settings.video_forget_after)
    app.extensions[EXTENSION] = ViewerState(
        settings=settings, store=store, metrics=ViewerMetrics(store), healthy=healthy
    )
    token = settings.video_token.get_secret_value() if settings.video_token else None
    install_token_check(app, token)
    for blueprint in (pages.bp, streams.bp, api.bp, ops.bp):
        app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, _plain_error)
    return app


def _plain_error(error: HTTPException) -> Response:
    """Errors as one readable line of text (not an HTML page)."""
    code = error.code or 500
    text = f"{code} {(error.name or 'error').lower()}: {error.description}\n"
    return Response(text, code, mimetype="text/plain")


def viewer_state(app: Flask | None = None) -> ViewerState:
    """The :class:`ViewerState` of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    state: ViewerState = target.extensions[EXTENSION]
    return state
