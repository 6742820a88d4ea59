"""The Flask application factory of the viewer.

``create_app(settings)`` builds an app with its own frame store, metrics
registry and stop event (no module-level state), so tests and benchmarks can
make as many as they like and feed the store directly. The Kafka reader and
the WSGI server are wired up by :mod:`kva.video.service`.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from kva.video.auth import install_token_check
from kva.video.config import VideoSettings
from kva.video.events import EventStore
from kva.video.metrics import ViewerMetrics
from kva.video.routes import api, clips, ops, pages, streams
from kva.video.state import EXTENSION, ViewerState, viewer_state
from kva.video.store import FrameStore

# ``viewer_state`` and ``ViewerState`` live in kva.video.state (the routes import them from
# there, not from here); they stay importable from the factory's module for its callers.
__all__ = ["ViewerState", "create_app", "viewer_state"]


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
    app = Flask(__name__)
    app.config["JSON_SORT_KEYS"] = False
    store = store or FrameStore(settings.video_max_streams, settings.video_forget_after)
    app.extensions[EXTENSION] = ViewerState(
        settings=settings,
        store=store,
        metrics=ViewerMetrics(store),
        healthy=healthy,
        events=EventStore(settings.video_max_streams, settings.video_max_events),
    )
    token = settings.video_token.get_secret_value() if settings.video_token else None
    install_token_check(app, token)
    for blueprint in (pages.bp, streams.bp, clips.bp, api.bp, ops.bp):
        app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, _plain_error)
    app.after_request(_security_headers)
    return app


#: On every response: no MIME sniffing, and no page may frame the viewer (clickjacking).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _plain_error(error: HTTPException) -> Response:
    """Errors as one readable line of text (not an HTML page)."""
    code = error.code or 500
    text = f"{code} {(error.name or 'error').lower()}: {error.description}\n"
    return Response(text, code, mimetype="text/plain")
