"""The one WSGI runner (``kva.wsgi.WsgiServer``): bind, serve, drain, close, leave nothing behind."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
import requests

from kva.wsgi import DETACH, Detached, WsgiServer


class SlowApp:
    """``/`` answers at once; ``/slow`` waits until released; ``/stream`` never ends."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/slow":
            self.entered.set()
            self.release.wait(30)
        if path == "/stream":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return self._stream()
        body = f"ok {path}".encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def _stream(self) -> Iterator[bytes]:
        self.entered.set()
        chunk = b"x" * 65536
        while not self.release.is_set():
            yield chunk


def _server(app: SlowApp, port: int = 0, **kw: object) -> WsgiServer:
    options: dict[str, object] = {"name": "kva-test", "threads": 4, "connection_limit": 20} | kw
    return WsgiServer(app, "127.0.0.1", port, **options)  # type: ignore[arg-type]


def _waitress_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("waitress-")}


def test_port_zero_binds_a_free_port_and_serves() -> None:
    server = _server(SlowApp()).start()
    try:
        assert server.port > 0 and server.host == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}"
        reply = requests.get(server.url + "/hello", timeout=5)
        assert reply.status_code == 200 and reply.text == "ok /hello"
        assert reply.headers["Server"] == "kva-test"
    finally:
        server.close()
    assert not server.alive


def test_a_taken_port_is_an_oserror() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError, match="in use"):
        _server(SlowApp(), port=taken.getsockname()[1])


def test_close_without_start_frees_the_port_and_the_threads() -> None:
    before = _waitress_threads()
    server = _server(SlowApp())
    port = server.port
    server.close()
    assert _waitress_threads() <= before
    with socket.create_server(("127.0.0.1", port)):
        pass


def test_stop_event_drains_the_request_in_flight() -> None:
    app = SlowApp()
    stop = threading.Event()
    server = _server(app, drain_seconds=10.0).start(stop)
    results: list[requests.Response] = []
    client = threading.Thread(
        target=lambda: results.append(requests.get(server.url + "/slow", timeout=30))
    )
    client.start()
    assert app.entered.wait(10)
    stop.set()
    assert not server.join(0.5)  # still draining
    app.release.set()
    client.join(30)
    assert results and results[0].status_code == 200 and results[0].text == "ok /slow"
    assert server.join(10)


def test_the_drain_ends_at_its_deadline() -> None:
    app = SlowApp()
    server = _server(app, drain_seconds=0.5).start()
    client = threading.Thread(target=_ignore_errors, args=(server.url + "/slow",))
    client.start()
    assert app.entered.wait(10)
    started = time.monotonic()
    server.close(timeout=10)
    assert not server.alive
    assert time.monotonic() - started < 5
    app.release.set()
    client.join(30)


def test_close_ends_a_stream_to_a_client_that_stopped_reading() -> None:
    app = SlowApp()
    before = _waitress_threads()
    server = _server(app, outbuf_high_watermark=65536).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert app.entered.wait(10)  # the worker now blocks: nobody reads
        started = time.monotonic()
        server.close(timeout=10)
        assert time.monotonic() - started < 5
    assert not server.alive
    assert _waitress_threads() <= before
    app.release.set()


def _ignore_errors(url: str) -> None:
    with contextlib.suppress(requests.RequestException):
        requests.get(url, timeout=30)


def _half_open(server: WsgiServer, count: int) -> list[socket.socket]:
    """``count`` connections that start a request and never finish its head (slowloris)."""
    held = []
    for _ in range(count):
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        held.append(sock)
    return held


def _closed_by_server(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, ConnectionResetError):
        return isinstance(sys.exc_info()[1], ConnectionResetError)


def test_half_open_connections_do_not_starve_a_health_check() -> None:
    """Issue 15, defect 9: more half-open connections than ``connection_limit`` used to keep
    every new client out. Now the oldest half-open ones make room, and a check answers."""
    server = _server(SlowApp(), connection_limit=40).start()
    held: list[socket.socket] = []
    try:
        for _round in range(3):
            held += _half_open(server, 40)
            started = time.monotonic()
            reply = requests.get(server.url + "/healthz", timeout=2)
            assert reply.status_code == 200 and reply.text == "ok /healthz"
            assert time.monotonic() - started < 2
    finally:
        for sock in held:
            sock.close()
        server.close()


def test_a_request_head_trickled_line_by_line_is_cut_at_the_deadline() -> None:
    """One header line every 0.3 s kept a connection open for good (the idle timeout counts
    from the last byte); the head must be complete within ``header_seconds``."""
    server = _server(SlowApp(), header_seconds=1.0).start()
    try:
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        cut = False
        for index in range(20):  # 6 s of trickling at most
            try:
                sock.sendall(f"X-Slow-{index}: y\r\n".encode())
            except OSError:
                cut = True
                break
            if _closed_by_server(sock, 0.3):
                cut = True
                break
        assert cut, "the trickling connection was never closed"
        assert 1.0 <= time.monotonic() - started < 3.0
        sock.close()
        assert requests.get(server.url + "/", timeout=2).text == "ok /"
    finally:
        server.close()


class TakeoverApp:
    """``/own`` takes its connection over and writes the body itself; ``/early`` tries to
    take it before ``start_response``."""

    def __init__(self) -> None:
        self.taken: list[Detached] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/early":
            environ[DETACH]()
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Mine", "1")])
        return self._take(environ) if path == "/own" else [b"ok"]

    def _take(self, environ: WSGIEnvironment) -> Iterator[bytes]:
        self.taken.append(environ[DETACH]())
        yield from ()


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_an_app_can_take_its_connection_over_and_send_the_body_itself() -> None:
    app = TakeoverApp()
    server = _server(app).start()  # type: ignore[arg-type]
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /own HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until = time.monotonic() + 10
            while not app.taken and time.monotonic() < wait_until:
                time.sleep(0.01)
            taken = app.taken[0]
            assert taken.head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"X-Mine: 1\r\n" in taken.head and b"Connection: close\r\n" in taken.head
            assert taken.head.endswith(b"\r\n\r\n") and b"chunked" not in taken.head
            # waitress has let go: what the client gets is exactly what the app sends
            taken.socket.setblocking(True)
            taken.socket.sendall(taken.head + b"mine, all of it")
            taken.socket.close()
            assert _read_all(sock) == taken.head + b"mine, all of it"
        # the server carries on serving
        assert requests.get(f"{server.url}/", timeout=5).status_code == 200
    finally:
        server.close()


def test_taking_a_connection_before_start_response_is_an_error() -> None:
    server = _server(TakeoverApp()).start()  # type: ignore[arg-type]
    try:
        response = requests.get(f"{server.url}/early", timeout=5)
        assert response.status_code == 500
    finally:
        server.close()
