"""Serving the viewer app with waitress (a production WSGI server) on a background thread."""

from __future__ import annotations

import logging
import threading

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

from kva.video.app import viewer_state

logger = logging.getLogger(__name__)

#: Connections beyond the worker threads (page loads, API polls while all threads stream).
EXTRA_CONNECTIONS = 64


class ViewerServer:
    """waitress running ``app``: one worker thread per connected MJPEG client."""

    def __init__(self, app: Flask, host: str | None = None, port: int | None = None) -> None:
        settings = viewer_state(app).settings
        self._app = app
        self._server = create_server(
            app,
            host=host or settings.video_host,
            port=settings.video_port if port is None else port,
            threads=settings.video_threads,
            connection_limit=settings.video_threads + EXTRA_CONNECTIONS,
            # A waiting client notices a closed connection at once (waitress reads ahead).
            channel_request_lookahead=1,
            outbuf_high_watermark=settings.video_client_buffer_bytes,
            asyncore_use_poll=True,
            ident="kva-video",
            clear_untrusted_proxy_headers=True,
        )
        self._thread = threading.Thread(target=self._server.run, name="kva-video-http", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.effective_port)

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._server.effective_host)

    @property
    def url(self) -> str:
        """``http://host:port`` of the viewer."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ViewerServer:
        """Serve on a background thread."""
        self._thread.start()
        logger.info("viewer on %s/", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop streaming, close every connection and the worker threads."""
        state = viewer_state(self._app)
        state.stop.set()
        for slot in state.store.slots():
            slot.wake()
        server = self._server
        # handle_close wakes a worker blocked on a client that stopped reading.
        for channel in list(getattr(server, "active_channels", {}).values()):
            channel.handle_close()
        server.task_dispatcher.shutdown(timeout=timeout)
        wasyncore.close_all(getattr(server, "_map", None) or getattr(server, "map", None))
        self._thread.join(timeout)
