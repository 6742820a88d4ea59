"""The frame envelope: one codec for every service.

A frame travels as one Kafka message. The message key is the stream id (so
each camera stays ordered in one partition), the value is the encoded image
and the headers carry the metadata as ASCII strings, readable with ``kcat``:

==================  =======================================================
header              meaning
==================  =======================================================
``kva-version``     envelope version (``1``)
``kva-seq``         per-stream sequence number (non-negative int)
``kva-capture-ns``  capture time, ns since the Unix epoch
``kva-width``       image width in pixels
``kva-height``      image height in pixels
``kva-size``        length of the value in bytes
``content-type``    ``image/jpeg`` (or another image type)
``kva-*``           any other ``kva-`` header is kept in ``Frame.attributes``
==================  =======================================================

Decoding never raises anything but :class:`FrameDecodeError`, whose
``reason`` names what was wrong so callers can count it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

ENVELOPE_VERSION = "1"
JPEG = "image/jpeg"

H_VERSION = "kva-version"
H_SEQUENCE = "kva-seq"
H_CAPTURE_NS = "kva-capture-ns"
H_WIDTH = "kva-width"
H_HEIGHT = "kva-height"
H_SIZE = "kva-size"
H_CONTENT_TYPE = "content-type"
_CORE_HEADERS = frozenset(
    {H_VERSION, H_SEQUENCE, H_CAPTURE_NS, H_WIDTH, H_HEIGHT, H_SIZE, H_CONTENT_TYPE}
)

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_HEADER_VALUE_BYTES = 256 * 1024
MAX_HEADERS = 64
MAX_STREAM_ID_LENGTH = 128
MAX_DIMENSION = 16384

HeaderList = list[tuple[str, bytes]]


class FrameDecodeError(ValueError):
    """A Kafka message that is not a valid frame.

    Attributes:
        reason: a short, stable label for metrics (``empty``, ``oversized``,
            ``missing_key``, ``bad_key``, ``missing_header``, ``bad_header``,
            ``size_mismatch``).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded video frame of one stream."""

    stream_id: str
    sequence: int
    capture_ns: int
    width: int
    height: int
    data: bytes = field(repr=False)
    content_type: str = JPEG
    attributes: Mapping[str, str] = field(default_factory=dict)

    def age_seconds(self, now_ns: int | None = None) -> float:
        """Seconds between capture and ``now_ns`` (default: now)."""
        now = time.time_ns() if now_ns is None else now_ns
        return (now - self.capture_ns) / 1e9

    def replace(self, **changes: object) -> Frame:
        """A copy with some fields changed (e.g. annotated ``data``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def encode_frame(frame: Frame) -> tuple[bytes, bytes, HeaderList]:
    """Frame -> (key, value, headers) for a Kafka produce call."""
    headers: HeaderList = [
        (H_VERSION, ENVELOPE_VERSION.encode()),
        (H_SEQUENCE, str(frame.sequence).encode()),
        (H_CAPTURE_NS, str(frame.capture_ns).encode()),
        (H_WIDTH, str(frame.width).encode()),
        (H_HEIGHT, str(frame.height).encode()),
        (H_SIZE, str(len(frame.data)).encode()),
        (H_CONTENT_TYPE, frame.content_type.encode()),
    ]
    for name, value in frame.attributes.items():
        if name in _CORE_HEADERS or not name.startswith("kva-"):
            raise ValueError(
                f"attribute name {name!r} must start with 'kva-' and not be a core header"
            )
        headers.append((name, value.encode("utf-8")))
    return frame.stream_id.encode("utf-8"), frame.data, headers


def decode_frame(
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> Frame:
    """(key, value, headers) of a Kafka message -> :class:`Frame`.

    Raises:
        FrameDecodeError: the message is not a valid frame.
    """
    if not value:
        raise FrameDecodeError("empty", "message has no payload")
    if len(value) > max_frame_bytes:
        raise FrameDecodeError("oversized", f"{len(value)} bytes > limit {max_frame_bytes}")
    stream_id = _decode_stream_id(key)
    fields = _header_map(headers or [])
    size = _int_header(fields, H_SIZE, 0, max_frame_bytes)
    if size != len(value):
        raise FrameDecodeError(
            "size_mismatch", f"header says {size} bytes, payload has {len(value)}"
        )
    content_type = _required(fields, H_CONTENT_TYPE)
    if "/" not in content_type or len(content_type) > 100:
        raise FrameDecodeError("bad_header", f"content-type {content_type[:100]!r}")
    return Frame(
        stream_id=stream_id,
        sequence=_int_header(fields, H_SEQUENCE, 0, 2**63 - 1),
        capture_ns=_int_header(fields, H_CAPTURE_NS, 0, 2**63 - 1),
        width=_int_header(fields, H_WIDTH, 1, MAX_DIMENSION),
        height=_int_header(fields, H_HEIGHT, 1, MAX_DIMENSION),
        data=bytes(value),
        content_type=content_type,
        attributes={k: v for k, v in fields.items() if k not in _CORE_HEADERS},
    )


def _decode_stream_id(key: bytes | None) -> str:
    if not key:
        raise FrameDecodeError("missing_key", "message has no key (stream id)")
    if len(key) > MAX_STREAM_ID_LENGTH:
        raise FrameDecodeError("bad_key", f"stream id longer than {MAX_STREAM_ID_LENGTH} bytes")
    try:
        stream_id = key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameDecodeError("bad_key", "stream id is not UTF-8") from exc
    if not is_valid_stream_id(stream_id):
        raise FrameDecodeError(
            "bad_key", f"stream id {stream_id!r} has characters outside [A-Za-z0-9_.-]"
        )
    return stream_id


def is_valid_stream_id(stream_id: str) -> bool:
    """Stream ids are short, URL-safe names: letters, digits, ``_``, ``.``, ``-``."""
    return (
        0 < len(stream_id) <= MAX_STREAM_ID_LENGTH
        and stream_id.isascii()
        and all(c.isalnum() or c in "_.-" for c in stream_id)
        and not stream_id.startswith(".")
    )


def _header_map(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for count, (name, raw) in enumerate(headers, start=1):
        if count > MAX_HEADERS:
            raise FrameDecodeError("bad_header", f"more than {MAX_HEADERS} headers")
        if not name.startswith("kva-") and name != H_CONTENT_TYPE:
            continue
        if raw is None:
            raise FrameDecodeError("bad_header", f"header {name} has no value")
        if len(raw) > MAX_HEADER_VALUE_BYTES:
            raise FrameDecodeError(
                "bad_header", f"header {name} longer than {MAX_HEADER_VALUE_BYTES} bytes"
            )
        try:
            fields[name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameDecodeError("bad_header", f"header {name} is not UTF-8") from exc
    return fields


def _required(fields: Mapping[str, str], name: str) -> str:
    try:
        return fields[name]
    except KeyError:
        raise FrameDecodeError("missing_header", f"header {name} missing") from None


#: Longest integer header: 2**63 - 1 has 19 digits (one more lets "leading zero" cases through).
_MAX_INT_DIGITS = 20
_ASCII_DIGITS = frozenset("0123456789")


def _int_header(fields: Mapping[str, str], name: str, low: int, high: int) -> int:
    text = _required(fields, name)
    # ASCII digits only: str.isdigit() is also true for "²" or "٣", which int() refuses
    # or reads as another number (a poison message must be a typed error, never a crash)
    if not (0 < len(text) <= _MAX_INT_DIGITS and _ASCII_DIGITS.issuperset(text)):
        raise FrameDecodeError(
            "bad_header", f"header {name}={text[:40]!r} is not a non-negative integer"
        )
    number = int(text)
    if not low <= number <= high:
        raise FrameDecodeError("bad_header", f"header {name}={number} outside [{low}, {high}]")
    return number
