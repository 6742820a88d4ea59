"""A Kafka message detached from librdkafka, and the safe reading of its headers."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

from confluent_kafka import Message

from kva.frame import DEFAULT_MAX_FRAME_BYTES, Frame, FrameDecodeError, decode_frame


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed (or delivered) Kafka message, detached from librdkafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp_ms: int = 0
    #: Why the headers could not be read (e.g. a header name that is not UTF-8), else None.
    header_error: str | None = None

    @property
    def where(self) -> str:
        """``topic[partition]@offset``, for log lines."""
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def frame(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Frame:
        """Decode as a :class:`Frame`; raises :class:`~kva.frame.FrameDecodeError`."""
        if self.header_error is not None:
            raise FrameDecodeError("bad_header", self.header_error)
        return decode_frame(self.key, self.value, self.headers, max_frame_bytes)

    @classmethod
    def from_message(cls, msg: Message) -> Record:
        _kind, timestamp = msg.timestamp()
        pairs = _header_pairs(msg)
        return cls(
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            key=msg.key(),
            value=msg.value(),
            headers=[] if pairs is None else pairs,
            timestamp_ms=timestamp,
            header_error=None if pairs is not None else "a header name is not UTF-8",
        )


def _header_pairs(msg: Message) -> list[tuple[str, bytes | None]] | None:
    """The headers as (name, value) pairs, or None when they cannot be read safely.

    confluent-kafka turns a header name that is not UTF-8 into a NULL inside the
    (name, value) tuple: ``Message.headers()`` then raises SystemError, or returns
    (and caches) a list whose tuple crashes the interpreter when unpacked, leaving the
    decoding error pending (the next checked call raises SystemError). Such a tuple is
    recognised without touching the NULL: the garbage collector's traversal skips NULL
    members, so it reports fewer than two referents.
    """
    try:
        headers = msg.headers()
        if not headers:
            return []
        items = list(headers.items()) if isinstance(headers, dict) else list(headers)
        pairs: list[tuple[str, bytes | None]] = []
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2 or len(gc.get_referents(item)) != 2:
                return None
            name, value = item
            pairs.append((name, value if isinstance(value, bytes | None) else value.encode()))
    except SystemError:  # the decoding error confluent-kafka left pending surfaces here
        return None
    return pairs
