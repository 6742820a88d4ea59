"""Serving the viewer app with waitress (a production WSGI server) on a background thread."""

from __future__ import annotations

import logging

from flask import Flask

from kva.video.app import viewer_state
from kva.video.fanout import MjpegFanout
from kva.wsgi import WsgiServer

logger = logging.getLogger(__name__)

#: Connections beyond the worker threads (page loads, API polls while all threads stream).
EXTRA_CONNECTIONS = 64


class ViewerServer:
    """waitress running ``app``; the live MJPEG streams go out from one :class:`MjpegFanout`.

    A live stream's connection is handed from waitress to the fan-out once its
    request is accepted; a clip's stream holds a worker thread while it plays.
    """

    def __init__(self, app: Flask, host: str | None = None, port: int | None = None) -> None:
        settings = viewer_state(app).settings
        self._app = app
        self._http = WsgiServer(
            app,
            host or settings.video_host,
            settings.video_port if port is None else port,
            name="kva-video",
            threads=settings.video_threads,
            connection_limit=settings.video_threads + EXTRA_CONNECTIONS,
            # A waiting client notices a closed connection at once (waitress reads ahead).
            request_lookahead=1,
            outbuf_high_watermark=settings.video_client_buffer_bytes,
        )
        state = viewer_state(app)
        self._fanout = MjpegFanout(settings.video_max_fps)
        state.fanout = self._fanout
        state.store.add_listener(self._fanout.wake)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self._http.port

    @property
    def host(self) -> str:
        """The bound address."""
        return self._http.host

    @property
    def url(self) -> str:
        """``http://host:port`` of the viewer."""
        return self._http.url

    def start(self) -> ViewerServer:
        """Serve on a background thread."""
        self._fanout.start()
        self._http.start()
        logger.info("viewer on %s/", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop streaming, close every connection and the worker threads."""
        state = viewer_state(self._app)
        state.stop.set()
        for slot in state.store.slots():
            slot.wake()
        self._http.close(timeout)
        self._fanout.stop(timeout)
