"""A small MJPEG client over a raw socket: parses ``multipart/x-mixed-replace`` parts."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from kva.video.store import BOUNDARY

DELIMITER = f"\r\n--{BOUNDARY}\r\n".encode()


@dataclass
class Part:
    headers: dict[str, str]
    body: bytes
    received: float


@dataclass
class MjpegClient:
    """Connects, sends the GET, and reads parts on demand (``read_part``)."""

    host: str
    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    _sock: socket.socket | None = None
    _buffer: bytes = b""

    def connect(self) -> MjpegClient:
        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        request = f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\n{extra}\r\n"
        self._sock.sendall(request.encode())
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.response_headers = {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
        }
        self._chunked = self.response_headers.get("transfer-encoding") == "chunked"
        self._raw = self._buffer
        self._buffer = b""
        return self

    def _recv(self) -> bytes:
        assert self._sock is not None
        data = self._sock.recv(1 << 20)
        if not data:
            raise ConnectionError("server closed the connection")
        return data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._buffer += self._recv()
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _body_bytes(self) -> None:
        """Move more response body (de-chunked) into the part buffer."""
        if not self._chunked:
            self._buffer += self._raw or self._recv()
            self._raw = b""
            return
        while True:
            line_end = self._raw.find(b"\r\n")
            if line_end >= 0:
                size = int(self._raw[:line_end].split(b";")[0], 16)
                start = line_end + 2
                if size == 0:
                    raise ConnectionError("stream ended")
                if len(self._raw) >= start + size + 2:
                    self._buffer += self._raw[start : start + size]
                    self._raw = self._raw[start + size + 2 :]
                    return
            self._raw += self._recv()

    def read_part(self) -> Part:
        """The next complete part (it is complete once the next boundary has arrived)."""
        if not hasattr(self, "_started"):
            while len(self._buffer) < len(BOUNDARY) + 4:
                self._body_bytes()
            first = f"--{BOUNDARY}\r\n".encode()
            assert self._buffer.startswith(first), self._buffer[:40]
            self._buffer = DELIMITER + self._buffer[len(first) :]
            self._started = True
        while self._buffer.count(DELIMITER) < 2:
            self._body_bytes()
        _, rest = self._buffer.split(DELIMITER, 1)
        part, _, tail = rest.partition(DELIMITER)
        self._buffer = DELIMITER + tail
        head, _, body = part.partition(b"\r\n\r\n")
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (ln.partition(":") for ln in head.decode("latin-1").split("\r\n"))
        }
        return Part(headers, body, time.monotonic())

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
