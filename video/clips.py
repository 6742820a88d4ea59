"""What a clip is: one stream, one source topic, one time range, checked against the limits.

A **clip** is the frames of one stream captured in a half-open time range
``[start_ms, end_ms)``, read back from Kafka (the annotated frames, or the raw
ones with ``source=frames``). The query of a clip route names it either by an
event's time, ``at_ms=T`` (``--clip-before`` seconds before T to ``--clip-after``
after), or by its start, ``from_ms=T`` with ``to_ms=`` (default: the same length
as an event's clip). Times are milliseconds since the Unix epoch, the unit of
Kafka timestamps. Every refusal is a :class:`ClipError` with the HTTP status and
a message saying what to send instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kva.frame import is_valid_stream_id
from kva.timerange import TimeRange
from kva.video.config import VideoSettings

Source = Literal["annotated", "frames"]
SOURCES: tuple[Source, ...] = ("annotated", "frames")
#: Digits of a time in ms: 13 until the year 2286; more is refused before int().
_MAX_DIGITS = 16


class ClipError(Exception):
    """A clip that cannot be served: an HTTP status, a message and details for the JSON body."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    def as_json(self) -> dict[str, Any]:
        """The response body: ``{"error": message, ...details}``."""
        return {"error": self.message} | self.details


@dataclass(frozen=True, slots=True)
class ClipRequest:
    """A checked clip: which stream, from which topic, over which time range."""

    stream_id: str
    source: Source
    topic: str
    start_ms: int
    end_ms: int

    @property
    def time_range(self) -> TimeRange:
        """The half-open range ``[start_ms, end_ms)``."""
        return TimeRange(self.start_ms, self.end_ms)

    @property
    def filename(self) -> str:
        """A download name: ``<stream>-<source>-<start_ms>-<end_ms>.avi`` (all safe characters)."""
        return f"{self.stream_id}-{self.source}-{self.start_ms}-{self.end_ms}.avi"


def parse_clip_request(
    stream_id: str, args: Mapping[str, str], settings: VideoSettings
) -> ClipRequest:
    """The clip a route's path and query name, checked.

    Raises:
        ClipError: 400 for a bad stream id, source or time, an empty, reversed or too
            long range, or a raw clip when the viewer has no frames topic.
    """
    if not is_valid_stream_id(stream_id):
        raise ClipError(400, f"invalid stream id {stream_id[:40]!r}")
    source, topic = _source(args.get("source", "annotated"), settings)
    start_ms, end_ms = _range(args, settings)
    length_s = (end_ms - start_ms) / 1000
    if end_ms <= start_ms:
        raise ClipError(
            400, f"to_ms {end_ms} is not after from_ms {start_ms}: the range is empty or reversed"
        )
    if length_s > settings.video_max_clip_seconds:
        raise ClipError(
            400,
            f"the clip is {length_s:g} s long; the longest is "
            f"{settings.video_max_clip_seconds:g} s (--max-clip-seconds)",
        )
    return ClipRequest(stream_id, source, topic, start_ms, end_ms)


def _source(raw: str, settings: VideoSettings) -> tuple[Source, str]:
    if raw == "annotated":
        return "annotated", settings.video_topic
    if raw == "frames":
        if not settings.video_frames_topic:
            raise ClipError(400, "raw clips are off: this viewer has no --frames-topic")
        return "frames", settings.video_frames_topic
    raise ClipError(400, f"source {raw[:20]!r} is not one of {', '.join(SOURCES)}")


def _range(args: Mapping[str, str], settings: VideoSettings) -> tuple[int, int]:
    before_ms = round(settings.video_clip_before * 1000)
    after_ms = round(settings.video_clip_after * 1000)
    if "at_ms" in args:
        if "from_ms" in args or "to_ms" in args:
            raise ClipError(400, "give at_ms (an event's time) or from_ms/to_ms, not both")
        at = _millis(args, "at_ms")
        return max(0, at - before_ms), at + after_ms
    if "from_ms" not in args:
        raise ClipError(
            400, "which clip? give at_ms=T (an event's time) or from_ms=T[&to_ms=T2], in ms"
        )
    start = _millis(args, "from_ms")
    end = _millis(args, "to_ms") if "to_ms" in args else start + max(1, before_ms + after_ms)
    return start, end


def _millis(args: Mapping[str, str], name: str) -> int:
    raw = args[name]
    if not (0 < len(raw) <= _MAX_DIGITS and raw.isascii() and raw.isdigit()):
        raise ClipError(
            400, f"{name} {raw[:24]!r} is not a time in milliseconds since 1970 (digits only)"
        )
    return int(raw)
