"""Time ranges a person types: ``-5m``, ``now``, ``2026-12-07T12:00:00Z``.

Every Kafka record kva writes is stamped with its frame's capture time, so a
time range over a topic is a range of capture times. This module turns what a
person types into epoch milliseconds and checks the range; it knows nothing of
Kafka (:mod:`kva.kafka.history` reads the records).

Accepted instants:

- ``now``;
- relative to now: ``-5m``, ``-90s``, ``-1h30m``, ``-2d``, ``-500ms`` (a leading
  ``-`` and one or more number-unit pairs; units ``ms``, ``s``, ``m``, ``h``, ``d``);
- ISO 8601: ``2026-12-07T12:00:00Z``, ``2026-12-07T12:00:00.250+01:00``; without an
  offset the time is local time; a date alone is its midnight;
- epoch milliseconds: ``1765108800000`` (13 or more digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

#: Longest text accepted as an instant (nothing sensible is longer).
MAX_INSTANT_CHARS = 64
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RELATIVE = re.compile(r"-((?:\d{1,9}(?:ms|s|m|h|d))+)")
_PART = re.compile(r"(\d{1,9})(ms|s|m|h|d)")
_EPOCH_MS = re.compile(r"\d{13,16}")


class TimeRangeError(ValueError):
    """An instant or range that cannot be used; the message says why, for a person."""


def parse_instant(text: str, now_ms: int) -> int:
    """``text`` as epoch milliseconds (see the module docstring for what is accepted).

    Raises:
        TimeRangeError: not a time kva understands.
    """
    value = text.strip()
    if not value or len(value) > MAX_INSTANT_CHARS:
        raise TimeRangeError(f"not a time: {text[:MAX_INSTANT_CHARS]!r}")
    if value == "now":
        return now_ms
    relative = _RELATIVE.fullmatch(value)
    if relative:
        parts = _PART.findall(relative.group(1))
        return now_ms - sum(int(n) * _UNIT_MS[unit] for n, unit in parts)
    if _EPOCH_MS.fullmatch(value):
        return int(value)
    return _parse_iso(value)


def _parse_iso(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise TimeRangeError(
            f"not a time: {value!r} (use now, -5m, -1h30m, an ISO time like "
            "2026-12-07T12:00:00Z, or epoch milliseconds)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as a person at this machine means it
    return int(moment.timestamp() * 1000)


def format_ms(epoch_ms: int) -> str:
    """An instant for messages: ISO 8601 in UTC, to the millisecond."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Capture times ``start_ms <= t < end_ms`` (epoch milliseconds)."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms < self.start_ms:
            raise TimeRangeError(
                f"the range is reversed: it ends ({format_ms(self.end_ms)}) before it "
                f"starts ({format_ms(self.start_ms)})"
            )
        if self.end_ms == self.start_ms:
            raise TimeRangeError(f"the range is empty: it starts and ends at {self}")

    @classmethod
    def parse(cls, start: str, end: str | None = None, *, now_ms: int) -> TimeRange:
        """The range from ``start`` to ``end`` (default: now), both as :func:`parse_instant`.

        Raises:
            TimeRangeError: an instant cannot be read, or the range is empty or reversed.
        """
        return cls(parse_instant(start, now_ms), parse_instant(end or "now", now_ms))

    def contains(self, epoch_ms: int) -> bool:
        """Whether ``epoch_ms`` lies in the range."""
        return self.start_ms <= epoch_ms < self.end_ms

    @property
    def duration_s(self) -> float:
        """The range's length in seconds."""
        return (self.end_ms - self.start_ms) / 1000

    def __str__(self) -> str:
        return f"{format_ms(self.start_ms)} .. {format_ms(self.end_ms)}"
