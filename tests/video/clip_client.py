"""Reading a clip's MJPEG over HTTP as a browser's ``fetch`` would: each part by its
``Content-Length``, with the moment it arrived (so a test can check the original timing)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kva.video.store import BOUNDARY


@dataclass
class ClipPart:
    headers: dict[str, str]
    body: bytes
    received: float  # monotonic

    @property
    def capture_ns(self) -> int:
        return int(self.headers["x-kva-capture-ns"])


@dataclass
class ClipResponse:
    status: int
    headers: dict[str, str]
    parts: list[ClipPart] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False  # the closing boundary arrived

    def json(self) -> Any:
        return json.loads(self.body)


def get(url: str, timeout: float = 30.0, max_parts: int | None = None) -> ClipResponse:
    """GET ``url``; a multipart answer is read part by part (at most ``max_parts``)."""
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname or "", split.port, timeout=timeout)
    try:
        connection.request("GET", split.path + (f"?{split.query}" if split.query else ""))
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        result = ClipResponse(response.status, headers)
        if not headers.get("content-type", "").startswith("multipart/"):
            result.body = response.read()
            return result
        _read_parts(response, result, max_parts)
        return result
    finally:
        connection.close()


def _read_parts(
    response: http.client.HTTPResponse, result: ClipResponse, max_parts: int | None
) -> None:
    buffer = b""
    boundary = f"--{BOUNDARY}".encode()
    while max_parts is None or len(result.parts) < max_parts:
        while b"\r\n\r\n" not in buffer and not buffer.startswith(boundary + b"--"):
            chunk = response.read1(1 << 20)
            if not chunk:
                return
            buffer += chunk
        if buffer.startswith(boundary + b"--"):
            result.ended = True
            return
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0] == boundary.decode(), lines[0]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
        }
        length = int(headers["content-length"])
        while len(buffer) < length + 2:
            chunk = response.read1(1 << 20)
            if not chunk:
                raise ConnectionError("the clip ended inside a frame")
            buffer += chunk
        assert buffer[length : length + 2] == b"\r\n"
        result.parts.append(ClipPart(headers, buffer[:length], time.monotonic()))
        buffer = buffer[length + 2 :]
