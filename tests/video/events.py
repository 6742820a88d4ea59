"""Events as the consumer writes them (:class:`kva.events.Event`), for the viewer's tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kva.events import Event, FrameRef

#: A hostile label: a page that renders it as HTML runs its handler (and retitles itself).
HOSTILE_LABEL = "<img src=x onerror=\"document.title='pwned'\">"


@dataclass
class LineCounter:
    """Makes ``line_cross`` events of one line with consistent running counts."""

    stream: str
    line: str
    counts: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0})
    seq: int = 0

    def cross(self, direction: str, track: int, label: str = "person") -> Event:
        self.counts[direction] += 1
        self.seq += 1
        return Event(
            type="line_cross",
            stream=self.stream,
            seq=self.seq,
            capture_ns=time.time_ns(),
            track=track,
            label=label,
            box=(0.4, 0.3, 0.5, 0.8),
            line=self.line,
            direction=direction,  # type: ignore[arg-type]
            counts=dict(self.counts),
            frame=FrameRef("frames", 0, 1000 + self.seq),
        )


def zone_event(
    stream: str,
    zone: str,
    kind: str,
    track: int,
    counts: dict[str, int],
    capture_ns: int | None = None,
    seq: int = 1,
    label: str = "person",
    dwell_s: float | None = None,
) -> Event:
    """A ``zone_enter``/``zone_exit``/``loiter`` event with the zone's counts after it."""
    return Event(
        type=kind,  # type: ignore[arg-type]
        stream=stream,
        seq=seq,
        capture_ns=time.time_ns() if capture_ns is None else capture_ns,
        track=track,
        label=label,
        box=(0.1, 0.1, 0.2, 0.4),
        zone=zone,
        dwell_s=dwell_s,
        counts=counts,
    )
