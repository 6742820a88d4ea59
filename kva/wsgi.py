"""The one WSGI runner: waitress serving an app on its own thread, stopped gracefully.

waitress documents how to start a server (its adjustments, pre-bound
``sockets``) but offers no public way to stop one (its maintainers: "Waitress
does not currently have a way to shut down the server programmatically",
Pylons/waitress#372). :class:`WsgiServer` designs around that instead of
reaching into waitress's private state:

* it binds the listening socket itself (so it knows the port, also with port 0)
  and hands it to waitress as a pre-bound socket;
* it gives waitress the socket map (``create_server(map=...)``) and turns the
  event loop itself (``wasyncore.loop(..., count=1)``), so every step of the
  shutdown happens on the loop's own thread, never under a running poll;
* a small WSGI middleware counts the requests inside the app, so the drain
  knows when it is done;
* an app may take a connection over (``environ[DETACH]``, see :class:`Detached`): waitress
  then sends nothing more on it and lets go of it, and the app writes the response
  itself (the viewer's live MJPEG streams go out from one sender thread that way).

Stopping, once the stop event is set (or :meth:`WsgiServer.close` is called):
with a drain time, the listening socket leaves the map (new connections wait
in the kernel's backlog and are reset at close; requests on connections
already open are still served) and the requests in flight get up to
``drain_seconds`` to finish and their responses to be sent. Then every
connection is closed (which also wakes a worker blocked on a client that
stopped reading), the worker threads end and the socket closes.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import WSGITask

logger = logging.getLogger(__name__)

#: Longest one turn of the event loop waits for I/O while serving (how soon a set stop is seen).
POLL_SECONDS = 0.2
#: The same while draining.
DRAIN_POLL_SECONDS = 0.05
#: How long the worker threads get to end once every connection is closed.
THREAD_EXIT_SECONDS = 1.0
#: A connection gets this long to send a complete request head (also between the requests
#: of a kept-alive connection). waitress's ``channel_timeout`` counts from the last byte,
#: so one header line every 5 s used to hold a connection for good (slowloris).
HEADER_SECONDS = 10.0
#: Connections kept free for new clients (a health check): beyond ``connection_limit``
#: minus this, connections still without a complete request head are closed, oldest first.
SPARE_CONNECTIONS = 8
#: How often the event loop checks the request heads.
HEAD_CHECK_SECONDS = 0.25
#: The loop's wait for I/O while connections are at the limit.
PRESSED_POLL_SECONDS = 0.005
#: The environ key of the callable that takes a connection over (see :class:`Detached`).
DETACH = "kva.detach"


class Detached:
    """A connection an app took over from the server, with the response head to send first.

    ``environ[DETACH]()`` gives one, once the app has called ``start_response``: the
    server sends nothing more on the connection and closes its own handle on it when
    the request returns; ``socket`` (a duplicate, non-blocking) stays open until the
    app closes it. ``head`` is the status line and the app's headers, with
    ``Connection: close``: the body runs until the app closes the connection (no
    chunked encoding, no length).
    """

    def __init__(self, sock: socket.socket, head: bytes) -> None:
        self.socket = sock
        self.head = head


class _DetachableTask(WSGITask):
    """waitress's WSGI task, plus ``environ[DETACH]``."""

    wrote_header: bool
    close_on_finish: bool

    def get_environment(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environment()
        environ[DETACH] = self._detach
        return environ

    def _detach(self) -> Detached:
        if not self.complete:
            raise RuntimeError("start_response was not called before the connection was taken")
        if self.wrote_header:
            raise RuntimeError("the response head was already sent")
        lines = [f"HTTP/{self.version} {self.status}"]
        lines += [f"{name}: {value}" for name, value in self.response_headers]
        lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        sock = self.channel.socket.dup()
        sock.setblocking(False)
        # From here waitress writes neither head nor body, and closes its handle at the end.
        self.wrote_header = True
        self.close_on_finish = True
        return Detached(sock, head)


class _Channel(HTTPChannel):
    task_class = _DetachableTask


class WsgiServer:
    """waitress running one WSGI app on ``host:port``, on a thread of its own.

    Binds at construction (raises ``OSError`` when it cannot), serves after
    :meth:`start`, and stops when the stop event given to :meth:`start` is
    set or :meth:`close` is called.
    """

    def __init__(
        self,
        app: WSGIApplication,
        host: str,
        port: int,
        *,
        name: str,
        threads: int,
        connection_limit: int,
        channel_timeout: int = 120,
        max_request_body_size: int = 1 << 30,
        outbuf_high_watermark: int = 16 << 20,
        request_lookahead: int = 0,
        drain_seconds: float = 0.0,
        header_seconds: float = HEADER_SECONDS,
    ) -> None:
        """Bind and set up waitress (worker threads start at once).

        Args:
            app: the WSGI application.
            host: address to bind (a name binds the first address it resolves to).
            port: TCP port; 0 binds a free one (see :attr:`port`).
            name: the ``Server`` header, and the thread's name with ``-http`` added.
            threads: worker threads, the requests the app runs at once.
            connection_limit: open connections beyond which waitress stops accepting.
            channel_timeout: seconds an idle connection is kept open.
            max_request_body_size: larger request bodies are refused before they are read.
            outbuf_high_watermark: bytes buffered for one client before a write blocks.
            request_lookahead: requests read ahead on one connection (1: a closed
                connection is noticed while its request runs).
            drain_seconds: on stop, how long requests in flight get to finish (0: none).
            header_seconds: how long a connection may take to send a complete request head.
        """
        self.name = name
        self.drain_seconds = drain_seconds
        self._requests = _InFlight(app)
        self._socket = bind(host, port)
        self._address: tuple[str, int] = self._socket.getsockname()[:2]
        self._map: dict[int, Any] = {}
        try:
            self._server = create_server(
                self._requests,
                map=self._map,
                sockets=[self._socket],
                threads=threads,
                connection_limit=connection_limit,
                channel_timeout=channel_timeout,
                max_request_body_size=max_request_body_size,
                outbuf_high_watermark=outbuf_high_watermark,
                channel_request_lookahead=request_lookahead,
                clear_untrusted_proxy_headers=True,
                asyncore_use_poll=True,
                ident=name,
            )
        except BaseException:
            self._socket.close()
            raise
        self._server.channel_class = _Channel
        self._heads = _HeadDeadline(self._map, header_seconds, connection_limit)
        self._closing = threading.Event()
        self._stop: threading.Event | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"{name}-http", daemon=True)

    @property
    def host(self) -> str:
        """The bound address."""
        return self._address[0]

    @property
    def port(self) -> int:
        """The bound port (the free one chosen for port 0)."""
        return self._address[1]

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 addresses in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def alive(self) -> bool:
        """True while the server thread runs."""
        return self._thread.is_alive()

    def start(self, stop: threading.Event | None = None) -> WsgiServer:
        """Serve on a background thread until ``stop`` is set (or :meth:`close`)."""
        self._stop = stop
        self._thread.start()
        return self

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the server to have stopped; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Stop (draining as on a set stop event) and wait up to ``timeout`` seconds for it."""
        self._closing.set()
        if self._thread.ident is None:  # never started: no loop owns the map
            self._shutdown()
            return
        self._wake()
        self._thread.join(timeout)

    # -- the server thread ------------------------------------------------------------------
    def _stopping(self) -> bool:
        return self._closing.is_set() or (self._stop is not None and self._stop.is_set())

    def _serve(self) -> None:
        try:
            busy = False
            while not self._stopping():
                # At the connection limit waitress stops accepting: turn fast until the
                # waiting connections made room, so the new clients queued behind get in.
                self._turn(PRESSED_POLL_SECONDS if busy else POLL_SECONDS)
                busy = self._heads.check()
            self._drain()
        except Exception:
            logger.exception("%s: the HTTP server failed", self.name)
        finally:
            self._shutdown()

    def _turn(self, timeout: float) -> None:
        """One turn of the event loop: wait up to ``timeout`` for I/O and handle it."""
        if self._map:
            wasyncore.loop(timeout=timeout, use_poll=True, map=self._map, count=1)
        else:
            self._closing.wait(timeout)

    def _drain(self) -> None:
        if self.drain_seconds <= 0:
            return
        # No more accepting: the socket stays open, so new connections wait in the backlog.
        self._map.pop(self._socket.fileno(), None)
        deadline = time.monotonic() + self.drain_seconds
        while (self._requests.count or self._sending()) and time.monotonic() < deadline:
            self._turn(DRAIN_POLL_SECONDS)
        self._turn(DRAIN_POLL_SECONDS)  # send what the last requests wrote as they returned

    def _sending(self) -> bool:
        """True while some connection has a response left to send."""
        return any(d.writable() for d in list(self._map.values()) if isinstance(d, HTTPChannel))

    def _shutdown(self) -> None:
        with self._lock:  # after this, _wake no longer touches the trigger
            if self._closed:
                return
            self._closed = True
        for dispatcher in list(self._map.values()):
            if isinstance(dispatcher, HTTPChannel):
                # handle_close (not close) also wakes a worker blocked writing to this client.
                dispatcher.handle_close()
        # waitress's own shutdown on Ctrl-C: end the worker threads, cancel queued tasks.
        self._server.task_dispatcher.shutdown(timeout=THREAD_EXIT_SECONDS)
        wasyncore.close_all(self._map)
        self._server.close()  # the listening socket and the trigger, if still open
        self._socket.close()

    def _wake(self) -> None:
        """Interrupt the event loop's wait (so a stop is seen at once)."""
        with self._lock:
            if not self._closed:
                self._server.pull_trigger()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free port), ``SO_REUSEADDR`` set.

    Raises:
        OSError: the address does not resolve, or cannot be bound (in use, not local).
    """
    family, _type, _proto, _name, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address, family=family)


class _InFlight:
    """WSGI middleware: counts the requests inside the app, until their response is closed."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            self.count += 1
        try:
            body = self._app(environ, start_response)
        except BaseException:
            self._leave()
            raise
        return _Body(body, self._leave)

    def _leave(self) -> None:
        with self._lock:
            self.count -= 1


