"""Zone and line events: where each track is, frame after frame, against its camera's scene.

For every tracked box of a frame, its reference point (:func:`kva.scene.reference_point`,
the bottom-centre) is checked against the stream's zones and lines
(:class:`kva.scene.Scene`, from the camera file):

- ``zone_enter`` when a track's point comes inside a zone, ``zone_exit`` when it leaves
  it or the track is lost for good (not seen for ``window_s``; ``dwell_s`` is the stay);
- ``loiter`` once per stay, when a track has been inside a zone longer than the zone's
  ``loiter_s``;
- ``line_cross`` when a track's point goes from one side of a line to the other through
  the line's segment (direction ``in``: from its left to its right, see
  :mod:`kva.scene`). A point exactly on the line is on neither side: a track that
  touches the line and goes back has not crossed it.

Running counts go with each event: per zone ``inside`` (now) and ``entered`` (since
the start or the last change of the scene), per line ``in`` and ``out``. Times are
the frames' capture times, so dwell does not depend on how fast the consumer runs.
State is bounded (``max_tracks`` per stream) and forgotten with the stream.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from kva.events import Direction, Event, EventType, FrameRef
from kva.predictions import NO_TRACK, Detections, ModelResult
from kva.scene import Line, Point, Scene, Zone, reference_point


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What an event says about the frame it came from."""

    stream: str
    seq: int
    capture_ns: int
    ref: FrameRef | None = None


@dataclass(slots=True)
class _Track:
    label: str
    box: tuple[float, float, float, float]
    seen_s: float
    #: per line: the last side the point was strictly on, and the point there
    sides: dict[str, tuple[int, Point]] = field(default_factory=dict)
    #: per zone the track is in: when it came in, and whether it loitered already
    inside: dict[str, list[float | bool]] = field(default_factory=dict)


class StreamScene:
    """The tracks and counts of one stream against its scene. Not thread-safe."""

    def __init__(self, scene: Scene, window_s: float, max_tracks: int) -> None:
        self.scene = scene
        self.window_s = window_s
        self.max_tracks = max_tracks
        self.line_counts: dict[str, dict[str, int]] = {
            ln.name: {"in": 0, "out": 0} for ln in scene.lines
        }
        self.zone_entered: dict[str, int] = {z.name: 0 for z in scene.zones}
        self._tracks: dict[tuple[str, int], _Track] = {}
        self._last_ns = -1

    def zone_inside(self, zone: str) -> int:
        """Tracks inside ``zone`` now."""
        return sum(1 for t in self._tracks.values() if zone in t.inside)

    def update(self, frame: FrameInfo, results: list[ModelResult]) -> list[Event]:
        """The events of one frame; a frame not newer than the last one gives none."""
        if frame.capture_ns <= self._last_ns:
            return []
        self._last_ns = frame.capture_ns
        now_s = frame.capture_ns / 1e9
        events: list[Event] = []
        for result in results:
            detections = result.prediction
            if not isinstance(detections, Detections) or not detections.tracks:
                continue
            label = detections.label or result.model
            for index, box in enumerate(detections.boxes):
                track_id = detections.track_of(index)
                if track_id != NO_TRACK:
                    key = (result.model, track_id)
                    events += self._observe(frame, key, label, box, now_s)
        events += self._expire(frame, now_s)
        return events

    def _observe(
        self,
        frame: FrameInfo,
        key: tuple[str, int],
        label: str,
        box: tuple[float, float, float, float],
        now_s: float,
    ) -> list[Event]:
        track = self._tracks.pop(key, None)
        if track is None:
            track = _Track(label, box, now_s)
        track.box, track.seen_s = box, now_s
        self._tracks[key] = track  # to the end: most recently seen last
        point = reference_point(box)
        events = [
            e for line in self.scene.lines if (e := self._line(frame, key, track, line, point))
        ]
        for zone in self.scene.zones:
            events += self._zone(frame, key, track, zone, point, now_s)
        return events

    def _line(
        self, frame: FrameInfo, key: tuple[str, int], track: _Track, line: Line, point: Point
    ) -> Event | None:
        side = line.side(point)
        if side == 0:
            return None  # on the line: on neither side yet
        before = track.sides.get(line.name)
        track.sides[line.name] = (side, point)
        if before is None or before[0] == side or not line.crossed(before[1], point):
            return None
        direction: Direction = "in" if before[0] < 0 else "out"
        counts = self.line_counts[line.name]
        counts[direction] += 1
        return self._event(frame, "line_cross", key, track, line=line.name, direction=direction)

    def _zone(
        self,
        frame: FrameInfo,
        key: tuple[str, int],
        track: _Track,
        zone: Zone,
        point: Point,
        now_s: float,
    ) -> list[Event]:
        stay = track.inside.get(zone.name)
        if zone.contains(point):
            if stay is None:
                track.inside[zone.name] = [now_s, False]
                self.zone_entered[zone.name] += 1
                return [self._event(frame, "zone_enter", key, track, zone=zone.name)]
            entered, loitered = stay
            dwell = now_s - float(entered)
            if not loitered and dwell > zone.loiter_s:
                stay[1] = True
                return [self._event(frame, "loiter", key, track, zone=zone.name, dwell=dwell)]
            return []
        if stay is None:
            return []
        del track.inside[zone.name]
        dwell = now_s - float(stay[0])
        return [self._event(frame, "zone_exit", key, track, zone=zone.name, dwell=dwell)]

    def _expire(self, frame: FrameInfo, now_s: float) -> list[Event]:
        """Lost tracks: not seen for ``window_s``, or beyond ``max_tracks`` (oldest first).
        A lost track inside a zone leaves it (its stay ends when it was last seen)."""
        events: list[Event] = []
        while self._tracks:
            key, track = next(iter(self._tracks.items()))  # least recently seen
            if now_s - track.seen_s <= self.window_s and len(self._tracks) <= self.max_tracks:
                break
            del self._tracks[key]
            for zone, stay in list(track.inside.items()):
                del track.inside[zone]
                dwell = track.seen_s - float(stay[0])
                events.append(self._event(frame, "zone_exit", key, track, zone=zone, dwell=dwell))
        return events

    def _event(
        self,
        frame: FrameInfo,
        kind: EventType,
        key: tuple[str, int],
        track: _Track,
        *,
        zone: str | None = None,
        line: str | None = None,
        direction: Direction | None = None,
        dwell: float | None = None,
    ) -> Event:
        if line is not None:
            counts = dict(self.line_counts[line])
        else:
            assert zone is not None  # noqa: S101 - every other event is a zone's
            counts = {"inside": self.zone_inside(zone), "entered": self.zone_entered[zone]}
        return Event(
            type=kind,
            stream=frame.stream,
            seq=frame.seq,
            capture_ns=frame.capture_ns,
            track=key[1],
            label=track.label[:64],
            box=track.box,
            zone=zone,
            line=line,
            direction=direction,
            dwell_s=None if dwell is None else max(0.0, dwell),
            counts=counts,
            frame=frame.ref,
        )


