"""A user's webhook in tests: a small threaded HTTP server that keeps every POST.

It can be stopped and started again on the same port (a receiver that goes away and
comes back), and answer with any status (``respond``: a function of the request).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kva.ports import free_port


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes
    arrived: float

    @property
    def event_id(self) -> str:
        return self.headers.get("x-kva-event-id", "")


class WebhookReceiver:
    """``http://127.0.0.1:port/hook``; ``posts`` are the requests answered 2xx, ``refused``
    the others."""

    def __init__(self, respond: Callable[[Post], int] = lambda _post: 200) -> None:
        self.port = free_port()
        self.respond = respond
        self.posts: list[Post] = []
        self.refused: list[tuple[int, Post]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                post = Post(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                status = receiver.respond(post)
                with receiver._lock:
                    if 200 <= status < 300:
                        receiver.posts.append(post)
                    else:
                        receiver.refused.append((status, post))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Gone: the port refuses connections until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)

    def snapshot(self) -> list[Post]:
        with self._lock:
            return list(self.posts)