class _Body:
    """A response body that reports (once) when the server closes it."""

    def __init__(self, body: Iterable[bytes], closed: Callable[[], None]) -> None:
        self._body = body
        self._closed: Callable[[], None] | None = closed

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            closed, self._closed = self._closed, None
            if closed is not None:
                closed()


class _HeadDeadline:
    """Closes connections that take too long to send a request head, or that hold a place
    a new client needs (runs on the event loop's thread, between turns).

    A connection is *waiting* while it has no complete request head and nothing queued,
    running or left to send; it may wait :attr:`seconds` at most.
    """

    def __init__(self, socket_map: dict[int, Any], seconds: float, connection_limit: int) -> None:
        self._map = socket_map
        self._seconds = seconds
        self._keep = max(1, connection_limit - SPARE_CONNECTIONS)
        self._since: dict[int, float] = {}
        self._next = 0.0

    @staticmethod
    def _waiting(channel: HTTPChannel) -> bool:
        request = channel.request
        return (
            not channel.requests
            and (request is None or not request.headers_finished)
            and not channel.writable()
        )

    def check(self) -> bool:
        """Close what must go; True while the connections are (or were) at the limit."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + HEAD_CHECK_SECONDS
        channels = [d for d in list(self._map.values()) if isinstance(d, HTTPChannel)]
        pressed = len(channels) >= self._keep
        if pressed:
            self._next = now  # check again after the next turn
        since: dict[int, float] = {}
        waiting: list[tuple[float, HTTPChannel]] = []
        for channel in channels:
            if self._waiting(channel):
                started = self._since.get(id(channel), now)
                since[id(channel)] = started
                waiting.append((started, channel))
        self._since = since
        waiting.sort(key=lambda item: item[0])
        excess = len(channels) - self._keep
        for index, (started, channel) in enumerate(waiting):
            if index < excess or now - started > self._seconds:
                channel.handle_close()
                self._since.pop(id(channel), None)
        return pressed
