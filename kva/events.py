"""The events wire format: what happened in a stream (a track entered a zone, crossed a line).

The consumer writes one :class:`Event` per happening, as JSON, to the ``events``
topic, keyed by stream; ``kva events`` (the sink) and anyone else read it back with
:meth:`Event.from_json`. This module is the one definition of that document::

    {"v": 1, "id": "5f0c…", "type": "line_cross", "stream": "cam0", "seq": 42,
     "capture_ns": ..., "frame": {"topic": "frames", "partition": 0, "offset": 1234},
     "track": 7, "label": "person", "box": [x_min, y_min, x_max, y_max],
     "zone": null, "line": "walkway", "direction": "in", "dwell_s": null,
     "counts": {"in": 12, "out": 9}}

- ``id`` is stable: the same happening computed again (a replay, a restarted
  consumer) gets the same id, so receivers de-duplicate by it.
- ``frame`` names the Kafka record of the frame the event came from, so a replay
  can find it; ``None`` when unknown.
- ``zone`` is set for ``zone_enter``, ``zone_exit`` and ``loiter``; ``line`` and
  ``direction`` (``in``/``out``, see the camera file) for ``line_cross``;
  ``dwell_s`` for ``loiter`` and ``zone_exit``.
- ``counts`` are the running totals of the zone (``{"inside": n, "entered": n}``)
  or line (``{"in": n, "out": n}``) just after this event.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from kva.frame import is_valid_stream_id

#: The version this module writes and reads (the document's ``v``).
SCHEMA_VERSION = 1
#: Largest event document accepted (bytes).
MAX_EVENT_BYTES = 16 * 1024
MAX_NAME = 64
#: Longest Kafka topic name (Kafka's own limit): the ``frame`` topic may be that long.
MAX_TOPIC = 249
MAX_COUNTS = 16

EventType = Literal["zone_enter", "zone_exit", "line_cross", "loiter"]
Direction = Literal["in", "out"]
EventErrorReason = Literal["empty", "oversized", "bad_json", "bad_schema"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
DIRECTIONS: tuple[str, ...] = get_args(Direction)


class EventError(ValueError):
    """Not a valid event document; ``reason`` is a metrics label."""

    def __init__(self, reason: EventErrorReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: EventErrorReason = reason


@dataclass(frozen=True, slots=True)
class FrameRef:
    """Where the frame an event came from is stored in Kafka."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Event:
    """One happening in one stream (see the module docstring)."""

    type: EventType
    stream: str
    seq: int
    capture_ns: int
    track: int
    label: str
    box: tuple[float, float, float, float]
    zone: str | None = None
    line: str | None = None
    direction: Direction | None = None
    dwell_s: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    frame: FrameRef | None = None

    @property
    def id(self) -> str:
        """Stable id: a digest of what identifies the happening (not of the counts)."""
        key = "|".join(
            str(part)
            for part in (
                self.stream, self.capture_ns, self.seq, self.type, self.track,
                self.zone, self.line, self.direction,
            )
        )  # fmt: skip
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def to_json(self) -> str:
        """The compact JSON text, as the ``events`` topic carries it."""
        frame = None
        if self.frame is not None:
            frame = {
                "topic": self.frame.topic,
                "partition": self.frame.partition,
                "offset": self.frame.offset,
            }
        document = {
            "v": SCHEMA_VERSION,
            "id": self.id,
            "type": self.type,
            "stream": self.stream,
            "seq": self.seq,
            "capture_ns": self.capture_ns,
            "frame": frame,
            "track": self.track,
            "label": self.label,
            "box": [round(v, 5) for v in self.box],
            "zone": self.zone,
            "line": self.line,
            "direction": self.direction,
            "dwell_s": None if self.dwell_s is None else round(self.dwell_s, 3),
            "counts": dict(self.counts),
        }
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> Event:
        """Parse and validate one document.

        Raises:
            EventError: and nothing else, whatever ``raw`` holds (including an ``id``
                that does not match the content).
        """
        doc = _load(raw)
        if doc.get("v") != SCHEMA_VERSION:
            raise EventError("bad_schema", f"version {str(doc.get('v'))[:20]!r} is not 1")
        stream = doc.get("stream")
        if not isinstance(stream, str) or not is_valid_stream_id(stream):
            raise EventError("bad_schema", f"stream id {str(stream)[:60]!r} is invalid")
        kind = _choice(doc.get("type"), EVENT_TYPES, "type")
        direction = doc.get("direction")
        dwell = doc.get("dwell_s")
        event = cls(
            type=cast(EventType, kind),
            stream=stream,
            seq=_int(doc.get("seq"), "seq"),
            capture_ns=_int(doc.get("capture_ns"), "capture_ns"),
            track=_int(doc.get("track"), "track"),
            label=_name(doc.get("label"), "label"),
            box=_box(doc.get("box")),
            zone=_optional_name(doc.get("zone"), "zone"),
            line=_optional_name(doc.get("line"), "line"),
            direction=None
            if direction is None
            else cast(Direction, _choice(direction, DIRECTIONS, "direction")),
            dwell_s=None if dwell is None else _number(dwell, "dwell_s"),
            counts=_counts(doc.get("counts", {})),
            frame=_frame(doc.get("frame")),
        )
        if doc.get("id") != event.id:
            raise EventError("bad_schema", "id does not match the event's content")
        return event


# -- validation: each raises EventError("bad_schema") naming what was wrong ----------------------
def _load(raw: bytes | str | None) -> dict[str, Any]:
    if not raw:
        raise EventError("empty", "the document is empty")
    if len(raw) > MAX_EVENT_BYTES:
        raise EventError("oversized", f"{len(raw)} bytes > limit {MAX_EVENT_BYTES}")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EventError("bad_json", f"not JSON: {str(exc)[:100]}") from None
    if not isinstance(document, dict):
        raise EventError("bad_json", f"expected a JSON object, got {type(document).__name__}")
    return document


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise EventError("bad_schema", f"{what} is not an integer in 0..2^63")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError("bad_schema", f"{what} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise EventError("bad_schema", f"{what} is not finite")
    return number


def _name(value: Any, what: str, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise EventError("bad_schema", f"{what} is not a name of 1..{limit} characters")
    return value


def _optional_name(value: Any, what: str) -> str | None:
    return None if value is None else _name(value, what)


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise EventError("bad_schema", f"{what} {str(value)[:40]!r} is not one of {allowed}")
    return value


def _box(value: Any) -> tuple[float, float, float, float]:
    if not isinstance(value, list) or len(value) != 4:
        raise EventError("bad_schema", "box is not [x_min, y_min, x_max, y_max]")
    x0, y0, x1, y1 = (_number(v, "box coordinate") for v in value)
    return (x0, y0, x1, y1)


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > MAX_COUNTS:
        raise EventError("bad_schema", f"counts is not an object of at most {MAX_COUNTS} entries")
    return {_name(k, "count name"): _int(v, "count") for k, v in value.items()}


def _frame(value: Any) -> FrameRef | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EventError("bad_schema", "frame is not an object")
    return FrameRef(
        topic=_name(value.get("topic"), "frame topic", MAX_TOPIC),
        partition=_int(value.get("partition"), "frame partition"),
        offset=_int(value.get("offset"), "frame offset"),
    )
