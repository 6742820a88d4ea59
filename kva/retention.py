"""How long each kva topic keeps its messages: retention by time and by size, as settings.

Kafka deletes a topic's data a whole *segment* at a time, once the segment is older
than ``retention.ms`` (by its newest message's timestamp, which kva sets to the
capture time) or once the partition is bigger than ``retention.bytes``. So what a
topic keeps, the range ``kva replay`` can read, is set here, per topic:

==============  ========  ===============  ============================================
topic           time      size/partition   why
==============  ========  ===============  ============================================
``frames``      1 hour    1 GiB            the raw video: big, replayable for an hour
``annotated``   1 hour    1 GiB            the same frames with boxes drawn
``predictions`` 1 day     1 GiB            small JSON (~1 KB a frame): a day to re-read
``events``      7 days    1 GiB            a sink that is down for days still finds them
==============  ========  ===============  ============================================

The size cap is the disk guard: it bounds a partition whatever the frame rate
(a 720p camera at 15 fps fills 1 GiB in well under an hour; README "Time travel"
gives the measured cost). ``-1`` means no limit, as in Kafka.

Settings take plain numbers (milliseconds, bytes) or words: ``90m``, ``1h30m``,
``7d`` and ``512MiB``, ``2GB``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from kva.timerange import TimeRangeError, parse_duration

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
MIB = 1024 * 1024
GIB = 1024 * MIB

#: Segments roll at least this often and at most this rarely (a segment is the unit Kafka deletes).
MIN_SEGMENT_MS = MINUTE_MS
MAX_SEGMENT_MS = HOUR_MS
#: Segments are at most this big (and at least 1 MiB).
MAX_SEGMENT_BYTES = 64 * MIB
#: A topic keeps about this many segments of its retention: what it holds is within 1/N of it.
SEGMENTS_PER_RETENTION = 12

_DURATION_UNITS = {"ms": 1, "s": SECOND_MS, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}
_SIZE_UNITS = {
    "": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": MIB, "gib": GIB, "tib": 1024 * GIB,
}  # fmt: skip
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_duration_ms(value: object) -> object:
    """``"1h30m"`` -> 5400000; an integer (or its text) is milliseconds; ``-1`` is no limit.

    Other values are returned as they are, for pydantic to refuse with its own message.

    Raises:
        ValueError: text that is neither a number nor a duration such as ``90s``, ``1h30m``.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return parse_duration(text)
    except TimeRangeError as exc:
        raise ValueError(f"{exc}, or milliseconds") from None


def parse_size_bytes(value: object) -> object:
    """``"512MiB"`` -> 536870912, ``"2GB"`` -> 2000000000; an integer is bytes; ``-1`` no limit.

    Raises:
        ValueError: text that is neither a number nor a size such as ``512MiB``, ``1GB``.
    """
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    match = _SIZE.fullmatch(text)
    if match is None or match[2] not in _SIZE_UNITS:
        raise ValueError(f"{value!r} is not a size: bytes, or e.g. 512MiB, 1GiB, 2GB")
    return int(float(match[1]) * _SIZE_UNITS[match[2]])


def format_duration(ms: int) -> str:
    """3600000 -> ``1h``, 5400000 -> ``1h30m``, -1 -> ``unlimited`` (for log lines and help)."""
    if ms < 0:
        return "unlimited"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, ms = divmod(ms, _DURATION_UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) + (f"{ms}ms" if ms or not parts else "")


def format_size(size: int) -> str:
    """1073741824 -> ``1GiB`` (binary units when exact, else bytes); -1 -> ``unlimited``."""
    if size < 0:
        return "unlimited"
    for unit, factor in (("TiB", 1024 * GIB), ("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


@dataclass(frozen=True, slots=True)
class Retention:
    """What a topic keeps: ``ms`` by time and ``bytes`` per partition (-1: no limit)."""

    ms: int
    bytes: int

    def topic_config(self) -> dict[str, str]:
        """The Kafka topic configs this retention sets (segments sized so deletion is timely)."""
        return {
            "retention.ms": str(self.ms),
            "retention.bytes": str(self.bytes),
            "segment.ms": str(self.segment_ms()),
            "segment.bytes": str(self.segment_bytes()),
        }

    def segment_ms(self) -> int:
        """How often a partition rolls a segment: a 12th of the retention, in [1 min, 1 h]."""
        if self.ms < 0:
            return MAX_SEGMENT_MS
        return max(MIN_SEGMENT_MS, min(MAX_SEGMENT_MS, self.ms // SEGMENTS_PER_RETENTION))

    def segment_bytes(self) -> int:
        """How big a segment grows: a 12th of the size cap, in [1 MiB, 64 MiB]."""
        if self.bytes < 0:
            return MAX_SEGMENT_BYTES
        return max(MIB, min(MAX_SEGMENT_BYTES, self.bytes // SEGMENTS_PER_RETENTION))

    def describe(self) -> str:
        """``1h, 1GiB per partition``."""
        return f"{format_duration(self.ms)}, {format_size(self.bytes)} per partition"


#: The defaults of each kva topic (see the module's table for the reasons).
FRAMES = Retention(HOUR_MS, GIB)
ANNOTATED = Retention(HOUR_MS, GIB)
PREDICTIONS = Retention(DAY_MS, GIB)
EVENTS = Retention(7 * DAY_MS, GIB)

RetentionMs = Annotated[int, BeforeValidator(parse_duration_ms)]
RetentionBytes = Annotated[int, BeforeValidator(parse_size_bytes)]


def retention_ms_field(default: int, topic: str, flag: str) -> Any:
    """A ``retention.ms`` setting of ``topic`` (use with :data:`RetentionMs`)."""
    return _field(
        default,
        f"how long the {topic} topic keeps messages, ms or e.g. 90m, 1h, 7d "
        f"(-1 = forever; default {format_duration(default)})",
        flag,
        "DURATION",
    )


def retention_bytes_field(default: int, topic: str, flag: str) -> Any:
    """A ``retention.bytes`` setting of ``topic`` (use with :data:`RetentionBytes`)."""
    return _field(
        default,
        f"most bytes the {topic} topic keeps per partition, bytes or e.g. 512MiB, 2GiB "
        f"(-1 = no limit; default {format_size(default)})",
        flag,
        "SIZE",
    )


def _field(default: int, description: str, flag: str, metavar: str) -> Any:
    return Field(
        default,
        ge=-1,
        description=description + "; applied at every start",
        json_schema_extra={"flag": flag, "metavar": metavar},
    )
