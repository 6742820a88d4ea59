"""The newest events of every stream and the running counts of its lines and zones, in memory.

The events reader (:mod:`kva.video.event_reader`) calls :meth:`EventStore.put`
with each event read from the ``events`` topic (the wire format is
:mod:`kva.events`); the API and the page read it. Everything is bounded:

- per stream, the newest ``max_events`` events (older ones fall off; an event
  id seen among them again, e.g. a replay, is a ``duplicate`` and not kept twice);
- per stream, the counts of at most :data:`MAX_COUNTERS` lines and zones (the
  least recently updated one makes room);
- at most ``max_streams`` streams (the one whose last event arrived longest ago
  makes room: a feed is about now).

The **counts** of a line (``{"in", "out"}``) or zone (``{"inside", "entered"}``)
are those of its latest event: each event carries the running totals just after
it. "Latest" is by capture time, so an older event arriving late (another
partition, a replay) never winds a count back.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kva.events import Event

#: Lines plus zones whose counts are kept per stream.
MAX_COUNTERS = 32

PutResult = Literal["kept", "duplicate", "too_old"]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read, with its JSON form (made once, not once per request)."""

    event: Event
    document: dict[str, Any]
    received_s: float  # wall clock, seconds

    @classmethod
    def of(cls, event: Event, received_s: float) -> StoredEvent:
        document = json.loads(event.to_json())  # the one wire format, as a dict
        document["received_s"] = round(received_s, 3)
        return cls(event, document, received_s)


@dataclass(frozen=True, slots=True)
class Tally:
    """The running counts of one line or zone, from its latest event."""

    kind: Literal["line", "zone"]
    name: str
    counts: dict[str, int]
    capture_ns: int
    event_id: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "counts": dict(self.counts), "event": self.event_id}


class StreamEvents:
    """One stream's newest events (newest last) and its counters."""

    def __init__(self, stream_id: str, max_events: int) -> None:
        self.stream_id = stream_id
        self._events: deque[StoredEvent] = deque(maxlen=max_events)
        self._ids: set[str] = set()
        self._counters: OrderedDict[tuple[str, str], Tally] = OrderedDict()
        self.last_received_s = 0.0

    def add(self, stored: StoredEvent) -> PutResult:
        """Keep ``stored`` as the newest event; update its line's or zone's counts."""
        event = stored.event
        if event.id in self._ids:
            return "duplicate"
        oldest = self._events[0] if self._events else None
        if len(self._events) == self._events.maxlen and oldest is not None:
            if event.capture_ns < oldest.event.capture_ns:
                return "too_old"  # would fall off at once
            self._ids.discard(oldest.event.id)
        self._events.append(stored)
        self._ids.add(event.id)
        self.last_received_s = stored.received_s
        self._count(event)
        return "kept"

    def _count(self, event: Event) -> None:
        kind: Literal["line", "zone"] = "line" if event.line is not None else "zone"
        name = event.line if event.line is not None else event.zone
        if name is None or not event.counts:
            return
        key = (kind, name)
        old = self._counters.get(key)
        if old is not None and event.capture_ns < old.capture_ns:
            return  # a late, older event: its totals are not the latest
        self._counters[key] = Tally(kind, name, dict(event.counts), event.capture_ns, event.id)
        self._counters.move_to_end(key)
        while len(self._counters) > MAX_COUNTERS:
            self._counters.popitem(last=False)

    def newest(self, limit: int) -> list[StoredEvent]:
        """Up to ``limit`` events, newest (by capture time) first."""
        ordered = sorted(self._events, key=lambda s: (s.event.capture_ns, s.event.seq))
        return ordered[::-1][:limit]

    def counters(self, kind: Literal["line", "zone"]) -> list[Tally]:
        """The counters of one kind, sorted by name."""
        return sorted((c for c in self._counters.values() if c.kind == kind), key=lambda c: c.name)


class EventStore:
    """The bounded set of streams with events (see the module docstring)."""

    def __init__(
        self,
        max_streams: int = 64,
        max_events: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_streams = max_streams
        self.max_events = max_events
        self._clock = clock
        self._lock = threading.Lock()
        self._streams: dict[str, StreamEvents] = {}
        self.evicted = 0

    def put(self, event: Event) -> PutResult:
        """Add one event read from Kafka; what became of it (``kept`` or why not)."""
        stored = StoredEvent.of(event, self._clock())
        with self._lock:
            stream = self._streams.get(event.stream)
            if stream is None:
                if len(self._streams) >= self.max_streams:
                    quiet = min(self._streams.values(), key=lambda s: s.last_received_s)
                    del self._streams[quiet.stream_id]
                    self.evicted += 1
                stream = self._streams[event.stream] = StreamEvents(event.stream, self.max_events)
            return stream.add(stored)

    def get(self, stream_id: str) -> StreamEvents | None:
        """The events of ``stream_id``, or None if it has none."""
        return self._streams.get(stream_id)

    def stream_ids(self) -> list[str]:
        """Every stream with events, sorted."""
        with self._lock:
            return sorted(self._streams)

    def newest(self, limit: int, stream_id: str | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` event documents, newest first, of one stream or of all."""
        with self._lock:
            if stream_id is not None:
                stream = self._streams.get(stream_id)
                chosen = [] if stream is None else stream.newest(limit)
            else:
                chosen = [e for s in self._streams.values() for e in s.newest(limit)]
        chosen.sort(key=lambda s: (s.event.capture_ns, s.event.seq), reverse=True)
        return [s.document for s in chosen[:limit]]

    def marks(self, stream_id: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` of a stream's newest events as timeline marks, oldest first:
        ``{"id", "t_ms" (capture time), "type"}``."""
        with self._lock:
            stream = self._streams.get(stream_id)
            chosen = [] if stream is None else stream.newest(limit)
        return [
            {"id": s.event.id, "t_ms": s.event.capture_ns // 1_000_000, "type": s.event.type}
            for s in reversed(chosen)
        ]

    def summary(self, stream_id: str, limit: int) -> dict[str, Any] | None:
        """One stream's counts and newest events, as ``/api/streams`` shows them; None if none."""
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None:
                return None
            return {
                "lines": [c.as_json() for c in stream.counters("line")],
                "zones": [c.as_json() for c in stream.counters("zone")],
                "recent": [s.document for s in stream.newest(limit)],
            }