class SceneAnalytics:
    """Every stream's :class:`StreamScene`. Thread-safe."""

    def __init__(
        self, scenes: Mapping[str, Scene] | None = None, *, window_s: float, max_tracks: int
    ) -> None:
        self.window_s = window_s
        self.max_tracks = max_tracks
        self._lock = threading.Lock()
        self._scenes: dict[str, Scene] = dict(scenes or {})
        self._streams: dict[str, StreamScene] = {}

    def set_scenes(self, scenes: Mapping[str, Scene]) -> None:
        """New zones and lines (a reloaded camera file). A stream whose scene changed starts
        afresh: its tracks' positions and its counts are reset."""
        with self._lock:
            self._scenes = dict(scenes)
            for stream, state in list(self._streams.items()):
                if self._scenes.get(stream, Scene()) != state.scene:
                    del self._streams[stream]

    def scene(self, stream: str) -> Scene:
        with self._lock:
            return self._scenes.get(stream, Scene())

    def update(self, frame: FrameInfo, results: list[ModelResult]) -> list[Event]:
        """The events of one frame of ``frame.stream`` (none without zones or lines)."""
        with self._lock:
            state = self._streams.get(frame.stream)
            if state is None:
                scene = self._scenes.get(frame.stream)
                if not scene:
                    return []
                state = self._streams[frame.stream] = StreamScene(
                    scene, self.window_s, self.max_tracks
                )
            return state.update(frame, results)

    def counts(self, stream: str) -> tuple[dict[str, dict[str, int]], dict[str, tuple[int, int]]]:
        """For drawing: line name -> {in, out}; zone name -> (inside, entered)."""
        with self._lock:
            state = self._streams.get(stream)
            if state is None:
                return {}, {}
            lines = {name: dict(c) for name, c in state.line_counts.items()}
            zones = {
                name: (state.zone_inside(name), entered)
                for name, entered in state.zone_entered.items()
            }
            return lines, zones

    def forget(self, stream: str) -> None:
        """Drop the state of a stream the consumer forgot."""
        with self._lock:
            self._streams.pop(stream, None)
